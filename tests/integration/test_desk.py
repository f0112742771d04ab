"""The agent desk and supervision on the real stack: a real browser (Debian chromium), pjsua2 phones,
Asterisk's app_queue, ChanSpy and transfers, with the audio of every leg measured."""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from simulators.audio import tone_presence, tone_wav
from tests.helpers import ROOT, Stack, csp_violations, finished_wav, fresh, wait_for

PASSWORD = "desk-test-password-12348"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("HOTLINE_ARTIFACTS", ROOT / "artifacts"))
IVR = "2:1,4:1"   # Mandarin, legal consultation
# each party a steady tone of its own: what a leg hears says who it hears
CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ, SECOND_AGENT_HZ = 500, 1000, 1700, 1300
MOH_HZ = 494      # one note of the hold music chord (callcenter/asterisk/runtime.py)


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    """A stack of its own with a wrap-up long enough to watch (the shared one uses 1 s)."""
    s = Stack(tmp_path_factory.mktemp("desk"))
    s.overrides["queues"]["wrapup_seconds"] = 4
    # follow-up visits at once and at any hour, so the test can watch one
    s.overrides["controller"]["follow_up"] = {"delay_minutes": 0, "calling_hours": "00:00-24:00",
                                              "retry_minutes": 0.2, "ring_seconds": 20}
    s.reconfigure()
    s.start()
    for user in ("agent1001", "agent1008", "sup_leshan", "sup_chengdu"):
        s.set_password(user, PASSWORD)
    yield s
    s.close()


@pytest.fixture
def d(desk):
    with fresh(desk):
        yield desk


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> dict[int, Path]:
    t = tmp_path_factory.mktemp("tones")
    return {hz: tone_wav(hz, 20, t / f"{hz}.wav") for hz in (CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ, SECOND_AGENT_HZ)}


