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
from core.config import REPO_ROOT, ConfigError, HotlineConfig, load_config, load_model_catalogue
from core.config.sources import find_config_dir
from core.config.system import usable_cores
from core.paths import InstancePaths
from store.secrets import Secrets

# "<path>.yaml: <field>: <message>" or "<path>.yaml: line 3 column 5: invalid YAML: ..."
# or, for a key from elsewhere, "environment HOTLINE_X: ...", "secret file /path: ...", "override (...): ..."
_LINE = re.compile(r"^(?P<file>[^:\n]+?\.ya?ml|environment \w+|secret file [^:\n]+|override \([^)]*\)):(?P<rest>.*)$")
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
    config_dir: str = ""     # the directory that was read (--config-dir, $HOTLINE_CONFIG_DIR, /etc/hotline, config/)

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
        rel = _rel(path, root) if path.is_absolute() else m["file"]
        rest = m["rest"].strip()
        head, sep, tail = rest.partition(": ")
        # "line N column M: invalid YAML: ..." and whole-file messages have no field
        is_field = bool(sep) and _FIELD.match(head) is not None
        out.append(Problem(rel, head if is_field else "", tail if is_field else rest))
    return out


def generate_asterisk(cfg: HotlineConfig, out: Path, problems: list[Problem] | None = None) -> list[str]:
    """The Asterisk files as `hotline setup` would write them (secrets are placeholders); the admin's
    files of this instance, if it exists, checked into ``problems`` as setup would."""
    secrets = Secrets("hotline", "<generated at setup>", {a: "<generated>" for a in cfg.sip_accounts()})
    paths = InstancePaths(cfg.resolve(cfg.system.asterisk.rootfs), cfg.system.asterisk.instance)
    files = confgen.generate(cfg, secrets, paths, "/usr/lib/x86_64-linux-gnu/asterisk/modules")
    if problems is not None:
        for path, found in confgen.existing_problems(paths.host(paths.etc), files).items():
            problems.extend(Problem(str(path), "", p) for p in found)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    return sorted(files)


def _urls(cfg: HotlineConfig) -> list[Problem]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    def where(key: str) -> str:
        return cfg.sources.get(key) or _rel(cfg.config_dir / "hotline.yaml", cfg.root)

    def shown(key: str, value: str) -> str:     # a secret file's value is never printed
        return "***" if cfg.sources.get(key, "").startswith("secret file") else repr(value)

    problems = []
    try:
        make_url(cfg.system.database.url)
    except ArgumentError:
        problems.append(Problem(where("database.url"), "database.url",
                                f"not a database URL: {shown('database.url', cfg.system.database.url)}"))
    if cfg.system.redis.url and not cfg.system.redis.url.startswith(("redis://", "rediss://", "unix://")):
        problems.append(Problem(where("redis.url"), "redis.url",
                                f"expected redis://, rediss:// or unix://, got {shown('redis.url', cfg.system.redis.url)}"))
    return problems


def _check_edge(cfg: HotlineConfig, out: Path, problems: list[Problem]) -> list[str]:
    """Cluster mode: Kamailio's files generated as `hotline up` would (placeholder passwords) and, when
    Kamailio is installed, parsed by it (`kamailio -c`)."""
    import shutil
    import subprocess

    from callcenter.edge import confgen as edge_confgen

    secrets = Secrets("hotline", "generated", {a: "generated" for a in cfg.sip_accounts()})
    try:
        files = edge_confgen.generate(cfg, secrets, str(out))
    except (ValueError, KeyError) as e:
        problems.append(Problem("", "cluster", f"generating Kamailio's config failed: {e}"))
        return []
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    binary = cfg.system.cluster.kamailio.binary
    if shutil.which(binary):
        r = subprocess.run([binary, "-c", "-f", str(out / "kamailio.cfg")], capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            problems.append(Problem("", "cluster.kamailio", f"kamailio refuses the generated config: "
                                                            f"{r.stderr.strip()[-500:]}"))
    return sorted(files)


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_absolute() and path.is_relative_to(root) else str(path)


def check(root: Path | None = None, overrides: dict | None = None, config_dir: Path | str | None = None) -> Report:
    try:
        cfg = load_config(root, overrides, config_dir)
    except ConfigError as e:
        base = (root or REPO_ROOT).resolve()
        return Report(False, parse_error(str(e), base),
                      config_dir=str(find_config_dir(base, config_dir, root is not None)))
    problems = _urls(cfg)
    try:
        load_model_catalogue(cfg.config_dir)     # read only by `hotline models install`, checked here all the same
    except ConfigError as e:
        problems += parse_error(str(e), cfg.root)
    try:    # the knowledge base's seed file and service map (read by `hotline kb load` and `serve`)
        from core.ivr import SERVICES
        from core.knowledge import load_knowledge
        load_knowledge(cfg.config_dir, set(cfg.tickets.categories), set(SERVICES))
    except ConfigError as e:
        problems += parse_error(str(e), cfg.root)
    with tempfile.TemporaryDirectory(prefix="hotline-config-check-") as tmp:
        try:
            files = generate_asterisk(cfg, Path(tmp), problems)
        except (ConfigError, ValueError, KeyError) as e:      # a combination the generator cannot express
            problems.append(Problem("", "", f"generating the Asterisk config failed: {e}"))
            files = []
        edge_files = _check_edge(cfg, Path(tmp) / "kamailio", problems) if cfg.system.cluster.behind_edge else []
    summary = {"cities": len(cfg.cities), "agents": len(cfg.agents), "ivr_languages": len(cfg.ivr.languages),
               "ticket_categories": len(cfg.tickets.categories), "legal_aid_centers": len(cfg.centers.centers),
               "keyword_topics": len(cfg.keywords.topics), "partners": sorted(cfg.partners),
               "asterisk_files": files, "sources": cfg.sources}
    live = cfg.system.transcription.live
    if cfg.system.transcription.enabled and live.enabled:
        # the figure in force on this machine ("auto": from its cores)
        summary["live_max_calls"] = {"calls": live.calls(), "setting": live.max_calls, "cores": usable_cores()}
    if edge_files:
        summary["edge_files"] = edge_files
    return Report(not problems, problems, summary, str(cfg.config_dir))
