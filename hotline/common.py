"""What every command shares: the console (stderr: data goes to stdout), the config with overrides,
and the operator's API client."""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from rich.console import Console

from core.config import HotlineConfig, load_config
from dashboard.client import operator_api as _api

console = Console(stderr=True)
OVERRIDES_ENV = "HOTLINE_CONFIG_OVERRIDES"  # JSON merged into config/hotline.yaml (tests, second nodes)

__all__ = ["OVERRIDES_ENV", "_api", "_config", "_overrides", "console", "with_auth"]


def _config(args) -> HotlineConfig:
    return load_config(Path(args.root) if args.root else None, _overrides(args), getattr(args, "config_dir", None))


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
