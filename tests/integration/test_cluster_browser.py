"""The desk's browser phone behind the edge (issue 21, multi-node): Chromium with fake media registers
agent1001 at Kamailio's secure WebSocket, a carrier call through Kamailio reaches node na (Leshan),
na rings the agent through the edge (UDP to Kamailio, WSS to the browser), the agent answers by
clicking, and the caller hears the browser's tone. Media stays browser <-> Asterisk (ICE, DTLS-SRTP)."""
from __future__ import annotations

import shutil
import time
import wave
from pathlib import Path

import pytest

from simulators.audio import tone_presence, tone_wav
from tests.cluster import Cluster
from tests.helpers import csp_violations, page_login, postgres_database, wait_for
from tests.integration.test_browser_phone import chromium

pytestmark = pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio is not installed")

PASSWORD = "browser-phone-edge-12348"
BROWSER = "agent1001"          # Leshan, served first by node na
CALLER_HZ, BROWSER_HZ = 500, 1000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cluster-browser")
    with postgres_database() as url:
        c = Cluster(tmp, url, browser=[BROWSER])
        c.start()
        try:
            c.node("na").set_password(BROWSER, PASSWORD)
            yield c
        finally:
            c.close()


def seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def test_browser_registered_at_the_edges_websocket_answers_a_carrier_call(cluster, tmp_path):
    pw_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
    c, na = cluster, cluster.node("na")
    caller_tone = tone_wav(CALLER_HZ, 60, tmp_path / "caller.wav")
    mic = tone_wav(BROWSER_HZ, 30, tmp_path / "browser.wav", rate=48000)
    caller_rec = tmp_path / "caller-heard.wav"
    wss = f"wss://{c.kamailio_address}:{c.cluster['kamailio']['wss_port']}"
    with pw_api.sync_playwright() as pw:
        browser = chromium(pw, mic)
        try:
            page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 1000})
            refused = csp_violations(page)
            page_login(page, na.base_url, BROWSER, PASSWORD, "/desk")
            # the desk learns the edge's WebSocket, not the node's
            acct = page.evaluate("fetch('/api/phone').then(r => r.json())")
            assert acct["ws_url"] == f"{wss}/ws" and acct["uri"] == f"sip:{BROWSER}@{c.kamailio_address}", acct
            page.wait_for_selector('#phone[data-state="registered"]', timeout=30_000)
            # Kamailio is the registrar: the browser's binding is in its location table
            wait_for(lambda: BROWSER in c.registered(), 10, "the browser registered at the edge")
            page.click("#btn-login")
            page.wait_for_selector('#state[data-state="paused"]', timeout=15_000)
            page.click("#btn-ready")
            page.wait_for_selector('#state[data-state="ready"]', timeout=15_000)
            # the carrier's call arrives at Kamailio, which gives it to na (Leshan's node)
            caller = na.call("083312348", dtmf="2:1,4:1", play=caller_tone, record=caller_rec, hangup_after=90,
                             caller="13922225001")
            page.wait_for_selector('#phone[data-state="ringing"]', timeout=60_000)
            page.click("#btn-phone-answer")
            page.wait_for_selector('#phone[data-state="talking"]', timeout=20_000)
            assert c.agent_dialogs(BROWSER) == 1            # the edge sees the agent's call
            t_talk = time.time()
            # the caller's audio reaches the browser (ICE straight to na's Asterisk)
            wait_for(lambda: (st := page.evaluate("window.PHONE.stats")) and st["totalAudioEnergy"] > 0.05
                     and st["packetsReceived"] > 100, 20, "the caller's audio in the browser")
            # past the edge's in-dialog keepalive (OPTIONS to both ends every 30 s, checked every 10 s): the
            # browser's answer to it (501, SIP.js has no in-dialog OPTIONS) must not end the call
            ka = c.first.cfg.system.cluster.kamailio.dialog_keepalive_seconds
            wait_for(lambda: time.time() - t_talk > ka + 12, ka + 20, "talk past the edge's keepalive")
            assert page.get_attribute("#phone", "data-state") == "talking" and c.agent_dialogs(BROWSER) == 1
            # the hangup from the page: a BYE over the WebSocket, through the edge, to na
            page.click("#btn-phone-hangup")
            page.wait_for_selector('#phone[data-state="registered"]', timeout=15_000)
            assert refused == [], refused
        finally:
            browser.close()
    result = caller.result(timeout=30)
    assert result["answered"] and result["hung_up_by"] == "remote", result
    end = seconds(caller_rec)
    assert tone_presence(caller_rec, BROWSER_HZ, end - 6, end - 0.5) > 0.5
    rec = na.wait_record(lambda r: r["caller_number"] == "13922225001" and r["status"] == "ended", 40)
    assert rec["city"] == "leshan" and rec["agent"] == BROWSER and rec["outcome"] == "answered"
    wait_for(lambda: c.agent_dialogs(BROWSER) == 0, 20, "the agent's dialog ended at the edge")
