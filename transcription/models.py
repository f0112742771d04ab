"""Which Vosk model serves which IVR language. Models are directories installed by the operator;
none is downloaded at run time. A language without one is a status, not an error."""
from __future__ import annotations

import importlib.util
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


class ModelRegistry:
    def __init__(self, cfg: HotlineConfig):
        self.root = cfg.root
        self.entries = cfg.system.transcription.models

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
