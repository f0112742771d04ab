from core.config import load_config
from ivr_flows.prompts import missing_recordings, prompt_texts, spoken_form

CFG = load_config()


def test_every_prompt_in_every_language():
    texts = prompt_texts(CFG)
    for lang in ("zh", "bo", "en"):
        for pid in ("greeting", "lang_offer", "service_menu", "invalid", "please_hold", "voicemail",
                    "unknown_number", "city_intro", "city_028"):
            assert texts[(lang, pid)].strip(), (lang, pid)
    assert "眉山市请按2" in texts[("zh", "city_028")]
    assert "Meishan" in texts[("en", "city_028")]


def test_tibetan_texts_are_in_tibetan_script():
    texts = prompt_texts(CFG)
    for (lang, pid), text in texts.items():
        if lang == "bo":
            assert any("\u0f00" <= ch <= "\u0fff" for ch in text), pid


def test_missing_recordings_are_the_tibetan_and_yi_prompts():
    missing = missing_recordings(CFG)
    assert missing and {m.lang for m in missing} == {"bo", "ii"}
    assert {m.prompt_id for m in missing} >= {"greeting", "service_menu", "city_028"}


def test_service_numbers_are_read_digit_by_digit():
    assert spoken_form("欢迎致电12348热线", "zh") == "欢迎致电一二三四八热线"
    assert spoken_form("the 12348 hotline", "en") == "the 1 2 3 4 8 hotline"
    assert spoken_form("press 1", "en") == "press 1"


def test_prompt_synthesis_reports_its_progress(tmp_path):
    """Issue 17, item 8: `hotline setup` shows a progress bar while the prompts are synthesised; it is
    fed prompt by prompt, up to all of them (real espeak-ng and sox)."""
    from ivr_flows.prompts import build_prompts

    seen = []
    statuses = build_prompts(CFG, tmp_path / "sounds", tmp_path / "cache", lambda done, total: seen.append((done, total)))
    total = len(prompt_texts(CFG))
    assert len(statuses) == total
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [done for done, _ in seen] == list(range(total + 1))