def live_call(s: Stack, caller: str, status: str = "talking", timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in s.api("/api/status")["calls_in_progress"]:
            if c["caller_number"] == caller and c["status"] == status:
                return c
        time.sleep(0.3)
    raise AssertionError(f"no {status} call from {caller} within {timeout}s")


def asterisk_paused(s: Stack, agent: str) -> dict[str, bool]:
    """Asterisk's own view (CLI `queue show`): queue -> is this agent paused there."""
    out, queue = {}, None
    for line in s.asterisk.rx("queue show").splitlines():
        m = re.match(r"^(\S+) has \d+ calls", line)
        if m:
            queue = m.group(1)
        elif queue and re.search(rf"\(PJSIP/{agent}[ )]", line):
            out[queue] = "(paused" in line
    return out


# ---------------------------------------------------------------- the desk in a browser
def test_agent_desk_in_headless_chromium(d, audio):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (make test installs it)")
    s = d
    s.agent("agent1001", play=audio["agent"], login=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    note = "农民工欠薪：告知先向劳动监察投诉，可申请法律援助；已建议携带劳动合同和考勤记录。"
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900})
            refused = csp_violations(page)      # the pages run under script-src 'self' (issue 16, finding 10)
            page.goto(s.base_url + "/desk")
            page.wait_for_url("**/login?next=/desk")          # no session: the login page
            page.fill("#user", "agent1001")
            page.fill("#password", "wrong password!")
            page.click("#btn-login-submit")
            page.wait_for_selector("#login-error:has-text('登录失败')")
            page.fill("#password", PASSWORD)
            page.click("#btn-login-submit")
            page.wait_for_url("**/desk")
            state = page.locator("#state")
            page.wait_for_selector('#state[data-state="logged_out"]')
            assert state.text_content() == "未签入"
            page.click("#btn-login")
            page.wait_for_selector('#state[data-state="paused"]')
            page.click("#btn-ready")
            page.wait_for_selector('#state[data-state="ready"]')
            assert state.text_content() == "就绪"

            caller = s.call("083312348", dtmf=IVR, play=audio["caller"], hangup_after=60, caller="13922220001")
            page.wait_for_selector('#pop[data-status="talking"]', timeout=60_000)
            assert page.text_content("#pop-city") == "乐山市"
            assert page.text_content("#pop-caller") == "13922220001"
            assert page.text_content("#pop-language") == "普通话"
            assert page.text_content("#pop-ivr") == "lang=zh/svc=consultation"
            page.wait_for_selector('#state[data-state="on_call"]')
            _supervisor_page_sees_the_call_and_listens(s, browser, "13922220001")
            page.fill("#notes", note)
            page.click("#btn-save-notes")
            page.wait_for_selector("#notes-saved:has-text('已保存')")
            page.wait_for_selector("#ticket-id:has-text('#')", timeout=15_000)   # the call's ticket
            page.select_option("#ticket-category", "labour_wages")
            page.select_option("#ticket-outcome", "answered")
            page.fill("#ticket-summary", "农民工欠薪三个月")
            page.click("#btn-ticket-save")
            page.wait_for_selector("#ticket-saved:has-text('已保存')")
            page.click("#btn-ticket-resolve")
            page.wait_for_selector("#ticket-status:has-text('已办结')")
            # the legal-aid pre-screen with the caller, then an appointment at Leshan's center
            page.select_option("#ps-matter", "wage_arrears")
            page.check(".ps-group[value=migrant_worker]")
            page.click("#btn-prescreen")
            page.wait_for_selector('#ps-result[data-eligibility="likely"]')
            assert "欠条或工资单" in page.text_content("#ps-result")
            # issue 19: the article it rests on, and the county-level center of the county typed in
            assert "第42条第3项" in page.text_content("#ps-result")
            page.fill("#ps-county", "511102")
            page.click("#btn-prescreen")
            page.wait_for_selector("#ps-result:has-text('市中区法律援助中心')")
            page.wait_for_selector("#ticket-county:has-text('511102')")     # the county goes on the ticket
            page.fill("#ap-date", _a_day_with_slots(s))
            page.dispatch_event("#ap-date", "change")
            page.wait_for_selector("#ap-slot option", state="attached")
            page.click("#btn-book")
            page.wait_for_selector("#ap-result:has-text('已预约')")
            # 上门服务 (issue 19): a 60-year-old is refused with the reason, an 82-year-old gets a team
            page.fill("#hv-date", _a_day_with_slots(s, "home-visit-slots"))
            page.dispatch_event("#hv-date", "change")
            page.wait_for_selector("#hv-slot option", state="attached")
            page.fill("#hv-address", "乐山市市中区嘉州路1号3单元")
            page.fill("#hv-age", "60")
            page.click("#btn-home-visit")
            page.wait_for_selector('#hv-result[data-state="refused"]')
            assert "未能预约上门服务" in page.text_content("#hv-result")
            assert "80" in page.text_content("#hv-result")                 # the server's reason, shown as given
            page.fill("#hv-age", "82")
            page.click("#btn-home-visit")
            page.wait_for_selector('#hv-result[data-state="booked"]')
            assert "已预约上门服务" in page.text_content("#hv-result")
            page.screenshot(path=str(ARTIFACTS / "desk-agent-on-call-zh.png"), full_page=True)

            page.click("#btn-hangup")
            page.wait_for_selector('#pop[data-status="ended"]', timeout=15_000)
            page.wait_for_selector('#state[data-state="wrap_up"]', timeout=10_000)
            page.wait_for_selector('#state[data-state="ready"]', timeout=15_000)
            page.click("#lang-toggle")
            assert state.text_content() == "Ready"
            page.screenshot(path=str(ARTIFACTS / "desk-agent-after-call-en.png"), full_page=True)
            assert refused == [], refused
        finally:
            browser.close()

    result = caller.result(timeout=30)
    assert result["answered"] and result["hung_up_by"] == "remote"   # the desk hung up, not the caller
    rec = s.wait_record(lambda r: r["caller_number"] == "13922220001" and r["status"] == "ended")
    assert rec["notes"] == note and rec["agent"] == "agent1001" and rec["outcome"] == "answered"
    ticket = s.api(f"/api/calls/{rec['call_id']}/ticket")
    assert (ticket["category"], ticket["outcome"], ticket["status"]) == ("labour_wages", "answered", "resolved")
    assert ticket["county"] == "511102"
    appts = {a["kind"]: a for a in s.api("/api/appointments?caller=13922220001")}
    assert sorted(appts) == ["home_visit", "office"], appts
    assert all(a["center_id"] == "leshan_city" and a["ticket_id"] == ticket["id"] for a in appts.values())
    assert appts["home_visit"]["address"] == "乐山市市中区嘉州路1号3单元" and appts["home_visit"]["reason"] == "elderly_80"


