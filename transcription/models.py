"""Which Vosk model serves which IVR language. Models are directories installed by the operator
(by hand, or `hotline models install` into the models directory); none is downloaded at run time.
A language without one is a status, not an error."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from core.config import HotlineConfig

log = logging.getLogger("hotline.transcription")

# files every Vosk (Kaldi nnet3) model directory has
_MARKERS = ("am/final.mdl", "conf/model.conf")
# the endpointer's trailing-silence rules in conf/model.conf: 2 (confident decode), 3, 4 (any decode)
_ENDPOINT_RULES = (2, 3, 4)


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


def endpoint_conf(conf: str, silence_s: float) -> str:
    """A model.conf whose utterances end after at most ``silence_s`` of trailing silence.

    Kaldi's endpointer waits 0.5 s after a confident decode and 1 or 2 s after a less certain one
    (rules 2-4 of the small models); live text caps all three. Rule 1 (silence only) and rule 5 (the
    longest utterance) stay as the model has them. Every other option is kept as it is."""
    out = [line for line in conf.splitlines()
           if not re.match(r"\s*--endpoint\.rule[234]\.min-trailing-silence=", line)]
    current = {int(m.group(1)): float(m.group(2)) for m in
               re.finditer(r"--endpoint\.rule([234])\.min-trailing-silence=([0-9.]+)", conf)}
    defaults = {2: 0.5, 3: 1.0, 4: 2.0}      # Kaldi's OnlineEndpointConfig defaults
    for rule in _ENDPOINT_RULES:
        out.append(f"--endpoint.rule{rule}.min-trailing-silence={min(current.get(rule, defaults[rule]), silence_s):g}")
    return "\n".join(out) + "\n"


def live_variant(model: Path, silence_s: float, cache: Path) -> Path:
    """The model as live recognition uses it: the same files (symlinked, nothing copied) with the
    endpointer capped at ``silence_s``, so a caller's words reach the desk about a second after they
    stop speaking instead of up to 2.5 s. Vosk reads conf/model.conf from the model directory and has
    no per-recogniser setting for it in the Python API we pin, hence a directory of its own.

    Built once per (model, setting) under ``cache`` and reused; raises OSError when it cannot be made
    (the caller then uses the model as it is)."""
    model = model.resolve()
    key = hashlib.sha256(f"{model}\0{silence_s:g}".encode()).hexdigest()[:12]
    target = cache / f"{model.name}-live-{key}"
    conf = endpoint_conf((model / "conf" / "model.conf").read_text(encoding="utf-8"), silence_s)
    if is_model_dir(target) and (target / "conf" / "model.conf").read_text(encoding="utf-8") == conf:
        return target
    # a model replaced in place since, or links left dangling (the model moved): build it again
    shutil.rmtree(target, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{model.name}-", dir=cache))
    try:
        for entry in model.iterdir():
            if entry.name != "conf":
                os.symlink(entry, work / entry.name)
        (work / "conf").mkdir()
        for entry in (model / "conf").iterdir():
            if entry.name != "model.conf":
                os.symlink(entry, work / "conf" / entry.name)
        (work / "conf" / "model.conf").write_text(conf, encoding="utf-8")
        try:
            work.rename(target)          # atomic: two daemons building it at once both end up with one
        except OSError:
            if not is_model_dir(target):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
