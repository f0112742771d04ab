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


@pytest.fixture(scope="module")
def pstack(tmp_path_factory):
    """A stack of its own: recording a prompt changes what every later Tibetan caller hears."""
    s = Stack(tmp_path_factory.mktemp("prompts"))
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
    wait_app(s, endpoint, "Record", "prompt-inbox")
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
    audit = s.api(f"/api/audit?limit=50")
    assert any(e["action"] == "prompt_recorded" and e["user_id"] == SUPERVISOR for e in audit)

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