def _a_day_with_slots(s: Stack, kind: str = "slots") -> str:
    from datetime import date, timedelta
    for ahead in range(1, 12):
        day = (date.today() + timedelta(days=ahead)).isoformat()
        if any(x["free"] for x in s.api(f"/api/legal-aid/centers/leshan_city/{kind}?date={day}")):
            return day
    raise AssertionError("Leshan's center offers no slot in the next days")
    assert (ARTIFACTS / "desk-agent-on-call-zh.png").stat().st_size > 10_000


def _supervisor_page_sees_the_call_and_listens(s: Stack, browser, caller: str) -> None:
    """Leshan's supervisor, in a browser of their own, sees the live call and listens in."""
    phone = s.agent("sup_leshan", login=False)
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 700})
    try:
        page = ctx.new_page()
        refused = csp_violations(page)
        page.goto(s.base_url + "/login?next=/desk")
        page.fill("#user", "sup_leshan")
        page.fill("#password", PASSWORD)
        page.click("#btn-login-submit")
        page.wait_for_url("**/desk")
        row = page.locator("#sup-calls tbody tr", has_text=caller)
        row.wait_for(timeout=15_000)
        assert "乐山市" in row.text_content()
        assert page.locator("#agent-panel").is_hidden()      # no phone desk for a supervisor
        row.locator("button.spy-listen").click()
        phone.wait_event("answered", 20)
        page.screenshot(path=str(ARTIFACTS / "desk-supervisor-zh.png"), full_page=True)
        assert refused == [], refused
    finally:
        ctx.close()
    listened = [e for e in s.api("/api/audit?limit=20") if e["action"] == "listen" and e["user_id"] == "sup_leshan"]
    assert listened and listened[0]["allowed"]


# ---------------------------------------------------------------- one pause everywhere, across a crash
def test_pause_in_one_queue_applies_to_all_and_survives_controller_kill(d):
    s = d
    s.api("/api/agents/agent1005/login", "POST", {"ready": True})
    queues = set(next(a for a in s.api("/api/agents") if a["id"] == "agent1005")["queues"])
    assert len(queues) >= 3, queues    # ganzi, aba, the Tibetan pool, skill queues
    wait_for(lambda: set(asterisk_paused(s, "agent1005")) == queues and not any(asterisk_paused(s, "agent1005").values()),
             what="agent1005 ready in every queue")

    # a pause that reaches one queue only (a phone feature code, the CLI) is applied everywhere
    s.asterisk.rx("queue pause member PJSIP/agent1005 queue ganzi reason meal")
    wait_for(lambda: all(asterisk_paused(s, "agent1005").values()), what="pause in every queue")
    view = next(a for a in s.api("/api/agents") if a["id"] == "agent1005")
    assert view["state"] == "paused" and view["pause_reason"] == "meal"

    s.api("/api/agents/agent1005/ready", "POST", {})
    wait_for(lambda: not any(asterisk_paused(s, "agent1005").values()), what="ready in every queue")

    # the controller dies; meanwhile a pause lands in one queue only; the restart makes it whole
    s.kill_controller()
    s.asterisk.rx("queue pause member PJSIP/agent1005 queue aba reason training")
    s.start_controller()
    wait_for(lambda: all(asterisk_paused(s, "agent1005").values()), what="pause in every queue after restart")
    for a in s.api("/api/agents"):
        truth = asterisk_paused(s, a["id"])
        if not truth:
            assert a["state"] == "logged_out", a
        else:
            assert set(a["queues"]) == set(truth), a
            assert a["paused"] == all(truth.values()), (a, truth)
    s.api("/api/agents/agent1005/logout", "POST", {})


