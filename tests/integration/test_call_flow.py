"""Walking skeleton on the real stack: Asterisk 22, the controller, pjsua2 callers and agents."""
from __future__ import annotations

import re
import socket
import subprocess
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from simulators.audio import wav_stats
from tests.helpers import finished_wav, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_leshan_caller_reaches_agent_with_audio_both_ways(clean_stack, audio, tmp_path):
    s = clean_stack
    s.agent("agent1001", play=audio["agent"], record_dir=tmp_path / "agent")
    caller_rec = tmp_path / "caller.wav"
    caller = s.call("083312348", dtmf="2:1,4:1", play=audio["caller"], record=caller_rec,
                    hangup_after=22, caller="13911110001")
    result = caller.result(timeout=90)
    assert result["answered"] and result["dtmf_sent"] == ["1", "1"]

    rec = s.wait_record(lambda r: r["caller_number"] == "13911110001" and r["status"] == "ended")
    assert rec["city"] == "leshan" and rec["dialed_number"] == "083312348"
    assert rec["language"] == "zh"
    assert rec["ivr_path"] == "lang=zh/svc=consultation"  # both choices came by DTMF, not by default
    assert rec["queue"] == "leshan" and rec["agent"] == "agent1001"
    assert rec["outcome"] == "answered" and rec["hangup_cause"] == 16
    assert rec["wait_seconds"] is not None and 0 <= rec["wait_seconds"] < 10
    assert rec["talk_seconds"] > 5

    # caller -> agent: the agent's phone recorded the caller's speech
    assert wav_stats(finished_wav(tmp_path / "agent")).active_seconds > 2, "agent heard silence"
    # agent -> caller: after the bridge the caller hears only the agent
    bridged_at = _ts(rec["answered_at"]) - _ts(rec["started_at"])
    after = wav_stats(caller_rec, start=bridged_at + 1.0, end=bridged_at + 8.0)
    assert after.active_seconds > 2, f"caller heard silence from the agent: {after}"
    # Asterisk's own recording of the conversation
    mixed = s.asterisk.paths.recording_host_path(rec["recording_path"])
    assert mixed.exists(), mixed
    stats = wav_stats(mixed)
    assert stats.duration > 5 and stats.active_seconds > 3, stats


def test_028_caller_reaches_the_city_they_choose(clean_stack, audio):
    s = clean_stack
    s.agent("agent1003")  # Meishan
    caller = s.call("02812348", dtmf="2:1,4:2,6:1", play=audio["caller"], hangup_after=14, caller="13911110002")
    assert caller.result(90)["answered"]
    rec = s.wait_record(lambda r: r["caller_number"] == "13911110002" and r["status"] == "ended")
    assert rec["city"] == "meishan" and rec["area_code"] == "028"
    assert rec["ivr_path"] == "lang=zh/city=meishan/svc=consultation"
    assert rec["agent"] == "agent1003"


def test_028_caller_choosing_nothing_gets_the_configured_default(clean_stack, audio):
    s = clean_stack
    s.agent("agent1002")  # Chengdu, the default for 028
    # English, then silence through the city menu (2 attempts, ~25 s), then legal consultation
    caller = s.call("+862812348", dtmf="2:3,40:1", play=audio["caller"], hangup_after=55, caller="13911110003")
    caller.result(150)
    rec = s.wait_record(lambda r: r["caller_number"] == "13911110003" and r["status"] == "ended")
    assert rec["dialed_number"] == "02812348"  # +86 form normalised by the dialplan
    assert rec["language"] == "en"
    assert rec["city"] == "chengdu" and "city=chengdu~default" in rec["ivr_path"]
    assert rec["ivr_path"] == "lang=en/city=chengdu~default/svc=consultation"
    assert rec["agent"] == "agent1002"


def test_garbage_dtmf_is_rejected_and_the_caller_moves_on(clean_stack, audio):
    s = clean_stack
    s.agent("agent1001")
    caller = s.call("083312348", dtmf="2:*,3:9,9:2,11:5", play=audio["caller"], hangup_after=25, caller="13911110004")
    caller.result(90)
    rec = s.wait_record(lambda r: r["caller_number"] == "13911110004" and r["status"] == "ended")
    # '*' and '9' are not options: the menu said so and asked again; '2' chose Tibetan, '5' complaint
    assert rec["ivr_path"] == "lang=bo/svc=complaint"
    assert rec["language"] == "bo" and rec["service"] == "complaint"


@pytest.mark.parametrize("number", ["099912348", "12345", "+8699912348"])
def test_unknown_number_gets_apology_and_clean_hangup(clean_stack, number, tmp_path):
    s = clean_stack
    caller = s.call(number, record=tmp_path / "apology.wav", hangup_after=30, caller="13911110005")
    res = caller.result(60)
    assert not res["answered"]
    assert res["status"] == 404  # cause 1, unallocated number
    assert res["early_media"], "the apology should be heard as early media"
    assert wav_stats(tmp_path / "apology.wav").active_seconds > 2
    rec = s.wait_record(lambda r: r["caller_number"] == "13911110005" and r["status"] == "ended"
                        and r["outcome"] == "unknown_number" and r["dialed_number"].endswith(number[-5:]))
    assert rec["hangup_cause"] == 1 and rec["city"] == ""


