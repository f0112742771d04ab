"""Prompt recordings' versions on both real databases (SQLite and PostgreSQL), and the prompt files:
conversion to telephone audio, refusal of what is not audio, numbering staff key in."""
import asyncio
import subprocess
import wave

import pytest

from core.config import load_config
from ivr_flows.prompts import (BadRecording, install_recording, prompt_numbers, prompt_statuses, recorded_dir,
                               missing_recordings, prompt_texts)
from store.engine import Database, migrate
from store.prompts import PromptStore
from tests.helpers import ROOT


async def test_versions_who_and_when(db_url):
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    store = PromptStore(db)
    try:
        first = await store.add("bo", "greeting", "sup_ganzi", "phone", 3.21)
        second = await store.add("bo", "greeting", "sup_leshan", "upload", 2.0)
        await store.add("ii", "greeting", "sup_leshan", "upload", 1.5)
        assert (first["version"], second["version"]) == (1, 2)
        latest = await store.latest()
        assert latest[("bo", "greeting")]["recorded_by"] == "sup_leshan" and latest[("bo", "greeting")]["version"] == 2
        assert latest[("ii", "greeting")]["version"] == 1 and len(latest) == 2
        assert [h["version"] for h in await store.history("bo", "greeting")] == [2, 1]
        assert first["recorded_at"] and first["seconds"] == 3.21
        # two supervisors accepting at the same moment both keep their version
        both = await asyncio.gather(store.add("bo", "invalid", "a", "phone", 1), store.add("bo", "invalid", "b", "phone", 1))
        assert sorted(r["version"] for r in both) == [1, 2]
    finally:
        await db.close()


def _cfg(tmp_path):
    return load_config(None, {"state_dir": str(tmp_path / "state")})


def test_a_recording_is_converted_installed_and_counted(tmp_path):
    cfg = _cfg(tmp_path)
    src = tmp_path / "in.wav"
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", str(src), "synth", "2", "sine", "1000"], check=True, timeout=30)
    sounds = tmp_path / "sounds"
    seconds = install_recording(cfg, sounds, "bo", "greeting", src)
    assert 1.9 < seconds < 2.1
    for path in (sounds / "bo" / "greeting.wav", recorded_dir(cfg) / "bo" / "greeting.wav"):
        with wave.open(str(path)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    statuses = {(s.lang, s.prompt_id): s.source for s in prompt_statuses(cfg)}
    assert statuses[("bo", "greeting")] == "recording" and statuses[("bo", "invalid")] == "placeholder"
    assert statuses[("zh", "greeting")] == "tts"
    assert ("bo", "greeting") not in {(m.lang, m.prompt_id) for m in missing_recordings(cfg)}


@pytest.mark.parametrize("content, why", [(b"hello, not audio", "not an audio file"), (b"", "not an audio file")])
def test_what_is_not_audio_is_refused_and_nothing_changes(tmp_path, content, why):
    cfg = _cfg(tmp_path)
    src = tmp_path / "in.wav"
    src.write_bytes(content)
    with pytest.raises(BadRecording, match=why):
        install_recording(cfg, tmp_path / "sounds", "bo", "greeting", src)
    assert not (tmp_path / "sounds" / "bo" / "greeting.wav").exists()
    with pytest.raises(BadRecording, match="no prompt"):
        install_recording(cfg, tmp_path / "sounds", "bo", "no_such", src)


def test_prompt_numbers_are_stable_and_cover_every_prompt():
    cfg = load_config()
    numbers = prompt_numbers(cfg)
    assert numbers["greeting"] == 1 and numbers["lang_offer"] == 2 and numbers["service_menu"] == 5
    assert sorted(numbers.values()) == list(range(1, len(numbers) + 1))
    assert set(numbers) == {pid for (lang, pid) in prompt_texts(cfg) if lang == "zh"}


def test_prompts_check_reports_progress_per_language(tmp_path):
    """`hotline prompts check`: recorded / synthesised / placeholder per language and what is missing."""
    import json
    import sys

    def check(*extra):
        res = subprocess.run([sys.executable, "-m", "hotline.cli", "--set", f"state_dir={tmp_path / 'state'}",
                              "prompts", "check", *extra], capture_output=True, text=True, cwd=ROOT, timeout=120)
        return res

    report = json.loads(check("--json").stdout)
    prog = report["progress"]
    assert prog["zh"]["synthesised"] == prog["zh"]["total"] and prog["zh"]["placeholder"] == 0
    assert prog["bo"]["placeholder"] == prog["bo"]["total"] and prog["bo"]["recorded"] == 0
    assert prog["ii"]["placeholder"] == prog["ii"]["total"] and prog["ii"]["untranslated"] == prog["ii"]["total"] - 1
    first = report["missing"][0]
    assert (first["lang"], first["prompt"], first["number"]) == ("bo", "greeting", 1)

    src = tmp_path / "in.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", str(src), "synth", "1", "sine", "700"], check=True, timeout=30)
    install_recording(_cfg(tmp_path), tmp_path / "sounds", "bo", "greeting", src)
    report = json.loads(check("--json").stdout)
    assert report["progress"]["bo"]["recorded"] == 1
    assert ("bo", "greeting") not in {(m["lang"], m["prompt"]) for m in report["missing"]}
    human = check("--strict")
    assert human.returncode == 1 and "prompts per language" in human.stdout and "ꆈꌠꉙ" in human.stdout


def test_prompts_pins_lists_each_supervisors_pin(tmp_path):
    import json
    import sys

    def pins():
        res = subprocess.run([sys.executable, "-m", "hotline.cli", "--set", f"state_dir={tmp_path / 'state'}",
                              "prompts", "pins", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert res.returncode == 0, res.stderr
        return {row["supervisor"]: row["pin"] for row in json.loads(res.stdout)}

    first = pins()
    cfg = load_config()
    assert set(first) == {s.id for s in cfg.supervisors}
    assert all(len(p) == 8 and p.isdigit() for p in first.values())
    assert pins() == first          # kept in the secrets file, not made anew