# ---------------------------------------------------------------- supervisors
def test_whisper_and_barge_reach_the_right_legs_and_are_audited(d, tones, tmp_path):
    s = d
    s.agent("agent1001", play=tones[AGENT_HZ], record_dir=tmp_path / "agent")
    sup = s.agent("sup_leshan", play=tones[SUPERVISOR_HZ], record_dir=tmp_path / "sup", login=False, commands=True)
    leshan = s.desk_session("sup_leshan", PASSWORD)
    heard = {}
    for n, mode in enumerate(("whisper", "barge")):
        caller_rec = tmp_path / f"caller-{mode}.wav"
        number = f"1393333000{n}"
        caller = s.call("083312348", dtmf=IVR, play=tones[CALLER_HZ], record=caller_rec, hangup_after=24,
                        caller=number)
        call = live_call(s, number)
        if mode == "whisper":
            _forbidden_actions_change_nothing(s, call)
        code, body = leshan.request(f"/api/calls/{call['call_id']}/{mode}", "POST", {})
        assert code == 200, body
        wait_for(lambda: sum(1 for e in sup.read() if e["event"] == "answered") == n + 1, 20, "supervisor's phone answered")
        time.sleep(8)
        sup.send("hangup")
        caller.result(timeout=60)
        heard[mode] = {"caller": caller_rec, "agent": finished_wav(tmp_path / "agent"),
                       "supervisor": finished_wav(tmp_path / "sup")}
        # the next call must not find the agent in wrap-up
        wait_for(lambda: next(a for a in s.api("/api/agents") if a["id"] == "agent1001")["state"] == "ready",
                 what="agent ready again")

    w, b = heard["whisper"], heard["barge"]
    # whisper: the agent hears the supervisor, the caller never does; the supervisor hears both
    assert tone_presence(w["agent"], SUPERVISOR_HZ) > 0.15
    assert tone_presence(w["caller"], SUPERVISOR_HZ) < 0.02
    assert tone_presence(w["supervisor"], CALLER_HZ) > 0.3 and tone_presence(w["supervisor"], AGENT_HZ) > 0.3
    # barge: all three hear each other
    assert tone_presence(b["caller"], SUPERVISOR_HZ) > 0.15
    assert tone_presence(b["agent"], SUPERVISOR_HZ) > 0.15
    assert tone_presence(b["supervisor"], CALLER_HZ) > 0.3 and tone_presence(b["supervisor"], AGENT_HZ) > 0.3

    audit = s.api("/api/audit?limit=50")
    done = [(e["user_id"], e["action"]) for e in audit if e["allowed"]]
    assert ("sup_leshan", "whisper") in done and ("sup_leshan", "barge") in done
    # the city supervisor sees their own actions in the audit, and nothing of Chengdu's
    code, rows = leshan.request("/api/audit?limit=50")
    assert code == 200 and {r["action"] for r in rows} >= {"whisper", "barge"}


def _forbidden_actions_change_nothing(s: Stack, call: dict) -> None:
    call_id = call["call_id"]
    chengdu = s.desk_session("sup_chengdu", PASSWORD)
    other_agent = s.desk_session("agent1008", PASSWORD)
    attempts = [
        (chengdu, f"/api/calls/{call_id}/barge", "POST", {}),                 # outside their city
        (chengdu, "/api/agents/agent1001/pause", "POST", {"reason": "meal"}),
        (chengdu, f"/api/calls/{call_id}", "GET", None),
        (other_agent, f"/api/calls/{call_id}/hangup", "POST", {}),            # not their call
        (other_agent, f"/api/calls/{call_id}/notes", "PUT", {"notes": "x"}),
        (other_agent, "/api/agents/agent1001/logout", "POST", {}),
        (other_agent, f"/api/calls/{call_id}/listen", "POST", {}),            # agents do not supervise
        (other_agent, "/api/status", "GET", None),
    ]
    for session, path, method, body in attempts:
        code, resp = session.request(path, method, body)
        assert code == 403, (path, code, resp)
    # a session without its CSRF token cannot act even on what it may do
    code, _ = other_agent.request("/api/agents/agent1008/login", "POST", {}, csrf=False)
    assert code == 403
    # nobody at all: 401
    import urllib.request, urllib.error
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(s.base_url + "/api/calls", timeout=5)
    assert e.value.code == 401
    # nothing changed: the call still talks to agent1001, who is still on it, notes empty
    now = live_call(s, call["caller_number"])
    assert now["agent"] == "agent1001"
    assert next(a for a in s.api("/api/agents") if a["id"] == "agent1001")["state"] == "on_call"
    assert s.api(f"/api/calls/{call_id}")["notes"] == ""
    refused = [e for e in s.api(f"/api/audit?call_id={call_id}") if not e["allowed"]]
    assert {e["user_id"] for e in refused} == {"sup_chengdu", "agent1008"}


