"""Prompts recorded by phone (issue 20): a supervisor's pjsua2 phone dials the feature code, picks the
Tibetan service menu by number, plays a tone as the recording, listens back and accepts; the next
Tibetan caller hears that tone where the placeholder chime was. Real Asterisk, real phones, the tone
found with the Goertzel helper."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from ivr_flows.prompts import prompt_numbers
from simulators.audio import tone_presence, tone_wav
from tests.helpers import Stack, fresh

PASSWORD = "prompts-test-password-12348"
RECORDED_HZ = 1100          # the supervisor's "voice"
CHIME_HZ = (660, 880)       # the placeholder chime (ivr_flows/prompts.py _placeholder)
SUPERVISOR = "sup_ganzi"
STAFF_NUMBER = "02887654321"   # prompts.record_number: recording from an outside phone with a PIN


@pytest.fixture(scope="module")
def pstack(tmp_path_factory):
    """A stack of its own: recording a prompt changes what every later Tibetan caller hears."""
    s = Stack(tmp_path_factory.mktemp("prompts"))
    s.overrides["prompts"] = {"record_number": STAFF_NUMBER}
    s.reconfigure()
    s.start()
    for user in (SUPERVISOR, "sup_leshan", "agent1005"):
        s.set_password(user, PASSWORD)
    yield s
    s.close()


@pytest.fixture
def p(pstack):
    with fresh(pstack):
        yield pstack


def channel_app(s: Stack, endpoint: str) -> tuple[str, str]:
    """(application, its data) the endpoint's channel is in right now, from Asterisk's own CLI."""
    for line in s.asterisk.rx("core show channels concise").splitlines():
        fields = line.split("!")
        if fields[0].startswith(f"PJSIP/{endpoint}-") and len(fields) > 6:
            return fields[5], fields[6]
    return "", ""


def wait_app(s: Stack, endpoint: str, app: str, data_has: str, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    seen = ("", "")
    while time.monotonic() < deadline:
        seen = channel_app(s, endpoint)
        if seen[0] == app and data_has in seen[1]:
            return
        time.sleep(0.2)
    raise AssertionError(f"{endpoint} never reached {app}({data_has}…); last seen {seen}")


def tibetan_service_menu(s: Stack, rec: Path, caller: str) -> None:
    """A caller to Garzê presses 2 (Tibetan) at once and records the service menu that follows."""
    party = s.call("083612348", dtmf="1:2", record=rec, hangup_after=6, caller=caller)
    assert party.result(timeout=60)["answered"]


def record_by_phone(s: Stack, endpoint: str, tone: Path, lang_digit: str, number: int) -> None:
    phone = s.agent(endpoint, play=tone, login=False, commands=True)
    phone.send("dial *77")
    wait_app(s, endpoint, "Read", "rec_language")
    phone.send(f"dtmf {lang_digit}")
    wait_app(s, endpoint, "Read", "rec_number")
    phone.send(f"dtmf {number}#")
    # a first take, heard back and refused (2: record again), then the take that is kept (1)
    wait_app(s, endpoint, "Record", "-1.wav")
    time.sleep(2)
    phone.send("dtmf #")
    wait_app(s, endpoint, "Read", "rec_choice")
    phone.send("dtmf 2")
    wait_app(s, endpoint, "Record", "-2.wav")
    time.sleep(4)                       # four seconds of the supervisor's "voice"
    phone.send("dtmf #")
    wait_app(s, endpoint, "Read", "rec_choice")
    phone.send("dtmf 1")


def test_supervisor_records_tibetan_prompt_by_phone_and_callers_hear_it(p, tmp_path):
    s = p
    number = prompt_numbers(s.cfg)["service_menu"]
    tone = tone_wav(RECORDED_HZ, 30, tmp_path / "tone.wav")

    # before: the Tibetan service menu is the placeholder chime
    before = tmp_path / "before.wav"
    tibetan_service_menu(s, before, "13911112001")
    assert max(tone_presence(before, hz, start=1.5, end=5) for hz in CHIME_HZ) > 0.3
    assert tone_presence(before, RECORDED_HZ, start=1.5, end=5) < 0.1

    record_by_phone(s, SUPERVISOR, tone, "2", number)

    # stored: a version with who recorded it, installed for the instance, audited
    deadline = time.monotonic() + 30
    rows = []
    while time.monotonic() < deadline and not rows:
        rows = [r for r in s.api("/api/prompts?lang=bo")["prompts"]
                if r["prompt_id"] == "service_menu" and r["status"] == "recorded"]
        time.sleep(0.3)
    assert rows, "the accepted recording never reached the prompts list"
    assert rows[0]["recorded_by"] == SUPERVISOR and rows[0]["version"] == 1 and rows[0]["source"] == "phone"
    assert 2.5 < rows[0]["seconds"] < 6          # the kept take (4 s after the beep), not the first (2 s)
    audit = s.api("/api/audit?limit=50")
    assert any(e["action"] == "prompt_recorded" and e["user_id"] == SUPERVISOR for e in audit)
    inbox = s.asterisk.paths.host(s.asterisk.paths.spool / "prompt-inbox")
    assert not list(inbox.glob("*.wav")), "the call's takes stay in the inbox after one was kept"

    # after: the next caller hears the supervisor's tone, and no chime (no restart, no reload)
    after = tmp_path / "after.wav"
    tibetan_service_menu(s, after, "13911112002")
    assert tone_presence(after, RECORDED_HZ, start=1.5, end=5) > 0.6
    assert max(tone_presence(after, hz, start=1.5, end=5) for hz in CHIME_HZ) < 0.1


def test_an_agent_may_not_record_prompts_and_the_refusal_is_audited(p, tmp_path):
    s = p
    phone = s.agent("agent1005", play=tone_wav(RECORDED_HZ, 10, tmp_path / "t.wav"), login=False, commands=True)
    phone.send("dial *77")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(e["action"] == "prompt_record" and e["user_id"] == "agent1005" and not e["allowed"]
               for e in s.api("/api/audit?limit=50")):
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the agent's attempt to record a prompt was not audited as refused")
    assert not any(r["recorded_by"] == "agent1005" for r in s.api("/api/prompts?lang=bo")["prompts"])


def test_from_outside_a_supervisors_pin_opens_the_menu_and_wrong_pins_are_refused(p):
    """The staff number on the carrier trunk: a supervisor's PIN (Authenticate against the hashes) leads
    to the same menu as them; three wrong PINs hang up and the refusal is audited."""
    s = p
    trunk = s.cfg.system.trunk.name
    pin = s.secrets.prompt_pins[SUPERVISOR]
    assert len(pin) == 8 and pin.isdigit()
    outside = s.call(STAFF_NUMBER, dtmf=f"2:{pin}", hangup_after=20, caller="13911112003")
    wait_app(s, trunk, "Read", "rec_language")
    outside.stop()

    wrong = "0" * 8 if pin != "0" * 8 else "1" * 8
    s.call(STAFF_NUMBER, dtmf=f"2:{wrong},7:{wrong},12:{wrong}", hangup_after=25, caller="13911112004")
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if any(e["action"] == "prompt_record" and not e["allowed"] and "bad_pin" in e["detail"]
               for e in s.api("/api/audit?limit=50")):
            break
        time.sleep(0.3)
    else:
        raise AssertionError("three wrong PINs were not audited as a refusal")
    # the PINs are never in Asterisk's log, nor in clear in its files
    log = s.asterisk.paths.host(s.asterisk.paths.log / "messages.log")
    assert pin not in (log.read_text(errors="replace") if log.exists() else "")
    assert pin not in s.asterisk.paths.host(s.asterisk.paths.etc / "prompt-pins").read_text()


def test_liangshan_callers_can_choose_yi_and_other_cities_callers_cannot(p):
    """Yi is offered where configured: on 0834-12348 key 4 is Yi; on Leshan's number it is not a
    choice (invalid, asked again) and the caller's next key decides."""
    s = p
    s.call("083412348", dtmf="1:4", hangup_after=6, caller="13911112005")
    rec = s.wait_record(lambda r: r["caller_number"] == "13911112005" and r["status"] == "ended", timeout=40)
    assert rec["city"] == "liangshan" and rec["language"] == "ii" and rec["ivr_path"].startswith("lang=ii")
    s.call("083312348", dtmf="1:4,6:1", hangup_after=10, caller="13911112006")
    rec = s.wait_record(lambda r: r["caller_number"] == "13911112006" and r["status"] == "ended", timeout=40)
    assert rec["city"] == "leshan" and rec["language"] == "zh" and rec["ivr_path"].startswith("lang=zh")


