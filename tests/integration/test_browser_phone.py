"""The desk's browser phone (issue 21) on the real stack: Debian chromium with fake media devices
registers agent1001's WebRTC endpoint over secure WebSocket (Asterisk's HTTP server with the node's
certificate), a pjsua2 caller dials through the trunk, and every leg's audio is measured."""
from __future__ import annotations

import re
import shutil
import time
import wave
from pathlib import Path

import pytest

from simulators.audio import tone_presence, tone_wav
from tests.helpers import Stack, csp_violations, free_port, fresh, page_login, wait_for

PASSWORD = "browser-phone-test-12348"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
IVR = "2:1,4:1"            # Mandarin, legal consultation
CALLER_HZ, BROWSER_HZ = 500, 1000
MOH_HZ = 494               # one note of the hold music chord (callcenter/asterisk/runtime.py)
FAILED: list[str] = []
BROWSER = "agent1001"      # Leshan; agent1008 (Leshan too) stays logged out


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("webrtc"))
    s.overrides["asterisk"]["wss_port"] = free_port()
    # agent1006 (the provincial pool, Mandarin/English) too: the interpreter test's browser agent
    s.overrides["phones"] = {"browser": [BROWSER, "agent1006"]}
    s.reconfigure()
    s.start()
    s.set_password(BROWSER, PASSWORD)
    s.set_password("agent1006", PASSWORD)
    yield s
    s.close()


@pytest.fixture
def s(stack):
    with fresh(stack):
        yield stack


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> dict[int, Path]:
    t = tmp_path_factory.mktemp("tones")
    # the browser's microphone: 48 kHz like a headset; Chromium loops the file
    return {CALLER_HZ: tone_wav(CALLER_HZ, 60, t / "caller.wav"),
            BROWSER_HZ: tone_wav(BROWSER_HZ, 30, t / "browser.wav", rate=48000)}


def chromium(pw, mic: Path | None, grant: bool = True):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (make test installs it)")
    args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            # WebRTC between two processes on one host: loopback ICE candidates
            "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
            # the node's own CA signed Asterisk's certificate; a test browser does not hold it
            "--ignore-certificate-errors", "--use-fake-device-for-media-stream"]
    if grant:
        args.append("--use-fake-ui-for-media-stream")      # the microphone prompt answered "allow"
    if mic:
        args.append(f"--use-file-for-fake-audio-capture={mic}")
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args, timeout=60_000)


def desk_page(browser, s: Stack, user: str = BROWSER, init_script: str | None = None):
    page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 1000})
    if init_script:
        page.add_init_script(init_script)
    refused = csp_violations(page)
    # every failed request, for the failure message
    page.on("response", lambda r: FAILED.append(f"{r.status} {r.request.method} {r.url}") if r.status >= 400 else None)
    page_login(page, s.base_url, user, PASSWORD, "/desk")
    return page, refused


def ready_with_browser_phone(page) -> None:
    page.wait_for_selector('#phone[data-state="registered"]', timeout=30_000)
    page.click("#btn-login")
    page.wait_for_selector('#state[data-state="paused"]', timeout=15_000)
    page.click("#btn-ready")
    page.wait_for_selector('#state[data-state="ready"]', timeout=15_000)


def answer_in_page(page) -> None:
    page.wait_for_selector('#phone[data-state="ringing"]', timeout=60_000)
    page.click("#btn-phone-answer")
    page.wait_for_selector('#phone[data-state="talking"]', timeout=20_000)


def seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def test_browser_phone_answers_a_trunk_call_both_ways_with_quality_stored(s, tones, tmp_path):
    pw_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
    caller_rec = tmp_path / "caller.wav"
    with pw_api.sync_playwright() as pw:
        browser = chromium(pw, tones[BROWSER_HZ])
        try:
            page, refused = desk_page(browser, s)
            ready_with_browser_phone(page)
            # the SIP account came from the session API, not from the page source
            assert s.secrets.agent_passwords[BROWSER] not in page.content()
            caller = s.call("083312348", dtmf=IVR, play=tones[CALLER_HZ], record=caller_rec, hangup_after=60,
                            caller="13922221001")
            page.wait_for_selector('#phone[data-state="ringing"]', timeout=60_000)
            # it rings with the caller's city and language (the screen-pop before the answer)
            page.wait_for_selector('#pop[data-status="ringing"]', timeout=10_000)
            assert page.text_content("#pop-city") == "乐山市"
            assert page.text_content("#pop-language") == "普通话"
            assert page.text_content("#pop-caller") == "13922221001"
            page.click("#btn-phone-answer")
            page.wait_for_selector('#phone[data-state="talking"]', timeout=20_000)
            page.wait_for_selector('#pop[data-status="talking"]', timeout=20_000)
            t_talk = time.time()
            # the browser receives the caller's audio: the remote track's energy grows
            # (polled from here: wait_for_function evaluates a string, which the page's CSP refuses)
            wait_for(lambda: (st := page.evaluate("window.PHONE.stats")) and st["totalAudioEnergy"] > 0.05
                     and st["packetsReceived"] > 100, 20, "the caller's audio in the browser")
            # quality figures on the desk during the call
            page.wait_for_selector("#phone-quality:has-text('抖动')", timeout=15_000)
            assert re.search(r"丢包 \d+\.\d%", page.text_content("#phone-quality"))
            wait_for(lambda: time.time() - t_talk > 7, 10, "seven seconds of talk")
            stats = page.evaluate("window.PHONE.stats")
            page.click("#btn-phone-hangup")
            page.wait_for_selector('#phone[data-state="registered"]', timeout=15_000)
            page.click("#lang-toggle")
            assert page.text_content("#phone-state") == "Ready"
            assert refused == [], refused
        finally:
            browser.close()
    result = caller.result(timeout=30)
    assert result["answered"] and result["hung_up_by"] == "remote"
    assert stats["audioLevel"] > 0.01, stats
    # the caller heard the browser's microphone (its last seconds are the talk)
    end = seconds(caller_rec)
    assert tone_presence(caller_rec, BROWSER_HZ, end - 6, end - 0.5) > 0.5
    rec = s.wait_record(lambda r: r["caller_number"] == "13922221001" and r["status"] == "ended")
    assert rec["agent"] == BROWSER and rec["outcome"] == "answered"
    assert rec["quality_jitter_ms"] is not None and rec["quality_loss_pct"] is not None, (rec, FAILED)
    assert 0 <= rec["quality_loss_pct"] <= 100 and rec["quality_jitter_ms"] >= 0
    # the round trip: remote-inbound-rtp (Asterisk's RTCP reports) or the ICE pair's STUN checks; on loopback
    # well under a second
    assert stats["roundTripTime"] is not None, stats
    assert rec["quality_rtt_ms"] is not None and 0 <= rec["quality_rtt_ms"] < 1000, rec


def _talking(s: Stack, page, tones, caller_rec: Path, number: str, hangup_after: float):
    """A trunk call answered by clicking in the page; (caller party, the time of the answer)."""
    caller = s.call("083312348", dtmf=IVR, play=tones[CALLER_HZ], record=caller_rec, hangup_after=hangup_after,
                    caller=number)
    answer_in_page(page)
    page.wait_for_selector('#pop[data-status="talking"]', timeout=20_000)
    return caller, time.time()


def test_mute_dtmf_and_hold_from_the_page(s, tones, tmp_path):
    pw_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
    caller_rec = tmp_path / "caller.wav"
    marks = {}
    with pw_api.sync_playwright() as pw:
        browser = chromium(pw, tones[BROWSER_HZ])
        try:
            page, refused = desk_page(browser, s)
            ready_with_browser_phone(page)
            caller, marks["answer"] = _talking(s, page, tones, caller_rec, "13922221002", 60)
            time.sleep(3)
            marks["mute"] = time.time()
            page.click("#btn-phone-mute")
            page.wait_for_selector("#phone-muted:visible")
            time.sleep(4)
            marks["unmute"] = time.time()
            page.click("#btn-phone-unmute")
            time.sleep(3)
            for key in "159":        # RFC 4733 from the browser, through Asterisk's bridge to the caller
                page.click(f'#keypad .dtmf[data-key="{key}"]')
                time.sleep(0.5)
            time.sleep(1.5)
            marks["hold"] = time.time()
            page.click("#btn-hold")                     # the desk's hold: Asterisk plays the caller music
            time.sleep(6)
            marks["resume"] = time.time()
            page.click("#btn-resume")
            time.sleep(4)
            marks["end"] = time.time()
            page.click("#btn-phone-hangup")
            page.wait_for_selector('#phone[data-state="registered"]', timeout=15_000)
            assert refused == [], refused
        finally:
            browser.close()
    result = caller.result(timeout=30)
    assert result["answered"], result
    assert "".join(result["dtmf_received"]).endswith("159"), result["dtmf_received"]
    at = {k: v - result["answered_at"] for k, v in marks.items()}
    assert tone_presence(caller_rec, BROWSER_HZ, at["answer"] + 1, at["mute"]) > 0.5
    assert tone_presence(caller_rec, BROWSER_HZ, at["mute"] + 1, at["unmute"] - 0.5) < 0.05      # muted
    assert tone_presence(caller_rec, BROWSER_HZ, at["unmute"] + 1.5, at["hold"]) > 0.5
    assert tone_presence(caller_rec, BROWSER_HZ, at["hold"] + 1.5, at["resume"] - 0.5) < 0.05     # on hold ...
    assert tone_presence(caller_rec, MOH_HZ, at["hold"] + 1.5, at["resume"] - 0.5) > 0.3          # ... with music
    assert tone_presence(caller_rec, BROWSER_HZ, at["resume"] + 1.5, at["end"]) > 0.5