# ---------------------------------------------------------------- transfers and hold
def test_attended_transfer_connects_the_caller_to_the_second_agent(d, tones, tmp_path):
    s = d
    first = s.agent("agent1001", play=tones[AGENT_HZ])
    second = s.agent("agent1002", play=tones[SECOND_AGENT_HZ], login=False)   # Chengdu: not in Leshan's queue
    caller_rec = tmp_path / "caller.wav"
    caller = s.call("083312348", dtmf=IVR, play=tones[CALLER_HZ], record=caller_rec, hangup_after=32,
                    caller="13944440001")
    call = live_call(s, "13944440001")
    assert call["agent"] == "agent1001"
    time.sleep(3)                        # the caller talks to the first agent a while
    s.api(f"/api/calls/{call['call_id']}/transfer", "POST",
          {"target": {"type": "agent", "id": "agent1002"}, "attended": True})
    second.wait_event("answered", 20)
    time.sleep(2)                        # the two agents talk; the caller hears hold music
    s.api(f"/api/calls/{call['call_id']}/complete", "POST", {})
    wait_for(lambda: live_call(s, "13944440001")["agent"] == "agent1002", 15, "caller connected to agent1002")
    assert any(e["event"] == "call_state" and e["state"] == "disconnected" for e in first.read())
    result = caller.result(timeout=60)
    assert result["answered"]
    rec = s.wait_record(lambda r: r["caller_number"] == "13944440001" and r["status"] == "ended")
    assert rec["agent"] == "agent1002" and rec["transfers"].startswith("attended:agent1001>")
    # the caller heard the first agent, then the second one (after the transfer completed)
    assert tone_presence(caller_rec, AGENT_HZ) > 0.05
    assert tone_presence(caller_rec, SECOND_AGENT_HZ) > 0.2


def _interrupted_call(s: Stack, tones, tmp_path, caller_number: str, action: str, undo: str, seconds: float,
                      then=None) -> tuple[Path, tuple, tuple, tuple]:
    """The agent plays their tone to a caller who records; after 2 s the desk sends ``action``, after
    ``seconds`` ``undo`` (then ``then(call)``). The caller's recording and the windows before, during and
    after, in seconds from the answer."""
    s.agent("agent1001", play=tones[AGENT_HZ])
    caller_rec = tmp_path / "caller.wav"
    caller = s.call("083312348", dtmf=IVR, play=tones[CALLER_HZ], record=caller_rec, hangup_after=seconds + 18,
                    caller=caller_number)
    call = live_call(s, caller_number)
    time.sleep(2)
    t_on = time.time()
    s.api(f"/api/calls/{call['call_id']}/{action}", "POST", {})
    time.sleep(seconds)
    t_off = time.time()
    s.api(f"/api/calls/{call['call_id']}/{undo}", "POST", {})
    if then:
        then(call)
    start = caller.result(timeout=60)["answered_at"]
    return (caller_rec, (t_on - start - 2, t_on - start), (t_on - start + 1.5, t_off - start - 0.5),
            (t_off - start + 1.5, t_off - start + 5))


def test_desk_hold_plays_music_and_resume_reconnects(d, tones, tmp_path):
    s = d

    def resume_again(call):
        code, body = _post_error(s, f"/api/calls/{call['call_id']}/resume")
        assert code == 409 and "not on hold" in body["error"]
    rec_path, before, during, after = _interrupted_call(s, tones, tmp_path, "13955550001", "hold", "resume", 6,
                                                        then=resume_again)
    assert tone_presence(rec_path, AGENT_HZ, *before) > 0.5
    assert tone_presence(rec_path, AGENT_HZ, *during) < 0.05 and tone_presence(rec_path, MOH_HZ, *during) > 0.3
    assert tone_presence(rec_path, AGENT_HZ, *after) > 0.5
    rec = s.wait_record(lambda r: r["caller_number"] == "13955550001" and r["status"] == "ended")
    assert rec["agent"] == "agent1001" and rec["outcome"] == "answered"


