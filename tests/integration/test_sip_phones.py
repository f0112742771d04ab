"""Any standard SIP phone works as an agent phone: baresip (Debian), configured by `hotline phone-config`."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from simulators.audio import wav_stats
from tests.helpers import ROOT, free_port_pair


def test_baresip_agent_answers_a_queue_call_with_audio_both_ways(clean_stack, audio, tmp_path):
    s = clean_stack
    if shutil.which("baresip") is None:
        pytest.fail("baresip is not installed (make test installs baresip-core)")
    long_voice = tmp_path / "agent-long.wav"   # baresip hangs up when its audio file ends
    subprocess.run(["sox", str(audio["agent"]), str(long_voice), "repeat", "30"], check=True)
    conf, rec = tmp_path / "baresip", tmp_path / "heard"
    rec.mkdir()
    res = subprocess.run([sys.executable, "-m", "hotline.cli", "phone-config", "--id", "agent1002", "--kind",
                          "baresip", "--out", str(conf), "--port", str(free_port_pair()),
                          "--play", str(long_voice), "--record-dir", str(rec)],
                         cwd=ROOT, env=s.env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    phone = subprocess.Popen(["baresip", "-f", str(conf)], stdout=open(tmp_path / "baresip.log", "wb"),
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "agent1002" not in s.asterisk.rx("pjsip show contacts"):
            time.sleep(0.3)
        s.api("/api/agents/agent1002/login", "POST", {"ready": True})
        caller = s.call("02812348", dtmf="2:1,4:1,6:1", play=audio["caller"], record=tmp_path / "caller.wav",
                        hangup_after=25, caller="13977770001")
        assert caller.result(90)["answered"]
        rec_row = s.wait_record(lambda r: r["caller_number"] == "13977770001" and r["status"] == "ended")
        assert rec_row["agent"] == "agent1002" and rec_row["city"] == "chengdu"
        from datetime import datetime
        bridged = datetime.fromisoformat(rec_row["answered_at"]).timestamp() - \
            datetime.fromisoformat(rec_row["started_at"]).timestamp()
        assert wav_stats(tmp_path / "caller.wav", start=bridged + 1).active_seconds > 2   # caller heard baresip
        time.sleep(1)
        heard = sorted(rec.glob("*-dec.wav"))
        assert heard and wav_stats(heard[-1]).active_seconds > 2                          # baresip heard the caller
    finally:
        phone.terminate()
        try:
            phone.wait(5)
        except subprocess.TimeoutExpired:
            phone.kill()