def test_supervisor_listens_to_a_browser_agent(s, tones, tmp_path):
    """ChanSpy on a WebRTC agent leg: the supervisor's SIP phone hears the caller and the browser."""
    pw_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
    s.set_password("sup_leshan", PASSWORD)
    sup = s.agent("sup_leshan", record_dir=tmp_path / "sup", login=False, commands=True)
    leshan = s.desk_session("sup_leshan", PASSWORD)
    with pw_api.sync_playwright() as pw:
        browser = chromium(pw, tones[BROWSER_HZ])
        try:
            page, refused = desk_page(browser, s)
            ready_with_browser_phone(page)
            caller, _ = _talking(s, page, tones, tmp_path / "caller.wav", "13922221004", 60)
            call_id = page.get_attribute("#pop", "data-call-id")
            code, body = leshan.request(f"/api/calls/{call_id}/listen", "POST", {})
            assert code == 200, body
            sup.wait_event("answered", 20)
            time.sleep(6)
            sup.send("hangup")
            page.click("#btn-phone-hangup")
            page.wait_for_selector('#phone[data-state="registered"]', timeout=15_000)
        finally:
            browser.close()
    caller.result(timeout=30)
    from tests.helpers import finished_wav
    heard = finished_wav(tmp_path / "sup")
    assert tone_presence(heard, CALLER_HZ) > 0.5
    # the browser's leg is there too, some 15-20 dB under the caller: Chromium's microphone processing
    # (noise suppression, gain control) damps a steady test tone. A frequency nobody plays stays absent.
    assert tone_presence(heard, BROWSER_HZ, min_share=0.01) > 0.5
    assert tone_presence(heard, 1300, min_share=0.01) < 0.05


def test_attended_transfer_from_a_browser_agent_to_a_sip_agent(s, tones, tmp_path):
    """The desk's attended transfer (AMI Atxfer on the WebRTC leg): the browser agent consults agent1002
    on a SIP phone, completes, and the caller talks to agent1002; the browser phone is free again."""
    pw_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
    second_hz = 1300
    second = s.agent("agent1002", play=tone_wav(second_hz, 40, tmp_path / "second.wav"), login=False)
    caller_rec = tmp_path / "caller.wav"
    with pw_api.sync_playwright() as pw:
        browser = chromium(pw, tones[BROWSER_HZ])
        try:
            page, refused = desk_page(browser, s)
            ready_with_browser_phone(page)
            caller, _ = _talking(s, page, tones, caller_rec, "13922221005", 40)
            time.sleep(3)
            page.select_option("#xfer-type", "agent")
            page.select_option("#xfer-target", "agent1002")
            page.click("#btn-xfer-attended")
            second.wait_event("answered", 20)
            time.sleep(2)
            page.click("#btn-xfer-complete")
            # the browser's leg leaves the call: the phone is free for the next one
            page.wait_for_selector('#phone[data-state="registered"]', timeout=20_000)
            assert refused == [], refused
        finally:
            browser.close()
    result = caller.result(timeout=60)
    assert result["answered"]
    rec = s.wait_record(lambda r: r["caller_number"] == "13922221005" and r["status"] == "ended")
    assert rec["agent"] == "agent1002" and rec["transfers"].startswith(f"attended:{BROWSER}>"), rec
    assert tone_presence(caller_rec, BROWSER_HZ) > 0.05        # first the browser agent ...
    assert tone_presence(caller_rec, second_hz) > 0.2          # ... then agent1002