def test_sipp_call_through_trunk_is_answered_from_the_queue(clean_stack):
    s = clean_stack
    s.agent("agent1001")
    a = s.cfg.system.asterisk
    res = subprocess.run(["sipp", f"127.0.0.1:{a.sip_port}", "-sf", str(ROOT / "tests/sipp/uac_ivr_queue.xml"),
                          "-s", "083312348", "-key", "caller", "1391111006", "-d", "12000",
                          "-m", "1", "-i", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM)),
                          "-mp", str(free_port(socket.SOCK_DGRAM) & ~1),
                          "-timeout", "60s", "-timeout_error", "-nostdin", "-trace_err"],
                         capture_output=True, text=True, timeout=90, cwd=s.tmp)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    rec = s.wait_record(lambda r: r["caller_number"] == "13911110061" and r["status"] == "ended")
    assert rec["ivr_path"] == "lang=zh/svc=legal_aid"  # RFC 2833 from sipp's pcaps reached Read()
    assert rec["queue"] == "leshan" and rec["agent"] == "agent1001" and rec["outcome"] == "answered"


def test_bad_api_payloads_get_clear_errors(clean_stack):
    s = clean_stack
    code, body = s.api_error("/api/agents/agent1001/login", raw=b"{not json")
    assert code == 400 and "JSON" in body["error"]
    code, body = s.api_error("/api/agents/nobody/login", body={})
    assert code == 404 and "nobody" in body["error"]
    code, body = s.api_error("/api/agents/agent1001/pause", body={"reason": "nap"})
    assert code in (400, 409)
    s.api("/api/agents/agent1001/login", "POST", {})
    code, body = s.api_error("/api/agents/agent1001/pause", body={"reason": "nap"})
    assert code == 400 and "meal" in body["error"]
    code, body = s.api_error("/api/agents/agent1001/login", body={"ready": "yes"})
    assert code == 400
    code, body = s.api_error("/api/calls?limit=abc", method="GET")
    assert code == 400


def test_agent_lifecycle_is_asterisk_state(clean_stack):
    s = clean_stack
    s.api("/api/agents/agent1005/login", "POST", {})
    view = {a["id"]: a for a in s.api("/api/agents")}["agent1005"]
    assert view["state"] == "paused" and view["home"] == ["ganzi", "aba"]
    assert {"ganzi", "aba", "ganzi-bo", "aba-bo", "lang-bo", "ganzi-near", "aba-near", "ganzi-land"} <= set(view["queues"])
    s.api("/api/agents/agent1005/ready", "POST", {})
    s.api("/api/agents/agent1005/pause", "POST", {"reason": "meal"})
    out = s.asterisk.rx("queue show ganzi") + s.asterisk.rx("queue show aba")
    assert out.count("(PJSIP/agent1005)") == 2 and out.count("paused:meal") == 2, out
    s.api("/api/agents/agent1005/logout", "POST", {})
    assert "agent1005" not in s.asterisk.rx("queue show ganzi")


@pytest.mark.parametrize("i, number", list(enumerate(["999,chengdu,028", "083312348,chengdu,028", "+86833,chengdu"])))
def test_dialled_number_cannot_inject_a_city(clean_stack, i, number):
    """Security review 16 §9: the Request-URI user part reaches the dialplan as sent. Commas in it used
    to become Gosub arguments (the second one the call's city); now it is filtered to digits, and a
    number that changes under the filter is an unknown number with no city."""
    s = clean_stack
    me = f"1391111007{i}"
    caller = s.call(number, hangup_after=15, caller=me)
    res = caller.result(60)
    assert not res["answered"]
    rec = s.wait_record(lambda r: r["caller_number"] == me and r["status"] == "ended", 30)
    assert rec["outcome"] == "unknown_number" and rec["city"] == "", rec
    assert rec["dialed_number"].lstrip("+").isdigit(), rec


def test_an_agents_state_follows_their_phone_one_event_per_change(clean_stack, audio):
    """The agents' view reads the phone's own DeviceStateChange (one event per change); QueueMemberStatus,
    which repeats each change once per queue the agent is in, is filtered at the source (issue 22)."""
    s = clean_stack
    view = lambda: next(a for a in s.api("/api/agents") if a["id"] == "agent1001")
    agent = s.agent("agent1001", answer_delay=5)
    wait_for(lambda: view()["device"] == "not_in_use", 15, "agent1001's phone idle")
    caller = s.call("083312348", dtmf="2:1,4:1", play=audio["caller"], hangup_after=16, caller="13911110077")
    # ringing for 5 s before the auto-answer: the desk shows the agent busy while the phone rings
    rang = wait_for(lambda: (lambda v: v if v["device"] == "ringing" else None)(view()), 40, "agent1001 ringing")
    assert rang["state"] == "on_call"
    wait_for(lambda: view()["device"] == "in_use", 15, "agent1001 talking")
    assert caller.result(90)["answered"]
    done = wait_for(lambda: (lambda v: v if v["device"] == "not_in_use" else None)(view()), 15, "agent1001 free")
    assert done["state"] in ("wrap_up", "ready")
    agent.stop()      # the phone unregisters: calls must not be offered, the view says why
    wait_for(lambda: view()["device"] == "unavailable", 20, "agent1001's phone gone")
    req = urllib.request.Request(s.base_url + "/metrics", headers={"Authorization": f"Bearer {s.secrets.service_token}"})
    metrics = urllib.request.urlopen(req, timeout=10).read().decode()
    names = dict(re.findall(r'^hotline_ami_events_total{event="([^"]+)"} ([0-9.e+]+)$', metrics, re.M))
    assert "DeviceStateChange" in names and "QueueMemberStatus" not in names, names
    # an event's age at its arrival and at its handling, and the loop's own lateness: one count per
    # timestamped event each, and samples of the loop's timer
    counts = dict(re.findall(r'^hotline_(ami_event_arrival|ami_event_delay|event_loop_lag)_seconds_count ([0-9.e+]+)$',
                             metrics, re.M))
    assert float(counts["ami_event_arrival"]) >= float(counts["ami_event_delay"]) > 0, counts
    assert float(counts["event_loop_lag"]) > 0, counts
