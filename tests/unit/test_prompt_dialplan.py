"""The recording-by-phone menu in the generated dialplan (issue 20): reachable from our phones by the
feature code and from outside only on the configured staff number; only supervisors pass; PINs are
never in the dialplan, and Asterisk's PIN file holds hashes only."""
from __future__ import annotations

import hashlib
from pathlib import Path

from callcenter.asterisk.confgen import generate
from callcenter.asterisk.confgen.prompt_recording import pins_file
from core.config import load_config
from core.paths import InstancePaths
from ivr_flows.prompts import prompt_numbers
from store.secrets import Secrets

CFG = load_config()
PINS = {s.id: f"{i:08d}" for i, s in enumerate(CFG.supervisors, start=12345670)}
SECRETS = Secrets("hotline", "s", {a: "p" for a in CFG.sip_accounts()}, prompt_pins=PINS)


def plan(cfg=CFG) -> str:
    return generate(cfg, SECRETS, InstancePaths(Path("/rootfs"), "main"), "/m")["extensions.conf"]


def section(text: str, name: str) -> str:
    return text.split(f"[{name}]\n", 1)[1].split("\n[", 1)[0]


def test_feature_code_on_our_phones_and_only_supervisors_pass():
    p = plan()
    assert "exten => *77,1,Goto(hotline-prompt-record,s,1)" in section(p, "hotline-agents")
    recorders = section(p, "hotline-prompt-recorders")
    for s in CFG.supervisors:
        assert f"exten => {s.id},1,Return()" in recorders
    for a in CFG.agents:
        assert a.id not in recorders
    assert "UserEvent(HotlinePromptRefused,By: ${HL_WHO},Reason: not_supervisor)" in section(p, "hotline-prompt-record")


def test_prompt_numbers_and_languages_in_the_menu():
    p = plan()
    ids = section(p, "hotline-prompt-ids")
    for pid, n in prompt_numbers(CFG).items():
        assert f"exten => {n},1,Return({pid})" in ids
    langs = section(p, "hotline-prompt-langs")
    assert "exten => 2,1,Return(bo)" in langs and "exten => 4,1,Return(ii)" in langs
    menu = section(p, "hotline-prompt-menu")
    assert "Record(${HL_PFILE}.wav,0,120,k)" in menu
    assert "UserEvent(HotlinePromptRecorded," in menu


def test_outside_number_only_when_configured_and_pins_hashed():
    assert "Goto(hotline-prompt-pin,s,1)" not in section(plan(), "hotline-trunk")
    cfg = load_config(None, {"prompts": {"record_number": "02887654321"}})
    p = plan(cfg)
    assert "exten => 02887654321,1,Goto(hotline-prompt-pin,s,1)" in section(p, "hotline-trunk")
    assert "Authenticate(/srv/hotline/main/etc/prompt-pins,am,8," in section(p, "hotline-prompt-pin")
    text = pins_file(CFG, {**PINS, "agent1001": "99999999"})
    for sid, pin in PINS.items():
        assert pin not in p and pin not in text
        assert f"{sid}:{hashlib.md5(pin.encode()).hexdigest()}" in text
    assert "agent1001" not in text      # a PIN of someone not a supervisor is never installed