@pytest.mark.parametrize("mode", ["whisper", "barge"])
def test_whisper_and_barge_on_a_browser_agent(s, tones, tmp_path, mode):
    """ChanSpy with w (whisper) or B (barge) on the WebRTC leg. Whisper: the caller never hears the
    supervisor; barge: the caller does. The supervisor hears both sides either way. (What the browser
    itself hears is not recorded here: its received audio is only measured as a level.)"""
    pw_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
    sup_hz = 1700
    s.set_password("sup_leshan", PASSWORD)
    sup = s.agent("sup_leshan", play=tone_wav(sup_hz, 40, tmp_path / "sup.wav"), record_dir=tmp_path / "sup",
                  login=False, commands=True)
    leshan = s.desk_session("sup_leshan", PASSWORD)
    caller_rec = tmp_path / "caller.wav"
    with pw_api.sync_playwright() as pw:
        browser = chromium(pw, tones[BROWSER_HZ])
        try:
            page, refused = desk_page(browser, s)
            ready_with_browser_phone(page)
            caller, _ = _talking(s, page, tones, caller_rec, "1392222100" + ("6" if mode == "whisper" else "7"), 60)
            code, body = leshan.request(f"/api/calls/{page.get_attribute('#pop', 'data-call-id')}/{mode}", "POST", {})
            assert code == 200, body
            sup.wait_event("answered", 20)
            time.sleep(7)
            sup.send("hangup")
            time.sleep(1)
            page.click("#btn-phone-hangup")
            page.wait_for_selector('#phone[data-state="registered"]', timeout=15_000)
            assert refused == [], refused
        finally:
            browser.close()
    caller.result(timeout=60)
    from tests.helpers import finished_wav
    heard = finished_wav(tmp_path / "sup")
    assert tone_presence(heard, CALLER_HZ) > 0.3
    assert tone_presence(heard, BROWSER_HZ, min_share=0.01) > 0.5      # damped by Chromium, see the listen test
    if mode == "whisper":
        assert tone_presence(caller_rec, sup_hz) < 0.02
    else:
        assert tone_presence(caller_rec, sup_hz) > 0.1


def test_interpreter_conference_with_a_browser_agent(s, tones, tmp_path):
    """A Tibetan caller to Garze, no Tibetan speaker: the provincial pool's agent1006 answers in the
    browser and the Tibetan interpreter (a SIP phone) is conferenced in; all three are heard."""
    pw_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
    interp_hz = 1300
    interp = s.agent("interp2001", play=tone_wav(interp_hz, 60, tmp_path / "interp.wav"),
                     record_dir=tmp_path / "interp", login=False)
    caller_rec = tmp_path / "caller.wav"
    with pw_api.sync_playwright() as pw:
        browser = chromium(pw, tones[BROWSER_HZ])
        try:
            page, refused = desk_page(browser, s, "agent1006")
            ready_with_browser_phone(page)
            caller = s.call("083612348", dtmf="2:2,4:1", play=tones[CALLER_HZ], record=caller_rec, hangup_after=40,
                            caller="13922221008")
            answer_in_page(page)
            joined = interp.wait_event("answered", 30)["t"]
            time.sleep(8)
            left = time.time()
            page.click("#btn-phone-hangup")
            page.wait_for_selector('#phone[data-state="registered"]', timeout=15_000)
            assert refused == [], refused
        finally:
            browser.close()
    assert caller.result(timeout=60)["answered"]
    rec = s.wait_record(lambda r: r["caller_number"] == "13922221008" and r["status"] == "ended")
    assert rec["language"] == "bo" and rec["agent"] == "agent1006" and rec["queue"] == "province", rec
    from tests.helpers import finished_wav
    heard_by_interp = finished_wav(tmp_path / "interp")
    # the three together: from the interpreter's answer until the browser agent hung up
    together = (2, left - joined - 0.5)
    assert tone_presence(heard_by_interp, CALLER_HZ, *together, min_share=0.01) > 0.5
    assert tone_presence(heard_by_interp, BROWSER_HZ, *together, min_share=0.01) > 0.5
    start = joined - caller.result(timeout=1)["answered_at"]
    assert tone_presence(caller_rec, interp_hz, start + together[0], start + together[1], min_share=0.01) > 0.5
    assert tone_presence(caller_rec, BROWSER_HZ, start + together[0], start + together[1], min_share=0.01) > 0.5


# every microphone track the page opens, kept where the test can reach it (phone.js keeps its own private)
KEEP_MIC_TRACKS = """(() => {
  const md = navigator.mediaDevices;
  window.__micTracks = [];
  if (!md || !md.getUserMedia) return;
  const open = md.getUserMedia.bind(md);
  md.getUserMedia = async (constraints) => {
    const stream = await open(constraints);
    window.__micTracks.push(...stream.getAudioTracks());
    return stream;
  };
})();"""

