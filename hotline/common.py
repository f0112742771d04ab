"""What every command shares: two consoles (``out``: data on stdout, tables a script may read;
``console``: messages on stderr), the config with overrides, and the operator's API client."""
from __future__ import annotations

import asyncio
import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from core.config import HotlineConfig, load_config
from dashboard.client import operator_api as _api

console = Console(stderr=True)   # messages, progress, warnings
out = Console()                  # data: tables and figures (``--json`` prints bare JSON instead)
OVERRIDES_ENV = "HOTLINE_CONFIG_OVERRIDES"  # JSON merged into config/hotline.yaml (tests, second nodes)

__all__ = ["OVERRIDES_ENV", "_api", "_config", "_overrides", "console", "out", "progress", "with_auth"]


@contextmanager
def progress(what: str):
    """A progress bar on stderr for a long step; yields ``update(done, total)`` for a counted step
    and ``update(text)`` for one that only reports its stage (debootstrap)."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[stage]}"), console=console, transient=True) as bar:
        task = bar.add_task(what, total=None, stage="")

        def update(done, total=None):
            if isinstance(done, str):
                bar.update(task, stage=done[:60])
            else:
                bar.update(task, completed=done, total=total)
        yield update


def _config(args) -> HotlineConfig:
    logging.getLogger("hotline").debug("config from %s, overrides %s", getattr(args, "config_dir", None) or
                                       args.root or "this checkout", sorted(_overrides(args)))
    return load_config(Path(args.root) if args.root else None, _overrides(args), getattr(args, "config_dir", None))


def cores_fit(cfg: HotlineConfig) -> bool:
    """asterisk.cpus fits this machine (a core it names exists, and one is left for the daemons); else
    the error is printed for the operator."""
    try:
        cfg.system.asterisk.daemon_cpus(os.sched_getaffinity(0))
    except ValueError as e:
        console.print(f"[red]{e}[/red]")
        return False
    return True


def _overrides(args) -> dict:
    """HOTLINE_CONFIG_OVERRIDES, then --set on top: the highest layer (docs/operations.md)."""
    overrides = json.loads(os.environ.get(OVERRIDES_ENV, "{}") or "{}")
    for item in getattr(args, "set", None) or []:
        key, _, value = item.partition("=")
        node = overrides
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        try:
            node[parts[-1]] = json.loads(value)
        except json.JSONDecodeError:
            node[parts[-1]] = value
    return overrides


def with_auth(cfg: HotlineConfig, work):
    """Run ``work(auth)`` against the database (no controller needed): passwords and tokens."""
    from store.auth import AuthStore
    from store.engine import Database, migrate
    from dashboard.auth import Auth

    migrate(cfg.system.database.url, cfg.root)

    async def run():
        db = Database(cfg.system.database.url, cfg.root)
        try:
            return await work(Auth(cfg, AuthStore(db)))
        finally:
            await db.close()
    return asyncio.run(run())
