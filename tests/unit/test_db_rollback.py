"""Upgrades and their rollback (docs/operations.md "Upgrades"): `hotline db downgrade REV` takes the
schema back to the revision the old code knows, `hotline db upgrade` forward again, `hotline db current`
says where it is — through the real command line, on SQLite and PostgreSQL, with data in the tables."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from sqlalchemy import create_engine, inspect, text

from store.engine import sync_url
from tests.helpers import ROOT


def _hotline(db_url: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOTLINE_CONFIG_OVERRIDES": json.dumps(
        {"state_dir": str(tmp_path / "state"), "database": {"url": db_url}})}
    return subprocess.run([sys.executable, "-m", "hotline.cli", "db", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_an_upgrade_rolls_back_and_forward_with_the_data_kept(db_url, tmp_path):
    up = _hotline(db_url, tmp_path, "upgrade")
    assert up.returncode == 0, up.stderr
    head = up.stdout.strip()
    assert head.isdigit() and int(head) >= 12, up.stdout
    engine = create_engine(sync_url(db_url, ROOT))
    try:
        with engine.begin() as c:
            c.execute(text("INSERT INTO opt_outs (number, source, created_at) "
                           "VALUES ('+8613800001111', 'ivr', CURRENT_TIMESTAMP)"))
        # the newest migration folds audit refusals: its rollback drops the columns it added
        down = _hotline(db_url, tmp_path, "downgrade", "0011")
        assert down.returncode == 0, down.stderr
        assert down.stdout.strip() == "0011"
        assert "fold_minute" not in {c["name"] for c in inspect(engine).get_columns("audit_log")}
        assert _hotline(db_url, tmp_path, "current").stdout.strip() == "0011"
        again = _hotline(db_url, tmp_path, "upgrade")
        assert again.returncode == 0 and again.stdout.strip() == head, again.stderr
        assert "fold_minute" in {c["name"] for c in inspect(engine).get_columns("audit_log")}
        with engine.connect() as c:
            assert c.execute(text("SELECT source FROM opt_outs WHERE number = '+8613800001111'")).scalar() == "ivr"
    finally:
        engine.dispose()
    missing = _hotline(db_url, tmp_path, "downgrade")
    assert missing.returncode == 2 and "revision" in missing.stderr
