"""Callback keeping the caller's place: press 5 in the queue, hang up, be called back in turn."""
from __future__ import annotations

import time


def test_callback_keeps_place_and_happens_exactly_once(clean_stack, audio, tmp_path):
    s = clean_stack
    agent = s.agent("agent1001", play=audio["agent"], login=False)
    s.api("/api/agents/agent1001/login", "POST", {"ready": False})   # paused: callers queue up
    w = s.call("083312348", dtmf="2:1,4:1", hangup_after=120, caller="13955550001")
    s.wait_record(lambda r: r["caller_number"] == "13955550001" and r["status"] == "queued", 30)
    x = s.call("083312348", dtmf="2:1,4:1,20:5", play=audio["caller"], hangup_after=60, caller="13955550002",
               extra=["--port", str(s.carrier_port), "--await-callback", "120", "--callback-talk", "8",
                      "--callback-record", str(tmp_path / "callback.wav")])
    s.wait_record(lambda r: r["caller_number"] == "13955550002" and r["status"] == "queued", 30)
    y = s.call("083312348", dtmf="2:1,4:1", hangup_after=120, caller="13955550003")
    s.wait_record(lambda r: r["caller_number"] == "13955550003" and r["status"] == "queued", 30)
    asked = s.wait_record(lambda r: r["caller_number"] == "13955550002" and r["outcome"] == "callback_requested", 30)
    # the controller dies and comes back: the callback does not depend on it, and is not doubled
    s.kill_controller()
    time.sleep(1)
    s.start_controller()
    waiting = {r["caller_number"]: r for r in s.records() if r["status"] == "queued"}
    assert "13955550001" in waiting and "13955550003" in waiting
    assert s.api("/api/status")["queues"]["leshan"]["waiting"] >= 2   # rebuilt from Asterisk after the restart

    s.api("/api/agents/agent1001/ready", "POST", {})
    agent.wait_event("answered", 20)
    first = s.wait_record(lambda r: r["status"] == "talking" and r["agent"] == "agent1001", 10)
    assert first["caller_number"] == "13955550001"     # W was ahead of X: served first
    w.stop()                                          # W hangs up; next in line is X's placeholder
    res = x.result(120)
    assert res["callback"] and res["callback"]["answered"], res
    assert "083312348" in res["callback"]["from"]     # the caller sees the hotline's number
    # Y, who stayed behind X, was still waiting while X was called back (the agent may take Y
    # once the callback is over and wrap-up has passed)
    from datetime import datetime
    callback_over = x.wait_event("result", 1)["t"]
    yrec = next(r for r in s.records(50) if r["caller_number"] == "13955550003")
    assert not yrec["answered_at"] or datetime.fromisoformat(yrec["answered_at"]).timestamp() > callback_over - 2
    from simulators.audio import wav_stats
    assert wav_stats(tmp_path / "callback.wav").active_seconds > 2   # X heard the agent

    deadline = time.monotonic() + 15
    task = None
    while time.monotonic() < deadline:
        tasks = [t for t in s.api("/api/callbacks") if t["caller_number"] == "13955550002"]
        if tasks and tasks[0]["status"] == "done":
            task = tasks
            break
        time.sleep(0.3)
    assert task and len(task) == 1, (tasks, (s.tmp / "controller.log").read_text()[-3000:])
    assert task[0]["reason"] == "queue_callback" and task[0]["attempts"] == 1
    assert task[0]["call_id"] == asked["call_id"]
    incoming = [e for e in x.read() if e["event"] == "callback_answered"]
    assert len(incoming) == 1                          # exactly one callback
    y.stop()


def test_queue_callback_to_an_international_number_is_refused_and_audited(clean_stack, audio):
    """Security review 16 §4a (toll fraud): "press 5" is dialled by Asterisk to the caller ID, which is
    the caller's to set. A caller showing +882… gets no placeholder in the queue and is never called:
    the request fails at once and the audit log says so."""
    s = clean_stack
    number = "+88212345678"
    s.agent("agent1001", login=False)
    s.api("/api/agents/agent1001/login", "POST", {"ready": False})   # paused: the caller queues
    x = s.call("083312348", dtmf="2:1,4:1,20:5", hangup_after=45, caller=number)
    asked = s.wait_record(lambda r: r["caller_number"] == number and r["outcome"] == "callback_requested", 40)
    x.result(60)
    deadline = time.monotonic() + 15
    tasks = []
    while time.monotonic() < deadline:
        tasks = [t for t in s.api("/api/callbacks") if t["caller_number"] == number]
        if tasks and tasks[0]["status"] == "failed":
            break
        time.sleep(0.3)
    assert len(tasks) == 1 and tasks[0]["status"] == "failed" and tasks[0]["reason"] == "queue_callback", tasks
    refused = [e for e in s.api(f"/api/audit?call_id={asked['call_id']}") if e["action"] == "callback_refused"]
    assert len(refused) == 1 and not refused[0]["allowed"] and number in refused[0]["detail"], refused
    # no placeholder waits in the queue in the caller's place, so nothing rings the number later
    assert s.api("/api/status")["queues"]["leshan"]["waiting"] == 0
    s.api("/api/agents/agent1001/ready", "POST", {})
    time.sleep(3)
    assert not [r for r in s.records(50) if r.get("callback_of") == asked["call_id"]]
