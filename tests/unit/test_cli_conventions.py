"""Issue 17, item 8: the command line keeps to the conventions scripts and operators rely on: data on
stdout and messages on stderr, bare JSON with --json, --version, --log-level, a failing exit status
when the stack is down, structured (JSON) log lines and rotated log files. The real CLI, as a
subprocess, on a database and state directory of its own and a port nobody listens on."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.helpers import ROOT, free_port

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def hotline(tmp_path):
    overrides = {"state_dir": str(tmp_path / "state"), "database": {"url": f"sqlite:///{tmp_path}/h.db"},
                 # nothing runs: no controller on this port, no Asterisk of this instance
                 "controller": {"http_port": free_port()}, "asterisk": {"instance": f"conv{os.getpid()}"},
                 "redis": {"url": None}}
    env = {**os.environ, "HOTLINE_CONFIG_OVERRIDES": json.dumps(overrides)}
    for key in ("HOTLINE_LOG_LEVEL", "HOTLINE_LOG_FORMAT", "HOTLINE_LOG_FILE", "JOURNAL_STREAM"):
        env.pop(key, None)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hotline.cli", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=90)
    return run


def test_version_comes_from_the_package(hotline):
    r = hotline("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"hotline {version('hotline12348')}"


def test_status_with_nothing_running_fails_and_its_json_is_bare(hotline):
    r = hotline("status", "--json")
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    assert set(report["down"]) == {"asterisk", "controller", "ami"}
    assert report["asterisk"]["running"] is False and "api_error" in report["controller"]
    r = hotline("status")
    assert r.returncode == 1
    assert "Asterisk running: False" in r.stdout          # the report is data ...
    assert "down: asterisk, controller, ami" in r.stderr   # ... the verdict a message


def test_staffing_json_is_bare_and_its_table_goes_to_stdout(hotline):
    r = hotline("staffing", "--days", "1", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)        # nothing before or after the JSON
    assert [h["hour"] for h in plan] == list(range(24))
    r = hotline("staffing", "--days", "1")
    assert "Erlang C" in r.stdout and "Erlang C" not in r.stderr


def test_stats_table_is_data_on_stdout_and_csv_carries_a_bom(hotline, tmp_path):
    r = hotline("stats", "--from", "2026-11-01")
    assert r.returncode == 0, r.stderr
    assert "12348 statistics" in r.stdout and "12348 statistics" not in r.stderr
    out = tmp_path / "s.csv"
    assert hotline("stats", "--from", "2026-11-01", "--format", "csv", "--out", str(out)).returncode == 0
    assert out.read_bytes().startswith("\ufeff统计期间,城市,来电量".encode())
    r = hotline("stats", "--from", "2026-11-01", "--format", "csv", "--lang", "en")
    assert r.stdout.startswith("\ufeffperiod,city,calls")


def test_log_level_debug_shows_debug_messages(hotline):
    quiet = hotline("db", "upgrade")
    assert quiet.returncode == 0, quiet.stderr
    assert "DEBUG" not in quiet.stderr
    loud = hotline("--log-level", "DEBUG", "db", "upgrade")
    assert loud.returncode == 0
    assert "DEBUG hotline: config from" in loud.stderr
    assert loud.stdout.strip().isdigit(), loud.stdout    # only the data (the revision): logs never on stdout


def test_json_log_lines_parse_and_the_log_file_is_rotated(hotline, tmp_path):
    log = tmp_path / "hotline.log"
    # a fresh database: every migration step is logged at DEBUG, well over 600 bytes
    r = hotline("--log-format", "json", "--log-level", "DEBUG", "--log-file", str(log), "--log-max-bytes", "600",
                "--log-backups", "2", "db", "upgrade")
    assert r.returncode == 0, r.stderr
    files = [log, Path(f"{log}.1"), Path(f"{log}.2")]
    assert all(f.exists() for f in files) and not Path(f"{log}.3").exists()
    lines = [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert {"DEBUG", "INFO"} <= {line["level"] for line in lines}
    assert all(f.stat().st_size <= 600 + 400 for f in files)    # one line may pass the limit before rotating
    assert "DEBUG" not in r.stderr      # to the file, not to stderr
