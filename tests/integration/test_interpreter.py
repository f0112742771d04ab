"""Interpreter: no Tibetan speaker free, so an agent answers and a Tibetan interpreter is conferenced in."""
from __future__ import annotations

from datetime import datetime

from simulators.audio import wav_stats
from tests.helpers import finished_wav, tts_wav


def test_three_parties_hear_each_other(clean_stack, audio, tmp_path):
    s = clean_stack
    interp_voice = tts_wav("我是藏语翻译，我来帮助你们沟通。", "cmn", tmp_path / "interp.wav")
    agent = s.agent("agent1006", play=audio["agent"], record_dir=tmp_path / "agent")        # Mandarin/English
    interp = s.agent("interp2001", play=interp_voice, record_dir=tmp_path / "interp", login=False)
    caller = s.call("083612348", dtmf="2:2,4:1", play=audio["caller"], record=tmp_path / "caller.wav",
                    hangup_after=30, caller="13966660001")
    assert caller.result(90)["answered"]
    rec = s.wait_record(lambda r: r["caller_number"] == "13966660001" and r["status"] == "ended")
    assert rec["language"] == "bo" and rec["agent"] == "agent1006" and rec["queue"] == "province"
    assert rec["overflow"] == "ganzi-bo:EMPTY/lang-bo:EMPTY/ganzi:EMPTY"
    interp.wait_event("answered", 1)
    # every leg carries sound: the caller hears agent and interpreter, each of them hears the others
    bridged = datetime.fromisoformat(rec["answered_at"]).timestamp() - datetime.fromisoformat(rec["started_at"]).timestamp()
    heard_by_caller = wav_stats(tmp_path / "caller.wav", start=bridged + 4)
    assert heard_by_caller.active_seconds > 3, heard_by_caller
    for who in ("agent", "interp"):
        st = wav_stats(finished_wav(tmp_path / who))
        assert st.active_seconds > 3, (who, st)
    # the interpreter really joined the conversation: it was dialled and answered during the call
    ev = interp.wait_event("answered", 1)
    assert rec["answered_at"] and ev["t"] > datetime.fromisoformat(rec["answered_at"]).timestamp() - 1
    del agent
