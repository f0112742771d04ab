"""`hotline config check`: everything a daemon would refuse at start, found before any daemon starts.

Every config file goes through the one loader (core/config), then the Asterisk files are generated
into a temporary directory, and the database and Redis URLs are parsed. The report names the file
and the field of each error, for a person (rich) or a script (--json)."""
from __future__ import annotations

import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from callcenter.asterisk import confgen
from core.config import ConfigError, HotlineConfig, load_config, load_model_catalogue
from core.paths import InstancePaths
from store.secrets import Secrets

# "<path>.yaml: <field>: <message>" or "<path>.yaml: line 3 column 5: invalid YAML: ..."
_LINE = re.compile(r"^(?P<file>[^:\n]+?\.ya?ml):(?P<rest>.*)$")
# a field path: "queues.ring_seconds", "cities[3].area_code", "agents[0] (agent1001).queues"
_FIELD = re.compile(r"^[\w.\[\]-]+(?: \([^)]*\))?[\w.\[\]-]*$")


@dataclass
class Problem:
    file: str          # relative to the project root when it lies under it
    field: str         # the field path, or "" when the whole file is wrong
    message: str


@dataclass
class Report:
    ok: bool
    problems: list[Problem] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def parse_error(text: str, root: Path) -> list[Problem]:
    """A ConfigError's text, one Problem per line that names a file."""
    out: list[Problem] = []
    for line in str(text).splitlines():
        m = _LINE.match(line.strip())
        if not m:
            if out:
                out[-1].message += "\n" + line
            else:
                out.append(Problem("", "", line))
            continue
        path = Path(m["file"])
        rel = str(path.relative_to(root)) if path.is_absolute() and path.is_relative_to(root) else m["file"]
        rest = m["rest"].strip()
        head, sep, tail = rest.partition(": ")
        # "line N column M: invalid YAML: ..." and whole-file messages have no field
        is_field = bool(sep) and _FIELD.match(head) is not None
        out.append(Problem(rel, head if is_field else "", tail if is_field else rest))
    return out


def generate_asterisk(cfg: HotlineConfig, out: Path) -> list[str]:
    """The Asterisk files as `hotline setup` would write them (secrets are placeholders)."""
    secrets = Secrets("hotline", "<generated at setup>", {a: "<generated>" for a in cfg.sip_accounts()})
    paths = InstancePaths(cfg.resolve(cfg.system.asterisk.rootfs), cfg.system.asterisk.instance)
    files = confgen.generate(cfg, secrets, paths, "/usr/lib/x86_64-linux-gnu/asterisk/modules")
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    return sorted(files)


def _urls(cfg: HotlineConfig) -> list[Problem]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    problems = []
    try:
        make_url(cfg.system.database.url)
    except ArgumentError as e:
        problems.append(Problem("config/hotline.yaml", "database.url", str(e)))
    if cfg.system.redis.url and not cfg.system.redis.url.startswith(("redis://", "rediss://", "unix://")):
        problems.append(Problem("config/hotline.yaml", "redis.url",
                                f"expected redis://, rediss:// or unix://, got {cfg.system.redis.url!r}"))
    return problems


def check(root: Path | None = None, overrides: dict | None = None) -> Report:
    try:
        cfg = load_config(root, overrides)
    except ConfigError as e:
        return Report(False, parse_error(str(e), (root or Path.cwd()).resolve()))
    problems = _urls(cfg)
    try:
        load_model_catalogue(cfg.root)     # read only by `hotline models install`, checked here all the same
    except ConfigError as e:
        problems += parse_error(str(e), cfg.root)
    with tempfile.TemporaryDirectory(prefix="hotline-config-check-") as tmp:
        try:
            files = generate_asterisk(cfg, Path(tmp))
        except (ConfigError, ValueError, KeyError) as e:      # a combination the generator cannot express
            problems.append(Problem("", "", f"generating the Asterisk config failed: {e}"))
            files = []
    summary = {"cities": len(cfg.cities), "agents": len(cfg.agents), "ivr_languages": len(cfg.ivr.languages),
               "ticket_categories": len(cfg.tickets.categories), "legal_aid_centers": len(cfg.centers.centers),
               "keyword_topics": len(cfg.keywords.topics), "partners": sorted(cfg.partners),
               "asterisk_files": files}
    return Report(not problems, problems, summary)
