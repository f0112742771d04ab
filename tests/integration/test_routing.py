"""Routing and 24/7 coverage on the real stack (issue: routing): skills, green channel, schedules,
overflow, voicemail with a callback task."""
from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import Stack

OPEN = {"schedules": {"default": {"always_open": True}}}


def closed_now_schedule() -> dict:
    """A weekly schedule that is closed at this moment, whatever the hour (time injected by data)."""
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    span = "23:00-23:59" if now.hour < 12 else "00:00-00:59"
    # the same keys as config/routing.yaml, so the override replaces its hours rather than adding to them
    return {"schedules": {"default": {"always_open": False, "weekly": {"mon-fri": [span], "sat-sun": [span]}}}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """This module's own stack: its voicemail callback tasks stay queued in Leshan after it, and must not
    sit ahead of the callers of whatever module runs next on the same (pytest-xdist) worker."""
    s = Stack(tmp_path_factory.mktemp("routing"))
    s.start()
    yield s
    s.close()


@pytest.fixture
def routing(clean_stack):
    yield clean_stack.set_routing
    if clean_stack.overrides.get("routing") != OPEN:
        clean_stack.set_routing(OPEN)


def test_tibetan_caller_in_garze_reaches_a_tibetan_agent_in_chengdu(clean_stack, audio):
    s = clean_stack
    s.agent("agent1007", play=audio["agent"])  # 次仁, Chengdu, speaks Tibetan; nobody in Garzê
    caller = s.call("083612348", dtmf="2:2,4:1", play=audio["caller"], hangup_after=18, caller="13944440001")
    assert caller.result(90)["answered"]
    rec = s.wait_record(lambda r: r["caller_number"] == "13944440001" and r["status"] == "ended")
    assert rec["city"] == "ganzi" and rec["language"] == "bo"
    assert rec["agent"] == "agent1007" and rec["queue"] == "lang-bo"
    assert rec["overflow"] == "ganzi-bo:EMPTY"  # Garzê's Tibetan queue had nobody: skipped at once


def test_green_channel_caller_joining_after_two_others_is_answered_first(clean_stack, audio):
    s = clean_stack
    log_path = s.asterisk.paths.host(s.asterisk.paths.log / "messages.log")
    log_start = log_path.stat().st_size   # this test's part of the shared instance's log
    agent = s.agent("agent1001", play=audio["agent"], login=False)
    s.api("/api/agents/agent1001/login", "POST", {"ready": False})  # logged in, paused: callers queue up
    plain = []
    for i in (1, 2):    # one after the other: the second hears one caller ahead
        plain.append(s.call("083312348", dtmf="2:1,4:1", hangup_after=60, caller=f"1394444001{i}"))
        s.wait_record(lambda r, i=i: r["caller_number"] == f"1394444001{i}" and r["status"] == "queued", 30)
    green = s.call("083312348", dtmf="2:1,4:9,6:1", play=audio["caller"], hangup_after=40, caller="13944440013")
    s.wait_record(lambda r: r["caller_number"] == "13944440013" and r["status"] == "queued", 40)
    # nobody free: callers hear their place and wait on joining; the green caller, served first,
    # is told "you are next" although two callers joined before
    with open(log_path, "rb") as f:
        f.seek(log_start)
        log = f.read().decode(errors="replace")
    # the queue step's one event says what the caller was told (Ahead/Minutes empty when nothing was said)
    said = [l for l in log.splitlines() if "UserEvent" in l and "HotlineQueue" in l and "Minutes: ," not in l]
    assert len(said) == 3 and "Ahead: 0,Minutes: " in said[-1], said
    # the plain callers' places (counted without walking the queue): the second has one more ahead
    ahead = [int(l.split("Ahead: ")[1].split(",")[0]) for l in said[:2]]
    assert ahead[1] == ahead[0] + 1, "\n".join(said)
    s.api("/api/agents/agent1001/ready", "POST", {})
    agent.wait_event("answered", 20)
    first = s.wait_record(lambda r: r["status"] == "talking" and r["agent"] == "agent1001", 10)
    assert first["caller_number"] == "13944440013"
    assert first["green"] == "migrant_worker" and first["ivr_path"] == "lang=zh/svc=green/green=migrant_worker"
    for r in s.records():
        if r["caller_number"] in ("13944440011", "13944440012"):
            assert r["status"] == "queued" and not r["answered_at"]
    green.result(60)
    for p in plain:
        p.stop()


def test_registry_caller_gets_the_green_channel_without_pressing_9(clean_stack):
    s = clean_stack
    s.agent("agent1001")
    caller = s.call("083312348", dtmf="2:1,4:1", hangup_after=10, caller="13700000080")  # registry: elderly
    caller.result(60)
    rec = s.wait_record(lambda r: r["caller_number"] == "13700000080" and r["status"] == "ended")
    assert rec["green"] == "elderly" and rec["service"] == "consultation"


def test_a_plus_86_caller_id_is_the_registered_11_digit_caller(clean_stack):
    """Issue 16, finding 4: the registry writes 13700000081; the carrier presents the caller as
    +8613700000081. One caller: the green channel without pressing 9, and the screen-pop shows the
    calls made from the 11-digit form."""
    s = clean_stack
    s.agent("agent1001")
    s.call("083312348", dtmf="2:1,4:1", hangup_after=12, caller="13700000081").result(60)
    first = s.wait_record(lambda r: r["caller_number"] == "13700000081" and r["status"] == "ended")
    s.call("083312348", dtmf="2:1,4:1", hangup_after=12, caller="+8613700000081").result(60)
    rec = s.wait_record(lambda r: r["caller_number"] == "+8613700000081" and r["status"] == "ended")
    assert rec["green"] == "disabled" and rec["service"] == "consultation"
    history = s.api(f"/api/calls/{rec['call_id']}/history")
    assert first["call_id"] in [c["call_id"] for c in history["previous_calls"]]


def test_after_hours_call_goes_to_the_night_pool(clean_stack, routing, audio):
    s = clean_stack
    routing(closed_now_schedule())
    s.agent("agent1001")                        # Leshan's own agent is there, but Leshan is closed
    s.agent("agent1006", play=audio["agent"])   # provincial night pool
    caller = s.call("083312348", dtmf="2:1,4:1", play=audio["caller"], hangup_after=15, caller="13944440021")
    assert caller.result(60)["answered"]
    rec = s.wait_record(lambda r: r["caller_number"] == "13944440021" and r["status"] == "ended")
    assert rec["after_hours"] and rec["queue"] == "province" and rec["agent"] == "agent1006"


def test_after_hours_with_nobody_anywhere_reaches_voicemail_and_a_callback_task(clean_stack, routing, audio):
    s = clean_stack
    routing(closed_now_schedule())
    caller = s.call("083312348", dtmf="2:1,4:1", play=audio["caller"], hangup_after=25, caller="13944440022")
    caller.result(60)
    rec = s.wait_record(lambda r: r["caller_number"] == "13944440022" and r["status"] == "ended")
    assert rec["outcome"] == "voicemail" and rec["overflow"] == "province:EMPTY"
    deadline = time.monotonic() + 10
    tasks = []
    while time.monotonic() < deadline and not tasks:
        tasks = [t for t in s.api("/api/callbacks") if t["caller_number"] == "13944440022"]
        time.sleep(0.3)
    assert len(tasks) == 1
    t = tasks[0]
    assert t["reason"] == "voicemail" and t["status"] == "pending" and t["city"] == "leshan" and t["language"] == "zh"
    assert t["voicemail"], "the message file is linked to the task"
    msg = s.asterisk.paths.host(t["voicemail"] + ".wav")
    assert msg.exists()


def test_overflow_after_wait_threshold_to_the_provincial_pool(clean_stack, routing, audio):
    s = clean_stack
    routing({**OPEN, "workflows": {"standard": [{"target": "city", "wait": 8},
                                                 {"target": "neighbours", "wait": 5},
                                                 {"target": "province", "wait": 60}]}})
    s.agent("agent1001", login=False)
    s.api("/api/agents/agent1001/login", "POST", {"ready": False})  # logged in, paused: never answers
    s.agent("agent1006", play=audio["agent"])
    caller = s.call("083312348", dtmf="2:1,4:1", play=audio["caller"], hangup_after=35, caller="13944440031")
    assert caller.result(90)["answered"]
    rec = s.wait_record(lambda r: r["caller_number"] == "13944440031" and r["status"] == "ended")
    assert rec["queue"] == "province" and rec["agent"] == "agent1006"
    assert rec["overflow"] == "leshan:TIMEOUT/leshan-near:TIMEOUT"
    assert rec["wait_seconds"] >= 13


def test_voicemail_left_while_the_controller_is_down_still_gets_a_callback_task(clean_stack, routing, audio):
    s = clean_stack
    routing(closed_now_schedule())
    s.kill_controller()
    caller = s.call("083312348", dtmf="2:1,4:1", play=audio["caller"], hangup_after=25, caller="13944440023")
    caller.result(60)
    s.start_controller()   # reads the voicemail spool on (re)connection
    tasks = [t for t in s.api("/api/callbacks") if t["caller_number"] == "13944440023"]
    assert len(tasks) == 1 and tasks[0]["reason"] == "voicemail" and tasks[0]["city"] == "leshan"
    assert s.asterisk.paths.host(tasks[0]["voicemail"] + ".wav").exists()
    s.stop_controller()
    s.start_controller()   # and only once
    assert len([t for t in s.api("/api/callbacks") if t["caller_number"] == "13944440023"]) == 1


def test_voicemail_is_called_back_when_the_city_opens(clean_stack, routing, audio, tmp_path):
    s = clean_stack
    routing(closed_now_schedule())
    caller = s.call("083312348", dtmf="2:1,4:1", play=audio["caller"], hangup_after=20, caller="13944440024",
                    extra=["--port", str(s.carrier_port), "--await-callback", "90", "--callback-talk", "6",
                           "--callback-record", str(tmp_path / "cb.wav")])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not [t for t in s.api("/api/callbacks") if t["caller_number"] == "13944440024"]:
        time.sleep(0.5)
    agent = s.agent("agent1001", play=audio["agent"], login=False)
    routing(OPEN)                                         # morning: Leshan opens
    s.api("/api/agents/agent1001/login", "POST", {"ready": True})
    res = caller.result(150)
    assert res["callback"] and res["callback"]["answered"], res
    agent.wait_event("answered", 5)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        tasks = [t for t in s.api("/api/callbacks") if t["caller_number"] == "13944440024"]
        if tasks and tasks[0]["status"] == "done":
            break
        time.sleep(0.3)
    assert len(tasks) == 1 and tasks[0]["status"] == "done" and tasks[0]["reason"] == "voicemail"


def test_voicemail_from_an_international_number_is_not_called_back_and_is_audited(clean_stack, routing, audio):
    """Security review 16 §4a (toll fraud): a caller ID is the caller's to set. Voicemail left from
    +882… gets its task, but when the city opens the task is refused by the numbering plan: marked
    failed, written to the audit log with its id and the reason, and never dialled."""
    s = clean_stack
    number = "+88212345678"
    routing(closed_now_schedule())
    s.call("083312348", dtmf="2:1,4:1", play=audio["caller"], hangup_after=20, caller=number).result(60)
    s.wait_record(lambda r: r["caller_number"] == number and r["status"] == "ended" and r["outcome"] == "voicemail", 30)
    deadline = time.monotonic() + 10
    tasks = []
    while time.monotonic() < deadline and not tasks:
        tasks = [t for t in s.api("/api/callbacks") if t["caller_number"] == number]
        time.sleep(0.3)
    assert len(tasks) == 1 and tasks[0]["status"] == "pending"
    s.agent("agent1001", login=False)
    routing(OPEN)                                         # the city opens: the scheduler's turn
    s.api("/api/agents/agent1001/login", "POST", {"ready": True})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        (task,) = [t for t in s.api("/api/callbacks") if t["caller_number"] == number]
        if task["status"] != "pending":
            break
        time.sleep(0.3)
    assert task["status"] == "failed"
    refused = [e for e in s.api("/api/audit?limit=50") if e["action"] == "callback_refused"]
    assert [e["target"] for e in refused] == [f"t{task['id']}"]
    assert not refused[0]["allowed"] and number in refused[0]["detail"] and "international" in refused[0]["detail"]
    time.sleep(2)
    # never dialled: no callback leg was placed (it would be a record with callback_of set)
    assert not [r for r in s.records(50) if r["caller_number"] == number and r.get("callback_of")]
    assert [r["outcome"] for r in s.records(50) if r["caller_number"] == number] == ["voicemail"]
