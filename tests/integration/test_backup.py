"""Backup and restore on a real stack: an answered, recorded call and a pending "press 5" callback are
backed up while everything runs, the install is stopped and wiped, restored, started, and both are back."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, Stack, wait_for


@pytest.fixture
def own_stack(tmp_path_factory):
    """Its own stack: the wipe must not touch the one other modules of this worker share."""
    s = Stack(tmp_path_factory.mktemp("backup-stack"))
    s.start()
    yield s
    s.close()


def _cli(s: Stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hotline.cli", *args], cwd=ROOT, env=s.env,
                          capture_output=True, text=True, timeout=300)


def _stable(path: Path) -> bytes:
    """The file once MixMonitor has finished writing it (its size stops changing)."""
    last = None

    def settled():
        nonlocal last
        data = path.read_bytes() if path.exists() else None
        done = data is not None and data == last and len(data) > 44
        last = data
        return done
    wait_for(settled, 20, f"recording {path} complete")
    return last


def test_backup_wipe_restore_brings_back_record_recording_and_pending_callback(own_stack, audio, tmp_path):
    s = own_stack
    agent = s.agent("agent1001", play=audio["agent"])
    caller = s.call("083312348", dtmf="2:1,4:1", play=audio["caller"], hangup_after=18, caller="13911110071")
    assert caller.result(90)["answered"]
    rec = s.wait_record(lambda r: r["caller_number"] == "13911110071" and r["status"] == "ended", 30)
    assert rec["recording_path"]
    recording = s.asterisk.paths.recording_host_path(rec["recording_path"])
    recorded = _stable(recording)

    # the agent pauses: the next caller waits, presses 5 and hangs up; the callback is now pending in
    # astdb (and as a task) until an agent is free
    s.api("/api/agents/agent1001/pause", "POST", {"reason": "meal"})
    # (the caller's phone stays up to take the callback, whatever happens to the install meanwhile)
    x = s.call("083312348", dtmf="2:1,4:1,20:5", hangup_after=60, caller="13955550072",
               extra=["--port", str(s.carrier_port), "--await-callback", "400", "--callback-talk", "4"])
    try:
        asked = s.wait_record(lambda r: r["caller_number"] == "13955550072" and r["outcome"] == "callback_requested",
                              60)
    except AssertionError as e:     # (seen once in CI, not reproduced): say whether Asterisk took the request
        raise AssertionError(f"{e}\ncaller's events: {x.read()}\nastdb: {s.asterisk.rx('database show hlcb')}\n"
                             f"queue: {s.asterisk.rx('queue show leshan')}") from None
    wait_for(lambda: [t for t in s.api("/api/callbacks?status=pending") if t["call_id"] == asked["call_id"]], 15,
             "pending callback task")
    # the request is whole in Asterisk (the dialplan writes its keys one by one)
    wait_for(lambda: f"/hlcb/{asked['call_id']}/attempt" in s.asterisk.rx("database show hlcb"), 15, "whole request")

    archive = tmp_path / "backup.tar.gz"
    res = _cli(s, "backup", "--out", str(archive))     # while Asterisk and the controller run
    assert res.returncode == 0 and res.stdout.strip() == str(archive), res.stderr
    refused = _cli(s, "restore", str(archive))
    assert refused.returncode == 2 and "stop the install first" in refused.stderr, refused.stderr

    # stop and wipe: database, secrets, recordings, voicemail, astdb
    agent.stop()
    s.stop_controller()
    s.asterisk.stop()
    db = Path(s.cfg.system.database.url.removeprefix("sqlite:///"))
    for f in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), s.cfg.state_dir / "secrets.json"):
        f.unlink(missing_ok=True)
    shutil.rmtree(s.cfg.state_dir / "tls", ignore_errors=True)
    p = s.asterisk.paths
    for d in (p.monitor, p.spool / "voicemail"):
        shutil.rmtree(p.host(d), ignore_errors=True)
    p.host(p.lib / "astdb.sqlite3").unlink()
    assert not recording.exists()

    res = _cli(s, "restore", str(archive))
    assert res.returncode == 0, res.stderr
    s.asterisk.start()
    s.start_controller()

    back = s.api(f"/api/calls/{rec['call_id']}")
    assert (back["outcome"], back["agent"], back["recording_path"]) == ("answered", "agent1001", rec["recording_path"])
    assert recording.read_bytes() == recorded
    tasks = [t for t in s.api("/api/callbacks") if t["call_id"] == asked["call_id"]]
    assert len(tasks) == 1 and tasks[0]["status"] == "pending" and tasks[0]["reason"] == "queue_callback", tasks
    # Asterisk has the request again: its number, queue and place
    held = s.asterisk.rx(f"database show hlcb/{asked['call_id']}")
    assert "13955550072" in held and "leshan" in held, held
    # and keeps it: the restarted controller put the placeholder back in the queue, so the first agent
    # free calls the caller back, once
    wait_for(lambda: s.api("/api/status")["queues"]["leshan"]["waiting"] == 1, 20, "placeholder back in queue")
    s.agent("agent1001", play=audio["agent"])
    res = x.result(120)
    assert res["callback"] and res["callback"]["answered"], res
    assert len([e for e in x.read() if e["event"] == "callback_answered"]) == 1
    wait_for(lambda: [t for t in s.api("/api/callbacks") if t["call_id"] == asked["call_id"]
                      and t["status"] == "done"], 20, "callback task done")
