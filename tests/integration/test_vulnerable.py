"""Routing for vulnerable callers on the real stack (issue 19, seeds 000, 001, 003): green channel with
Tibetan, domestic violence at night, minors, emergencies (warm transfer to 110), complaints."""
from __future__ import annotations

import socket
import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import ROOT, Stack, csp_violations, free_port, fresh, page_login, wait_for
from tests.integration.test_routing import OPEN, closed_now_schedule


PASSWORD = "vulnerable-desk-password-12348"


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory):
    """This module's stack: its trunk's far end (carrier_port) is free for a sipp UAS acting as 110."""
    s = Stack(tmp_path_factory.mktemp("vulnerable"))
    s.start()
    s.set_password("agent1001", PASSWORD)
    yield s
    s.close()


@pytest.fixture
def vs(own_stack):
    with fresh(own_stack):
        yield own_stack
    if own_stack.overrides.get("routing") != OPEN:
        own_stack.set_routing(OPEN)


def test_green_tibetan_caller_keeps_priority_and_gets_a_tibetan_speaker(vs, audio):
    """A Tibetan-speaking 80-year-old in the green registry, joining after an ordinary Tibetan caller,
    is answered first, by the Tibetan-speaking agent (province-wide Tibetan pool)."""
    s = vs
    agent = s.agent("agent1007", play=audio["agent"], login=False)   # 次仁, Chengdu, speaks Tibetan
    s.api("/api/agents/agent1007/login", "POST", {"ready": False})     # paused: both callers queue up
    plain = s.call("083612348", dtmf="2:2,4:1", hangup_after=70, caller="13919190001")
    s.wait_record(lambda r: r["caller_number"] == "13919190001" and r["status"] == "queued", 40)
    elder = s.call("083612348", dtmf="2:2,4:1", play=audio["caller"], hangup_after=25, caller="13700000080")
    s.wait_record(lambda r: r["caller_number"] == "13700000080" and r["status"] == "queued", 40)
    s.api("/api/agents/agent1007/ready", "POST", {})
    agent.wait_event("answered", 20)
    first = s.wait_record(lambda r: r["status"] == "talking" and r["agent"] == "agent1007", 15)
    assert first["caller_number"] == "13700000080", first
    assert first["green"] == "elderly" and first["language"] == "bo" and first["queue"] == "lang-bo"
    assert first["overflow"] == "ganzi-bo:EMPTY"
    elder.result(60)
    rec = s.wait_record(lambda r: r["caller_number"] == "13700000080" and r["status"] == "ended", 30)
    assert rec["agent"] == "agent1007" and rec["green"] == "elderly"
    plain.stop()


def test_green_tibetan_caller_without_a_tibetan_speaker_gets_an_interpreter(vs, audio):
    s = vs
    s.agent("agent1006", play=audio["agent"])                              # night/provincial pool, no Tibetan
    interp = s.agent("interp2001", login=False)
    caller = s.call("083612348", dtmf="2:2,4:9,6:2", play=audio["caller"], hangup_after=25, caller="13919190002")
    assert caller.result(90)["answered"]
    interp.wait_event("answered", 20)                                      # conferenced in (three-way)
    rec = s.wait_record(lambda r: r["caller_number"] == "13919190002" and r["status"] == "ended", 30)
    assert rec["green"] == "elderly" and rec["language"] == "bo"
    assert rec["agent"] == "agent1006" and rec["queue"] == "province"
    assert rec["overflow"] == "ganzi-bo:EMPTY/lang-bo:EMPTY/ganzi:EMPTY"


def test_domestic_violence_at_night_reaches_a_female_lawyer_of_the_night_pool(vs, audio):
    s = vs
    s.set_routing(closed_now_schedule())                 # Leshan is closed
    s.agent("agent1006", play=audio["agent"])            # 陈律师: night pool, female
    caller = s.call("083312348", dtmf="2:1,4:9,6:6", play=audio["caller"], hangup_after=15, caller="13919190003")
    assert caller.result(90)["answered"]
    rec = s.wait_record(lambda r: r["caller_number"] == "13919190003" and r["status"] == "ended", 30)
    assert rec["after_hours"] and rec["green"] == "domestic_violence"
    assert rec["queue"] == "province-female" and rec["agent"] == "agent1006"
    assert not rec["overflow"]                            # not the general night pool: its female lawyers


def test_minor_reaches_a_lawyer_experienced_with_minors(vs, audio):
    s = vs
    s.agent("agent1001", play=audio["agent"])            # 王律师, Leshan: labour and traffic
    s.agent("agent1008", play=audio["agent"])            # 杨律师, Leshan: family, minors
    caller = s.call("083312348", dtmf="2:1,4:9,6:7", play=audio["caller"], hangup_after=15, caller="13919190004")
    assert caller.result(90)["answered"]
    rec = s.wait_record(lambda r: r["caller_number"] == "13919190004" and r["status"] == "ended", 30)
    assert rec["green"] == "minor" and rec["queue"] == "leshan-minors" and rec["agent"] == "agent1008"


