"""What every config model shares: strict models, the operator-facing error, and reading YAML with
errors that name the file, line and field."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
AreaCode = Annotated[str, Field(pattern=r"^0[1-9][0-9]{1,2}$")]
Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")]
PROVINCE = "province"


class ConfigError(Exception):
    """A configuration file is missing, unreadable or invalid. str() is operator-facing."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as e:          # a directory where the file should be, no permission…
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: invalid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate(model: type[BaseModel], data: Any, path: Path, origin: Callable[[tuple], str | None] | None = None,
             hide: Iterable[str] = ()) -> Any:
    """``origin`` names the source of a key that did not come from the file (an environment variable,
    a secret file); ``hide`` are secret values, never shown in an error."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            where = (origin and origin(err["loc"])) or path
            got = f" (got {err['input']!r})" if err["type"] not in ("missing",) and not isinstance(err["input"], dict) \
                and not str(where).startswith("secret file") else ""
            line = f"{where}: {_loc(err['loc'])}: {err['msg']}{got}"
            for secret in hide:
                line = line.replace(secret, "***").replace(repr(secret)[1:-1], "***")
            lines.append(line)
        raise ConfigError("\n".join(lines)) from None


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