def test_desk_mute_silences_the_agent_for_the_caller_and_unmute_brings_them_back(d, tones, tmp_path):
    rec_path, before, during, after = _interrupted_call(d, tones, tmp_path, "13955550007", "mute", "unmute", 5)
    assert tone_presence(rec_path, AGENT_HZ, *before) > 0.5
    assert tone_presence(rec_path, AGENT_HZ, *during) < 0.05
    assert tone_presence(rec_path, AGENT_HZ, *after) > 0.5


def test_pjsua2_phone_keys_hold_dtmf_and_refer_transfer(d, tones, tmp_path):
    """`hotline agent --commands`: the phone's own hold, DTMF and (REFER) transfer."""
    s = d
    first = s.agent("agent1001", play=tones[AGENT_HZ], commands=True)
    s.agent("agent1002", play=tones[SECOND_AGENT_HZ], login=False)
    caller_rec = tmp_path / "caller.wav"
    caller = s.call("083312348", dtmf=IVR, play=tones[CALLER_HZ], record=caller_rec, hangup_after=30,
                    caller="13966660001")
    live_call(s, "13966660001")
    time.sleep(1)
    first.send("dtmf 59")
    time.sleep(2)
    first.send("hold")
    time.sleep(5)
    first.send("unhold")
    time.sleep(2)
    first.send("transfer agent-agent1002")
    wait_for(lambda: live_call(s, "13966660001")["agent"] == "agent1002", 20, "caller with agent1002")
    oks = [(e["command"], e["ok"]) for e in first.read() if e["event"] == "command"]
    assert oks == [("dtmf", True), ("hold", True), ("unhold", True), ("transfer", True)], oks
    result = caller.result(timeout=60)
    assert "".join(result["dtmf_received"]) == "59"
    assert tone_presence(caller_rec, MOH_HZ) > 0.05           # Asterisk's music while the phone held
    assert tone_presence(caller_rec, SECOND_AGENT_HZ) > 0.1    # then the second agent
    rec = s.wait_record(lambda r: r["caller_number"] == "13966660001" and r["status"] == "ended")
    assert rec["agent"] == "agent1002" and "blind:agent1001>agent-agent1002" in rec["transfers"]


def _post_error(s: Stack, path: str) -> tuple[int, dict]:
    return s.api_error(path, "POST", {})


# ---------------------------------------------------------------- consultation tickets
def test_answered_call_gets_a_ticket_the_agent_classifies_and_closes(d, audio):
    s = d
    s.agent("agent1001", play=audio["agent"])
    caller = s.call("083312348", dtmf=IVR, play=audio["caller"], hangup_after=12, caller="13977770001")
    call = live_call(s, "13977770001")
    mine, other = s.desk_session("agent1001", PASSWORD), s.desk_session("agent1008", PASSWORD)
    ticket = wait_for(lambda: (lambda r: r[1] if r[0] == 200 else None)(
        mine.request(f"/api/calls/{call['call_id']}/ticket")), 15, "a ticket for the answered call")
    assert (ticket["status"], ticket["agent"], ticket["city"], ticket["source"]) == ("open", "agent1001", "leshan", "call")
    path = f"/api/tickets/{ticket['id']}"

    # bad input: a clear 4xx and nothing written
    for body, code, words in [({"category": "astrology"}, 400, "unknown category"),
                              ({"outcome": "answered", "status": "closed"}, 400, "unknown fields"),
                              ({"follow_up": "yes"}, 400, "true or false")]:
        got, resp = mine.request(path, "PATCH", body)
        assert (got, words in resp["error"]) == (code, True), resp
    got, resp = mine.request(path + "/status", "POST", {"status": "resolved"})
    assert got == 409 and "classify" in resp["error"]
    assert mine.request(path)[1]["category"] == "" and mine.request(path)[1]["status"] == "open"
    # another agent cannot touch it
    assert other.request(path, "PATCH", {"category": "traffic"})[0] == 403
    assert other.request(path)[0] == 403

    got, t = mine.request(path, "PATCH", {"category": "labour_wages", "outcome": "referred_legal_aid",
                                          "summary": "农民工欠薪三个月", "answer": "可向劳动监察投诉并申请法律援助",
                                          "follow_up": True})
    assert got == 200 and t["category"] == "labour_wages" and t["follow_up"] is True
    _book_an_appointment_for(s, mine, t)
    for status in ("referred", "closed"):
        got, t = mine.request(path + "/status", "POST", {"status": status})
        assert got == 200 and t["status"] == status, t
    assert t["closed_at"] and mine.request(path, "PATCH", {"summary": "x"})[0] == 409
    caller.result(timeout=60)

    # the next call from the same number pops up with this ticket in its history
    s.call("083312348", dtmf=IVR, play=audio["caller"], hangup_after=20, caller="13977770001")
    again = live_call(s, "13977770001")
    got, hist = mine.request(f"/api/calls/{again['call_id']}/history")
    assert got == 200 and [x["id"] for x in hist["tickets"] if x["call_id"] == call["call_id"]] == [ticket["id"]]
    audit = [(e["action"], e["detail"]) for e in s.api(f"/api/audit?call_id={call['call_id']}")]
    assert ("ticket_status", "referred>closed") in audit
    _statistics_count_it(s)