def _bridge_members(s: Stack, channel: str) -> list[str]:
    """The channels in the bridge ``channel`` is in, read from Asterisk (CLI over the instance's socket)."""
    info = s.asterisk.rx(f"core show channel {channel}")
    bridge = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.strip().startswith("Bridge ID")), "")
    if not bridge:
        return []
    out = s.asterisk.rx(f"bridge show {bridge}")
    return [l.split(":", 1)[1].strip() for l in out.splitlines() if l.strip().startswith("Channel:")]


def test_emergency_warm_transfer_reaches_110_with_the_agent_still_on_the_line(vs, audio, tmp_path, browser):
    """A caller in danger: the agent, at the desk in a real browser, conferences in 110 (a sipp UAS at the
    trunk's far end). The caller, the agent and 110 are in one bridge; the action is audited; the outcome
    is `emergency` and counted in the statistics."""
    s = vs
    trace = tmp_path / "uas-110.log"
    uas = subprocess.Popen(["sipp", "-sf", str(ROOT / "tests/sipp/uas_partner.xml"), "-i", "127.0.0.1",
                            "-p", str(s.carrier_port), "-mp", str(free_port(socket.SOCK_DGRAM) & ~1), "-m", "1",
                            "-nostdin", "-trace_msg", "-message_file", str(trace), "-timeout", "120s"],
                           cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900})
    refused = csp_violations(page)
    try:
        s.agent("agent1001", play=audio["agent"])
        page_login(page, s.base_url, "agent1001", PASSWORD, "/desk")
        s.call("083312348", dtmf="2:1,4:1", play=audio["caller"], hangup_after=45, caller="13919190005")
        live = wait_for(lambda: [c for c in s.api("/api/status")["calls_in_progress"]
                                 if c["caller_number"] == "13919190005" and c["status"] == "talking"], 60,
                        "answered")[0]
        # an unknown number is refused (4xx), nothing is dialled
        status, err = s.api_error(f"/api/calls/{live['call_id']}/emergency", "POST", {"number": "12345"})
        assert status == 400, err
        page.wait_for_selector('#pop[data-status="talking"]', timeout=30_000)
        assert page.locator("#em-number option").all_text_contents() == ["110 公安报警 / police",
                                                                         "120 医疗急救 / ambulance"]
        page.select_option("#em-number", "110")
        page.fill("#em-reason", "来电者称正在遭受家暴，人身危险")
        page.click("#btn-emergency")
        # (the pages' CSP forbids playwright's string predicates: poll from here)
        wait_for(lambda: page.text_content("#em-status") or page.text_content("#action-error"), 20,
                 "the desk's answer to the emergency button")
        # 110 may answer before the poll: then the desk already says so (the events reach it live)
        assert any(w in page.text_content("#em-status") for w in ("正在呼叫", "已接入")), \
            (page.text_content("#em-status"), page.text_content("#action-error"), live)
        wait_for(lambda: trace.exists() and "INVITE sip:110@" in trace.read_text(errors="replace"), 30,
                 "INVITE for 110 at the trunk")
        caller_chan = live["channel"]
        members = wait_for(lambda: (m := _bridge_members(s, caller_chan)) and len(m) == 3 and m, 30,
                           "caller, agent and 110 in one bridge")
        assert caller_chan in members
        assert any(m.startswith("PJSIP/agent1001-") for m in members), members      # the agent stays on
        # the third is the 110 leg on the trunk (its Local channel optimised itself out of the bridge)
        (leg,) = [m for m in members if m != caller_chan and not m.startswith("PJSIP/agent1001-")]
        assert leg.startswith(f"PJSIP/{s.cfg.system.trunk.name}-") or leg.startswith("Local/110@"), members
        audit = [a for a in s.api("/api/audit?limit=50") if a["action"] == "emergency"]
        assert audit and audit[0]["call_id"] == live["call_id"] and audit[0]["target"] == "110"
        assert audit[0]["user_id"] == "agent1001" and "家暴" in audit[0]["detail"]
        page.wait_for_selector("#em-status:has-text('已接入')", timeout=20_000)   # the desk sees 110 joined
        rec = s.wait_record(lambda r: r["caller_number"] == "13919190005" and r["status"] == "ended", 60)
        assert rec["outcome"] == "emergency" and rec["transfers"] == "emergency:agent1001>110"
        day = datetime.fromisoformat(rec["started_at"]).astimezone(ZoneInfo(s.cfg.routing.timezone)).date()
        rows = s.api(f"/api/stats?period=day&from={day}&to={day}&city=leshan")
        row = next((r for r in rows if r["city"] == "leshan"), None)
        assert row and row["emergencies"] >= 1, rows
        assert not refused, refused
    finally:
        page.close()
        # end the 110 leg while its UAS still answers the BYE (retransmitted for 32 s to the next test's UAS)
        s.asterisk.rx("channel request hangup all")
        wait_for(lambda: "0 active channels" in s.asterisk.rx("core show channels"), 15, "no channel left")
        try:
            uas.wait(timeout=10)          # -m 1: done once that call ended
        except subprocess.TimeoutExpired:
            uas.kill()
            uas.wait()


