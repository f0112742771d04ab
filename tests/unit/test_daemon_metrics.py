"""Issue 17, item 8: every daemon exports Prometheus metrics. The interop daemon and the transcriber
are started as `hotline interop` / `hotline transcriber` on a database of their own and scraped over
real HTTP on their configured loopback ports: outbox depth and dead letters, the transcription
backlog and its oldest job, and the standard process figures (which the controller's /metrics has
too)."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families

from callcenter.metrics import Metrics
from store.engine import Database, migrate
from store.interop import outbox_row
from store.transcripts import TranscriptStore
from tests.helpers import ROOT, free_port, terminate

pytestmark = pytest.mark.timeout(120)


def _samples(text: str) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _scrape_until(port: int, want, proc: subprocess.Popen, log, timeout: float = 45) -> dict:
    """Scrape until ``want(samples)`` holds (the daemons read the database every few seconds)."""
    deadline, got = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                got = _samples(r.read().decode())
            if want(got):
                return got
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"metrics not as expected: {sorted(k for k in got if k[0].startswith('hotline'))}; "
                         f"log:\n{log.read_text()[-3000:]}")


def _daemon(name: str, tmp_path, overrides: dict):
    env = {**os.environ, "HOTLINE_CONFIG_OVERRIDES": json.dumps(overrides), "PYTHONUNBUFFERED": "1"}
    log = tmp_path / f"{name}.log"
    return subprocess.Popen([sys.executable, "-m", "hotline.cli", name], cwd=ROOT, env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT), log


def _seed(tmp_path, work) -> None:
    """``await work(db)`` on the daemon's database, migrated first."""
    url = f"sqlite:///{tmp_path}/h.db"
    migrate(url, ROOT)

    async def run():
        db = Database(url, ROOT)
        try:
            await work(db)
        finally:
            await db.close()
    asyncio.run(run())


def _base(tmp_path) -> dict:
    return {"state_dir": str(tmp_path / "state"), "database": {"url": f"sqlite:///{tmp_path}/h.db"},
            "redis": {"url": None}}


def test_interop_daemon_exports_outbox_depth_and_dead_letters(tmp_path):
    async def queue(db):
        async with db.session.begin() as s:
            # 12333 at a port nobody listens on, one attempt allowed: a dead letter at once
            s.add(outbox_row(partner="12333", kind="handoff", payload={"x": 1}, key="k-h1", related=""))
            # due in an hour: stays in the outbox
            later = outbox_row(partner="12345", kind="handoff", payload={"x": 2}, key="k-h2", related="")
            later.not_before = datetime.now(timezone.utc) + timedelta(hours=1)
            s.add(later)
    _seed(tmp_path, queue)
    port = free_port()
    proc, log = _daemon("interop", tmp_path, {**_base(tmp_path), "interop": {
        "max_attempts": 1, "poll_seconds": 0.1, "metrics": {"port": port},
        "endpoints": {"12333": {"default": f"http://127.0.0.1:{free_port()}/api"}}}})
    try:
        got = _scrape_until(port, lambda m: m.get(("hotline_outbox_dead_letters", ())) == 1, proc, log)
        assert got[("hotline_outbox_depth", ())] == 1
        assert got[("hotline_outbox_messages", (("partner", "12333"), ("status", "dead")))] == 1
        assert got[("hotline_outbox_messages", (("partner", "12345"), ("status", "pending")))] == 1
        assert ("process_cpu_seconds_total", ()) in got and ("process_start_time_seconds", ()) in got
    finally:
        terminate(proc)


def test_transcriber_exports_its_backlog_and_oldest_pending_job(tmp_path):
    async def queue(db):
        jobs = TranscriptStore(db)
        await jobs.enqueue(call_id="1.1", city="leshan", language="zh", agent="agent1001", recording="r.wav",
                           call_started_at=time.time())
        # an earlier worker tried and put it back for later: it waits in the backlog
        job = await jobs.claim("earlier-worker", 60, 3)
        await jobs.finish(job["id"], "earlier-worker", "pending", "retry later",
                          retry_at=datetime.now(timezone.utc) + timedelta(hours=1))
    _seed(tmp_path, queue)
    time.sleep(1.1)      # the job is at least a second old when scraped
    port = free_port()
    proc, log = _daemon("transcriber", tmp_path, {**_base(tmp_path), "transcription": {
        "workers": 1, "live": {"enabled": False}, "metrics": {"port": port}}})
    try:
        got = _scrape_until(port, lambda m: m.get(("hotline_transcription_backlog", ())) == 1, proc, log)
        assert got[("hotline_transcription_jobs", (("status", "pending"),))] == 1
        assert got[("hotline_transcription_oldest_pending_seconds", ())] >= 1
        assert got[("hotline_transcription_live_streams", ())] == 0
        assert ("process_resident_memory_bytes", ()) in got
    finally:
        terminate(proc)


def test_controller_metrics_carry_the_process_figures():
    from prometheus_client import generate_latest
    text = generate_latest(Metrics(["leshan"], ["leshan"]).registry).decode()
    names = {fam.name for fam in text_string_to_metric_families(text)}
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "python_info", "hotline_ami_connected"} <= names