def _statistics_count_it(s: Stack) -> None:
    """This month's figures for Leshan include this test's calls, referral and appointment; the CSV export
    says the same as the JSON; an agent may not read them."""
    import csv
    import io
    import urllib.request
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo
    # this month in the hotline's time zone (a test may straddle local midnight, not a month's end
    # and the next day's start at once)
    today = datetime.now(ZoneInfo(s.cfg.routing.timezone)).date()
    first = today.replace(day=1) if today.day > 1 else today.replace(day=1) - timedelta(days=1)
    q = f"/api/stats?period=month&from={first}&to={today}&city=leshan"
    rows = s.api(q)
    total = {k: sum(r[k] for r in rows) for k in ("calls", "answered", "referrals")}
    assert total["calls"] >= 2 and total["answered"] >= 2 and total["referrals"] >= 1
    assert sum(r["by_category"].get("labour_wages", 0) for r in rows) >= 1
    req = urllib.request.Request(s.base_url + q + "&format=csv&lang=en",
                                 headers={"Authorization": f"Bearer {s.secrets.service_token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        lines = list(csv.DictReader(io.StringIO(r.read().decode("utf-8-sig"))))
    assert [(int(x["calls"]), int(x["answered"]), int(x["referrals"])) for x in lines] == \
        [(r["calls"], r["answered"], r["referrals"]) for r in rows]
    code, _ = s.desk_session("agent1001", PASSWORD).request(q)
    assert code == 403


def _book_an_appointment_for(s: Stack, desk, ticket: dict) -> None:
    """During the call the agent books the caller into Leshan's legal-aid center; the confirmation
    text waits in the outbox; bad requests are refused and write nothing."""
    from datetime import date, timedelta
    day, slots = None, []
    for ahead in range(1, 12):
        day = (date.today() + timedelta(days=ahead)).isoformat()
        slots = [x for x in desk.request(f"/api/legal-aid/centers/leshan_city/slots?date={day}")[1] if x["free"]]
        if slots:
            break
    assert slots, "Leshan's center offers no slot in the next days"
    good = {"center": "leshan_city", "date": day, "slot": slots[0]["slot"], "caller_number": ticket["caller_number"],
            "language": "zh", "ticket_id": ticket["id"]}
    for bad, words in [({"center": "atlantis"}, "unknown center"), ({"date": "26/11/2026"}, "YYYY-MM-DD"),
                       ({"slot": "03:00"}, "no slot 03:00"), ({"caller_number": "call me"}, "phone number"),
                       ({"ticket_id": 99999}, "existing ticket"), ({"language": "fr"}, "language must be")]:
        code, resp = desk.request("/api/appointments", "POST", {**good, **bad})
        assert code == 400 and words in resp["error"], (bad, resp)
    assert s.api(f"/api/appointments?caller={ticket['caller_number']}") == []
    code, appt = desk.request("/api/appointments", "POST", good)
    assert code == 201 and appt["status"] == "booked" and appt["seat"] >= 1, appt   # seat 1 may be the browser test's
    sms = s.api(f"/api/outbox?related=appointment:{appt['id']}")
    assert sms[0]["kind"] == "appointment_confirmation" and appt["code"] in sms[0]["body"]
    assert "乐山市法律援助中心" in sms[0]["body"] and sms[0]["to_number"] == ticket["caller_number"]


# ---------------------------------------------------------------- follow-up visits (回访)
def test_closed_ticket_is_followed_up_by_a_survey_call_whose_ratings_are_stored(d, audio):
    s = d
    s.agent("agent1001", play=audio["agent"])
    number = "13988880001"
    caller = s.call("083312348", dtmf=IVR, play=audio["caller"], hangup_after=10, caller=number,
                    extra=["--port", str(s.carrier_port), "--await-callback", "90", "--callback-talk", "45",
                           "--callback-dtmf", "3:4,7:5,11:3"])
    call = live_call(s, number)
    ticket = wait_for(lambda: _ticket_of(s, call["call_id"]), 15, "the call's ticket")
    s.api(f"/api/tickets/{ticket['id']}", "PATCH", {"category": "traffic", "outcome": "answered", "follow_up": True})
    s.wait_record(lambda r: r["caller_number"] == number and r["status"] == "ended", 30)
    for status in ("resolved", "closed"):
        s.api(f"/api/tickets/{ticket['id']}/status", "POST", {"status": status})
    result = caller.result(timeout=150)
    assert result["callback"] and result["callback"]["answered"], result
    assert "83312348" in result["callback"]["from"]           # the caller sees their city's 12348
    fu = wait_for(lambda: next((f for f in s.api(f"/api/follow-ups?ticket_id={ticket['id']}")
                                if f["status"] == "done"), None), 20, "the survey's result")
    assert (fu["attitude"], fu["efficiency"], fu["professionalism"]) == (4, 5, 3)
    assert fu["result"] == "complete" and fu["agent"] == "agent1001" and fu["attempts"] == 1


def _ticket_of(s: Stack, call_id: str):
    import urllib.error
    try:
        return s.api(f"/api/calls/{call_id}/ticket")
    except urllib.error.HTTPError:
        return None


# ---------------------------------------------------------------- complaints (服务投诉)
def test_complaint_is_filed_assigned_replied_and_counted(d):
    s = d
    agent, leshan, chengdu = (s.desk_session(u, PASSWORD) for u in ("agent1008", "sup_leshan", "sup_chengdu"))
    code, resp = agent.request("/api/complaints", "POST", {"city": "leshan", "description": ""})
    assert code == 400 and "description" in resp["error"]
    code, c = agent.request("/api/complaints", "POST", {
        "city": "leshan", "kind": "service", "source": "phone", "complainant_number": "13999990001",
        "about_agent": "agent1001", "description": "来电称律师解答不耐烦"})
    assert code == 201 and c["status"] == "received" and c["ref"].startswith("C")
    assert agent.request("/api/complaints")[0] == 403              # it may be about a colleague, or oneself
    assert chengdu.request(f"/api/complaints/{c['id']}")[0] == 403
    code, resp = leshan.request(f"/api/complaints/{c['id']}/assign", "POST", {"to": "sup_chengdu"})
    assert code == 400 and "supervisor of leshan" in resp["error"]
    code, resp = leshan.request(f"/api/complaints/{c['id']}/close", "POST", {})
    assert code == 409
    assert leshan.request(f"/api/complaints/{c['id']}/assign", "POST", {"to": "sup_leshan"})[1]["status"] == "assigned"
    code, done = leshan.request(f"/api/complaints/{c['id']}/reply", "POST", {"reply": "已核实，已对值班律师进行提醒。"})
    assert code == 200 and done["status"] == "replied" and done["replied_at"]
    (sms,) = s.api(f"/api/outbox?related=complaint:{c['id']}")
    assert sms["to_number"] == "13999990001" and c["ref"] in sms["body"] and "已核实" in sms["body"]
    assert leshan.request(f"/api/complaints/{c['id']}/close", "POST", {})[1]["status"] == "closed"
    from datetime import datetime
    from zoneinfo import ZoneInfo
    from datetime import timedelta
    today = datetime.now(ZoneInfo(s.cfg.routing.timezone)).date()
    rows = s.api(f"/api/stats?period=day&from={today - timedelta(days=1)}&to={today}&city=leshan")
    assert sum(r["complaints"] for r in rows) >= 1      # filed today (or just before local midnight)
