"""Which Vosk model serves which IVR language. Models are directories installed by the operator
(by hand, or `hotline models install` into the models directory); none is downloaded at run time.
A language without one is a status, not an error."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from core.config import HotlineConfig

# files every Vosk (Kaldi nnet3) model directory has
_MARKERS = ("am/final.mdl", "conf/model.conf")


def is_model_dir(path: Path) -> bool:
    return path.is_dir() and all((path / m).exists() for m in _MARKERS)


def resolve_entry(entry: str, root: Path) -> Path | None:
    """A configured model entry as a directory: a path (relative to the project root) or
    ``pkg:<module>`` for a model shipped inside an installed Python package."""
    if entry.startswith("pkg:"):
        spec = importlib.util.find_spec(entry[4:])
        if spec is None or not spec.submodule_search_locations:
            return None
        base = Path(list(spec.submodule_search_locations)[0])
        return base / "model" if (base / "model").is_dir() else base
    p = Path(entry)
    return p if p.is_absolute() else root / p


MANIFEST = "languages.json"   # in the models directory: language -> installed model's directory name


def models_dir(cfg: HotlineConfig) -> Path:
    return cfg.resolve(cfg.system.transcription.models_dir) if cfg.system.transcription.models_dir \
        else cfg.state_dir / "models"


def installed(directory: Path, strict: bool = False) -> dict[str, str]:
    """Language -> model directory name, as `hotline models install` recorded it (none: {}).

    An unreadable file counts as none for the daemons (a call is never held up by a transcription
    setting); ``strict`` (the installer, which rewrites it) refuses it instead of dropping its entries."""
    try:
        data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except (OSError, ValueError) as e:
        if strict:
            raise ValueError(f"{directory / MANIFEST}: unreadable ({e}): fix or remove it") from None
        return {}
    if not isinstance(data, dict):
        return {}
    # directory names only: an edited file must not point the transcriber outside the models directory
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str) and v.strip(".") and "/" not in v}


class ModelRegistry:
    """Read on every lookup, so a model installed while the daemons run serves the next call."""

    def __init__(self, cfg: HotlineConfig):
        self.root = cfg.root
        self.configured = cfg.system.transcription.models
        self.dir = models_dir(cfg)

    @property
    def entries(self) -> dict[str, list[str]]:
        """Language -> candidate model directories: the installed one first, then the configured ones."""
        inst = installed(self.dir)
        langs = list(self.configured) + [lang for lang in inst if lang not in self.configured]
        return {lang: ([str(self.dir / inst[lang])] if lang in inst else []) + list(self.configured.get(lang, []))
                for lang in langs}

    def locate(self, lang: str) -> Path | None:
        for entry in self.entries.get(lang, []):
            path = resolve_entry(entry, self.root)
            if path is not None and is_model_dir(path):
                return path
        return None

    def status(self, lang: str) -> str:
        """"ok" or the reason there is no transcript, as shown to users ("no model for bo")."""
        return "ok" if self.locate(lang) else f"no model for {lang or 'unknown language'}"

    def available(self) -> dict[str, str]:
        return {lang: str(self.locate(lang) or "") for lang in self.entries}
