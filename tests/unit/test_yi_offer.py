"""Yi (ꆈꌠꉙ, ii) as a fourth IVR language, data only, offered where configured (issue 20): Liangshan's
number offers it, every other number does not, and its prompts are placeholders awaiting recordings."""
from __future__ import annotations

import re
from pathlib import Path

from callcenter.asterisk.confgen.extensions import extensions_conf, language_menu_name, offered_languages
from core.config import load_config
from core.paths import InstancePaths
from ivr_flows.prompts import missing_recordings, prompt_texts

CFG = load_config()
PLAN = extensions_conf(CFG, InstancePaths(Path("/r"), "x"))


def _menu_of(did: str) -> str:
    m = re.search(rf"^exten => {did},1,.*\n same => n,Goto\((hotline-ivr-language[\w-]*),s,1\)", PLAN, re.M)
    assert m, did
    return m.group(1)


def _offers(context: str) -> set[str]:
    body = PLAN.split(f"[{context}]\n", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"/(\w+)/lang_offer", body))


def test_yi_is_a_language_of_the_flow_in_yi_script():
    ii = CFG.ivr.language("ii")
    assert ii.name == "ꆈꌠꉙ" and ii.tts is None and ii.cities == ["liangshan"] and ii.review_note
    assert any("\ua000" <= ch <= "\ua48f" for ch in prompt_texts(CFG)[("ii", "lang_offer")])


def test_liangshan_offers_yi_and_no_other_number_does():
    assert _menu_of("083412348") == "hotline-ivr-language-ii"
    assert _offers("hotline-ivr-language-ii") == {"zh", "bo", "en", "ii"}
    assert "exten => 4,1,NoOp(language-ii option 4)" in PLAN
    for did in ("083312348", "083612348", "02812348", "083712348"):
        assert _menu_of(did) == "hotline-ivr-language"
    assert _offers("hotline-ivr-language") == {"zh", "bo", "en"}
    opts = PLAN.split("[hotline-ivr-language-opt]\n", 1)[1].split("\n[", 1)[0]
    assert "Set(__HOTLINE_LANG=ii)" not in opts
    assert [l.code for l in offered_languages(CFG, ["leshan"])] == ["zh", "bo", "en"]
    assert language_menu_name(CFG, ["liangshan"]) == "language-ii"


def test_wrong_numbers_hear_no_yi_chime():
    body = PLAN.split("[hotline-unknown]\n", 1)[1].split("\n\n", 1)[0]
    assert "/ii/unknown_number" not in body and "/bo/unknown_number" in body


def test_yi_prompts_await_recordings():
    missing = {m.prompt_id for m in missing_recordings(CFG) if m.lang == "ii"}
    assert {"lang_offer", "greeting", "service_menu"} <= missing