# ---------------------------------------------------------------- the prompts page and its API
UPLOAD_HZ = 1300


def post_raw(session, path: str, data: bytes) -> tuple[int, dict]:
    """A raw-body POST in the desk session (cookie + CSRF), as the page's upload sends it."""
    import json
    import urllib.error
    import urllib.request
    req = urllib.request.Request(session.base + path, method="POST", data=data,
                                 headers={"Content-Type": "audio/wav", "X-CSRF-Token": session.csrf})
    try:
        with session.opener.open(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def sox_tone(dest: Path, hz: int, seconds: float, rate: int = 44100, channels: int = 2) -> Path:
    import subprocess
    subprocess.run(["sox", "-n", "-r", str(rate), "-c", str(channels), "-b", "16", str(dest), "synth", str(seconds),
                    "sine", str(hz), "vol", "0.5"], check=True, timeout=30)
    return dest


def prompt_row(s: Stack, lang: str, pid: str) -> dict:
    return next(r for r in s.api(f"/api/prompts?lang={lang}")["prompts"] if r["prompt_id"] == pid)


def test_prompts_api_refuses_agents_and_bad_uploads_and_loses_nothing(p, tmp_path):
    s = p
    agent = s.desk_session("agent1005", PASSWORD)
    status, body = agent.request("/api/prompts")
    assert status == 403 and "supervisors" in body["error"]
    assert any(e["action"] == "prompts_view" and e["user_id"] == "agent1005" and not e["allowed"]
               for e in s.api("/api/audit?limit=50"))
    assert post_raw(agent, "/api/prompts/bo/invalid/recording", b"RIFF")[0] == 403

    sup = s.desk_session("sup_leshan", PASSWORD)
    before = prompt_row(s, "bo", "invalid")
    status, body = post_raw(sup, "/api/prompts/bo/invalid/recording", "不是录音 not audio".encode())
    assert status == 400 and "WAV" in body["error"]
    status, body = post_raw(sup, "/api/prompts/bo/invalid/recording", b"RIFF" + b"\0" * 2000)
    assert status == 400 and "cannot use this recording" in body["error"]
    status, body = post_raw(sup, "/api/prompts/bo/invalid/recording",
                            sox_tone(tmp_path / "long.wav", 440, 150, rate=8000, channels=1).read_bytes())
    assert status == 400 and "at most 120 s" in body["error"]
    status, body = post_raw(sup, "/api/prompts/bo/invalid/recording", b"RIFF" + b"\0" * (9 * 1024 * 1024))
    assert status == 413
    assert post_raw(sup, "/api/prompts/bo/no_such_prompt/recording", b"RIFF")[0] == 404
    assert post_raw(sup, "/api/prompts/xx/invalid/recording", b"RIFF")[0] == 404
    status, _ = post_raw(sup, "/api/prompts/bo/invalid/recording", b"")
    assert status == 400
    assert prompt_row(s, "bo", "invalid") == before     # nothing changed by any refusal

    status, body = post_raw(sup, "/api/prompts/bo/invalid/recording",
                            sox_tone(tmp_path / "ok.wav", UPLOAD_HZ, 2).read_bytes())
    assert status == 201 and body["version"] == 1 and body["recorded_by"] == "sup_leshan"
    row = prompt_row(s, "bo", "invalid")
    assert row["status"] == "recorded" and row["source"] == "upload"


def test_prompts_page_in_headless_chromium(p, browser, tmp_path):
    """A supervisor opens /prompts: progress per language, Tibetan text in Tibetan script, Yi texts shown
    as placeholders; uploads a 44.1 kHz stereo WAV for the Tibetan greeting, which is converted to 8 kHz
    mono, installed, and shown as recorded by them; the player's audio comes through the session."""
    import wave
    from tests.helpers import csp_violations, page_login

    s = p
    page = browser.new_page()
    refused = csp_violations(page)
    page_login(page, s.base_url, SUPERVISOR, PASSWORD, "/prompts")
    page.wait_for_selector("body[data-loaded]")
    assert page.inner_text("h1") == "12348 语音提示管理"
    assert int(page.inner_text("#progress tr[data-lang=bo] .n-placeholder")) > 50
    assert int(page.inner_text("#progress tr[data-lang=zh] .n-synthesised")) > 50
    assert page.inner_text("#progress tr[data-lang=ii] td:first-child").startswith("ꆈꌠꉙ")
    assert "native speaker" in page.inner_text("#notes") or "母语" in page.inner_text("#notes")

    page.select_option("#lang", "bo")
    row = page.locator('tr[data-prompt="bo/greeting"]')
    assert row.locator(".status").get_attribute("data-status") == "placeholder"
    assert any("\u0f00" <= ch <= "\u0fff" for ch in row.locator("td.text").inner_text())
    page.select_option("#lang", "ii")
    assert page.locator('tr[data-prompt="ii/greeting"] .text-placeholder').count() == 1

    # upload a WAV recorded elsewhere (CD quality, stereo) for the Tibetan greeting
    page.select_option("#lang", "bo")
    wav = sox_tone(tmp_path / "greeting.wav", UPLOAD_HZ, 3)
    with page.expect_file_chooser() as chooser:
        page.click('button.upload[data-prompt="bo/greeting"]')
    chooser.value.set_files(str(wav))
    page.wait_for_function("""() => { const r = document.querySelector('tr[data-prompt="bo/greeting"] .status');
                                      return r && r.dataset.status === 'recorded'; }""", timeout=20000)
    assert SUPERVISOR in page.inner_text('tr[data-prompt="bo/greeting"] td.who')

    # the player's source answers with the new audio through the session
    played = page.evaluate("""async () => { const r = await fetch('/api/prompts/bo/greeting/audio');
                                            return [r.status, r.headers.get('content-type'), (await r.arrayBuffer()).byteLength]; }""")
    assert played[0] == 200 and played[1] == "audio/wav" and played[2] > 8000 * 2 * 2

    live = s.asterisk.paths.host(s.asterisk.paths.sounds) / "bo" / "greeting.wav"
    with wave.open(str(live)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    assert tone_presence(live, UPLOAD_HZ) > 0.9
    # English on request
    page.click("#lang-toggle")
    assert page.inner_text("h1") == "12348 IVR prompts"
    assert refused == [], refused
    page.close()
