"""Where hotline.yaml's values come from, besides the file itself: the config directory, per-key
environment variables and secret files (pydantic-settings reads both), and which source set which key,
so that an error names the variable or file to fix and a secret's value is never shown.

Precedence, lowest first (docs/operations.md): model defaults < hotline.yaml in the config directory <
secret files < environment variables < explicit overrides (--set, HOTLINE_CONFIG_OVERRIDES)."""
from __future__ import annotations

import json
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_settings import EnvSettingsSource
from pydantic_settings.exceptions import SettingsError
from pydantic_settings.sources.utils import parse_env_vars

from core.config.base import ConfigError, deep_merge
from core.config.system import SystemFile

PREFIX = "HOTLINE_"
NESTED = "__"
CONFIG_DIR_ENV = "HOTLINE_CONFIG_DIR"
SECRETS_DIR_ENV = "HOTLINE_SECRETS_DIR"
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"     # systemd's LoadCredential= puts the files here
ETC_DIR = Path("/etc/hotline")
OVERRIDE = "override (--set or HOTLINE_CONFIG_OVERRIDES)"


def find_config_dir(root: Path, explicit: Path | str | None = None, root_given: bool = False) -> Path:
    """--config-dir, else an explicit --root's config/, else HOTLINE_CONFIG_DIR, else /etc/hotline
    when it holds hotline.yaml, else the checkout's config/. An explicit --root wins over the
    environment so that a test's copied tree is never read from a host's /etc."""
    if explicit:
        return Path(explicit).resolve()
    if root_given:
        return root / "config"
    if os.environ.get(CONFIG_DIR_ENV):
        return Path(os.environ[CONFIG_DIR_ENV]).resolve()
    if (ETC_DIR / "hotline.yaml").is_file():
        return ETC_DIR
    return root / "config"


def _leaves(data: dict, prefix: tuple = ()) -> dict[tuple, Any]:
    out: dict[tuple, Any] = {}
    for k, v in data.items():
        out.update(_leaves(v, (*prefix, k)) if isinstance(v, dict) and v else {(*prefix, k): v})
    return out


def _is_complex(path: list[str]) -> bool:
    """Whether the setting at ``path`` is a list, mapping or section (written as JSON in a variable)."""
    model: Any = SystemFile
    ann: Any = None
    for part in path:
        fields = model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else {}
        if part not in fields:      # inside a mapping (models.zh): its values are lists or mappings;
            return not fields       # an unknown key of a section is the model's error (extra input), not JSON's
        ann = fields[part].annotation
        model = next((a for a in (ann, *typing.get_args(ann)) if isinstance(a, type) and issubclass(a, BaseModel)),
                     None)
    kinds = {typing.get_origin(a) or a for a in (ann, *typing.get_args(ann))}
    return model is not None or bool(kinds & {list, dict})


class _Variables(EnvSettingsSource):
    """pydantic-settings' reading of HOTLINE_<SECTION>__<KEY> names (typed by SystemFile, JSON for lists
    and mappings, "null" for none) over the given name -> text mapping: the environment, or the secret
    files by file name."""

    def __init__(self, variables: Mapping[str, str]):
        self._variables = variables       # before super().__init__, which loads them
        super().__init__(SystemFile, env_prefix=PREFIX, env_nested_delimiter=NESTED, case_sensitive=False,
                         env_parse_none_str="null")

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._variables, False, False, self.env_parse_none_str)


class Sources:
    """The secret-file and environment layers of hotline.yaml, and who set which key."""

    def __init__(self) -> None:
        self.labels: dict[tuple, str] = {}    # key path -> "environment HOTLINE_X" / "secret file /p"
        self.secrets_dir = _secrets_dir()
        files = _secret_files(self.secrets_dir) if self.secrets_dir else {}
        self.secrets = self._read(files, lambda n: f"secret file {self.secrets_dir / n}")
        self.secret_values = [str(v) for v in _leaves(self.secrets).values() if v not in (None, "")]
        # read after the secrets: a key set in both is the environment's, and labelled so
        self.env = self._read({n: v for n, v in os.environ.items() if n.upper().startswith(PREFIX)},
                              lambda n: f"environment {n}")

    def _read(self, variables: dict[str, str], label) -> dict:
        """One layer: the typo check on names, pydantic-settings' parsing, and each key's label."""
        fields = {f.upper() for f in SystemFile.model_fields}
        by_upper = {n.upper(): n for n in variables}
        for upper, name in by_upper.items():
            section = upper[len(PREFIX):].split(NESTED)[0]
            if NESTED in upper and section not in fields:
                raise ConfigError(f"{label(name)}: hotline.yaml has no section {section.lower()!r} "
                                  f"(names are {PREFIX}<SECTION>{NESTED}<KEY>)")
        try:
            data = _Variables(variables)()
        except SettingsError:
            bad = [n for u, n in by_upper.items()
                   if _is_complex(u[len(PREFIX):].lower().split(NESTED)) and not _json(variables[n])]
            raise ConfigError("\n".join(
                f"{label(n)}: {n[len(PREFIX):].lower().replace(NESTED, '.')}: a list or mapping is written as "
                f"JSON, e.g. [\"10.0.0.0/8\"] or {{\"zh\": [\"/opt/vosk/cn\"]}}" for n in bad)
                or "hotline.yaml settings from the environment or secret files: cannot parse") from None
        for path in _leaves(data):
            # the name may be the key's or a whole section's holding it (JSON)
            for n in range(len(path), 0, -1):
                upper = PREFIX + NESTED.join(path[:n]).upper()
                if upper in by_upper:
                    self.labels[path] = label(by_upper[upper])
                    break
        return data

    def merge(self, yaml_data: dict, overrides: dict) -> dict:
        for path in _leaves(overrides):
            self.labels[path] = OVERRIDE
        return deep_merge(deep_merge(deep_merge(yaml_data, self.secrets), self.env), overrides)

    def origin(self, loc: tuple) -> str | None:
        """The label of the source that set the key at ``loc`` (or a section above it), if not the file."""
        for n in range(len(loc), 0, -1):
            if tuple(loc[:n]) in self.labels:
                return self.labels[tuple(loc[:n])]
        return None

    def described(self) -> dict[str, str]:
        """Dotted key -> where it came from, for `hotline config check` (names only, never values)."""
        return {".".join(map(str, p)): label for p, label in sorted(self.labels.items(), key=lambda i: str(i[0]))}


def _secrets_dir() -> Path | None:
    for var in (SECRETS_DIR_ENV, CREDENTIALS_ENV):
        if os.environ.get(var):
            path = Path(os.environ[var])
            if not path.is_dir():
                raise ConfigError(f"environment {var}: {path} is not a directory of secret files")
            return path
    return None


def _secret_files(directory: Path) -> dict[str, str]:
    """File name -> its text, stripped (echo's newline), for the HOTLINE_* files only: the directory
    (systemd's credentials) may hold other credentials, a TLS key for instance."""
    out = {}
    for p in sorted(directory.iterdir()):
        if p.name.upper().startswith(PREFIX) and p.is_file():
            try:
                out[p.name] = p.read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ConfigError(f"secret file {p}: cannot read: {e.strerror or e}") from None
            except UnicodeDecodeError:
                raise ConfigError(f"secret file {p}: not UTF-8 text") from None
    return out


def _json(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False
