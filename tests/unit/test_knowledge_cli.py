"""`hotline kb`: the seed file loads once (entries already there are kept), the report prints JSON,
expiry runs; each through the real command line on a fresh SQLite database."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers import ROOT


def hotline(tmp_path, *args: str) -> subprocess.CompletedProcess:
    overrides = {"state_dir": str(tmp_path), "database": {"url": f"sqlite:///{tmp_path}/kb.db"}}
    return subprocess.run([sys.executable, "-m", "hotline.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HOTLINE_CONFIG_OVERRIDES": json.dumps(overrides)})


def test_load_report_expire(tmp_path):
    first = hotline(tmp_path, "kb", "load")
    assert first.returncode == 0, first.stderr
    assert "52 entries added" in " ".join(first.stderr.split())
    again = hotline(tmp_path, "kb", "load")
    assert "0 entries added" in " ".join(again.stderr.split()) and "52 already there" in " ".join(again.stderr.split())
    r = hotline(tmp_path, "kb", "report", "--json", "--days", "7")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"days": 7, "most_used": [], "unanswered": []}
    e = hotline(tmp_path, "kb", "expire")
    assert e.returncode == 0 and "0 entries expired" in e.stderr