# a headset unplugged: the browser ends the track and fires "ended" on it (a page's own stop() fires nothing,
# and Chromium's fake capture device cannot be removed, so the test stops the track and fires the event)
UNPLUG = """(() => {
  for (const tr of window.__micTracks) { tr.stop(); tr.dispatchEvent(new Event("ended")); }
  return window.__micTracks.length;
})()"""


# before the denied-microphone test: this caller may end in voicemail too (see there)
def test_microphone_lost_while_ready_means_phone_not_ready_paused_and_no_call_offered(s, tones):
    pw_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
    with pw_api.sync_playwright() as pw:
        browser = chromium(pw, tones[BROWSER_HZ])
        try:
            page, refused = desk_page(browser, s, init_script=KEEP_MIC_TRACKS)
            ready_with_browser_phone(page)
            wait_for(lambda: f"{BROWSER}/" in s.asterisk.rx("pjsip show contacts"), 10, "the browser registered")
            assert page.evaluate(UNPLUG) >= 1
            page.wait_for_selector('#phone[data-state="not_ready"]', timeout=15_000)
            assert "麦克风已断开" in page.text_content("#phone-error")
            assert page.text_content("#phone-state") == "话机未就绪"
            page.wait_for_selector('#state[data-state="paused"]', timeout=15_000)
            assert page.text_content("#state-detail") == "话机未就绪"
            assert page.is_disabled("#btn-ready")
            agent = next(a for a in s.api("/api/agents") if a["id"] == BROWSER)
            assert (agent["paused"], agent["pause_reason"]) == (True, "phone"), agent
            # the phone unregistered itself: app_queue could not ring it even if the pause were lifted
            wait_for(lambda: f"{BROWSER}/" not in s.asterisk.rx("pjsip show contacts"), 15, "the browser unregistered")
            result = call_while_not_ready(s, tones, page, "13922221009")
            page.click("#lang-toggle")
            assert "The microphone was disconnected" in page.text_content("#phone-error")
            assert page.text_content("#phone-state") == "Phone not ready"
            assert refused == [], refused
        finally:
            browser.close()
    never_offered(s, "13922221009", result)


# last: its caller ends in voicemail, whose callback task would ring the next ready agent
def test_denied_microphone_means_phone_not_ready_paused_and_no_call_offered(s, tones, tmp_path):
    pw_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
    # logged in and ready before the desk opens (a reload, a second shift): the phone must stop that
    s.api(f"/api/agents/{BROWSER}/login", "POST", {"ready": True})
    with pw_api.sync_playwright() as pw:
        browser = chromium(pw, tones[BROWSER_HZ], grant=False)   # headless: the prompt is refused
        try:
            page, refused = desk_page(browser, s)
            page.wait_for_selector('#phone[data-state="not_ready"]', timeout=30_000)
            assert "麦克风权限被拒绝" in page.text_content("#phone-error")
            page.wait_for_selector('#state[data-state="paused"]', timeout=15_000)
            assert page.text_content("#state-detail") == "话机未就绪"
            assert page.is_disabled("#btn-ready")
            agent = next(a for a in s.api("/api/agents") if a["id"] == BROWSER)
            assert (agent["paused"], agent["pause_reason"]) == (True, "phone")
            assert f"{BROWSER}/" not in s.asterisk.rx("pjsip show contacts")     # nothing registered
            result = call_while_not_ready(s, tones, page, "13922221003")
            page.click("#lang-toggle")
            assert "Microphone permission denied" in page.text_content("#phone-error")
            assert refused == [], refused
        finally:
            browser.close()
    never_offered(s, "13922221003", result)


def call_while_not_ready(s, tones, page, number: str) -> dict:
    """A caller to the browser agent's queue while their phone is not ready; the phone stays so."""
    result = s.call("083312348", dtmf=IVR, play=tones[CALLER_HZ], hangup_after=12, caller=number).result(timeout=60)
    assert page.get_attribute("#phone", "data-state") == "not_ready"     # still, after the call
    return result


def never_offered(s, number: str, result: dict) -> None:
    rec = s.wait_record(lambda r: r["caller_number"] == number and r["status"] == "ended")
    assert rec["agent"] == "" and rec["answered_at"] is None, rec      # never offered to the paused agent
    assert result["answered"]    # by the IVR: the caller was served by the platform, not by agent1001