def test_emergency_service_busy_is_shown_on_the_desk(vs, audio, tmp_path, browser):
    """110 answers 486 (a sipp UAS at the trunk's far end): the desk says it did not connect and why,
    instead of "dialling" for ever; the caller and agent stay connected and the outcome is not `emergency`."""
    s = vs
    # the previous test's 110 leg outlives its call by design (the agent finishes the handover): end it, or
    # its BYE reaches this UAS on the same port and takes its one call
    s.asterisk.rx("channel request hangup all")
    wait_for(lambda: "0 active channels" in s.asterisk.rx("core show channels"), 15, "no channel left")
    uas = subprocess.Popen(["sipp", "-sf", str(ROOT / "tests/sipp/uas_busy.xml"), "-i", "127.0.0.1",
                            "-p", str(s.carrier_port), "-mp", str(free_port(socket.SOCK_DGRAM) & ~1), "-m", "1",
                            "-nostdin", "-trace_msg", "-message_file", str(tmp_path / "uas-busy.log"), "-timeout", "60s"],
                           cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900})
    refused = csp_violations(page)
    try:
        s.agent("agent1001", play=audio["agent"])
        page_login(page, s.base_url, "agent1001", PASSWORD, "/desk")
        s.call("083312348", dtmf="2:1,4:1", play=audio["caller"], hangup_after=30, caller="13919190007")
        page.wait_for_selector('#pop[data-status="talking"]', timeout=60_000)
        page.select_option("#em-number", "110")
        page.fill("#em-reason", "来电者称有自伤风险")
        page.click("#btn-emergency")
        page.wait_for_selector('#em-status[data-state="failed"]', timeout=30_000)
        assert "486 Busy Here" in (tmp_path / "uas-busy.log").read_text(errors="replace")
        text = page.text_content("#em-status")
        assert "110" in text and "未接通" in text and "忙线" in text, text
        assert page.get_attribute("#em-status", "class") == "error"
        assert page.is_visible('#pop[data-status="talking"]')            # the agent is still with the caller
        rec = s.wait_record(lambda r: r["caller_number"] == "13919190007" and r["status"] == "ended", 60)
        assert rec["outcome"] != "emergency" and "emergency" not in rec["transfers"]
        assert not refused, refused
    finally:
        page.close()
        uas.kill()
        uas.wait()


def test_ivr_complaint_files_a_complaint_and_rings_the_city_supervisor_first(vs, audio):
    s = vs
    s.agent("agent1001", play=audio["agent"])                    # an ordinary Leshan agent, ready
    s.agent("sup_leshan", play=audio["agent"], login=False)      # 乐山值班长's phone: registered
    caller = s.call("083312348", dtmf="2:1,4:5", play=audio["caller"], hangup_after=15, caller="13919190006")
    assert caller.result(90)["answered"]
    rec = s.wait_record(lambda r: r["caller_number"] == "13919190006" and r["status"] == "ended", 30)
    assert rec["service"] == "complaint" and rec["queue"] == "leshan-supervisor" and rec["agent"] == "sup_leshan"
    filed = wait_for(lambda: [c for c in s.api("/api/complaints?city=leshan") if c["call_id"] == rec["call_id"]],
                     20, "the complaint record")
    assert len(filed) == 1 and filed[0]["source"] == "phone" and filed[0]["complainant_number"] == "13919190006"
    assert filed[0]["status"] == "received" and filed[0]["received_by"] == "ivr"
    assert [a for a in s.api("/api/audit?limit=50") if a["action"] == "file_complaint"
            and a["call_id"] == rec["call_id"] and a["target"] == f"complaint:{filed[0]['id']}"]


def test_ivr_complaint_with_no_supervisor_reachable_falls_back_to_the_ordinary_queue(vs, audio):
    s = vs
    s.agent("agent1001", play=audio["agent"])                    # nobody at the supervisor's phone
    caller = s.call("083312348", dtmf="2:1,4:5", play=audio["caller"], hangup_after=12, caller="13919190007")
    assert caller.result(90)["answered"]
    rec = s.wait_record(lambda r: r["caller_number"] == "13919190007" and r["status"] == "ended", 30)
    assert rec["queue"] == "leshan" and rec["agent"] == "agent1001"
    assert rec["overflow"] == "leshan-supervisor:EMPTY"
    wait_for(lambda: [c for c in s.api("/api/complaints?city=leshan") if c["call_id"] == rec["call_id"]], 20,
             "the complaint record")
