"""The legal knowledge base on a real call: Asterisk, pjsua2 caller and agent phone, the desk in
headless Chromium. The screen-pop suggests entries from the call's IVR service, then from the ticket's
category; the agent opens one, attaches it to the ticket and texts its summary: `hotline interop` sends
it over SMPP to the SMSC simulator (`hotline simulate-smsc`, its own process), which receives it as UCS-2
for the caller's number and answers with a receipt; the ticket panel shows the text delivered. A
supervisor maintains an entry on the knowledge page."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.helpers import ROOT, Stack, csp_violations, free_port, fresh, terminate

PASSWORD = "kb-desk-test-password-12348"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("HOTLINE_ARTIFACTS", ROOT / "artifacts"))
CALLER = "13922220007"
IVR = "2:1,4:2"   # Mandarin, legal aid
SMPP_PASSWORD = "kb12348"     # SMPP 3.4: at most 8 characters


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kb")
    s = Stack(tmp)
    # texts go out: the install's SMPP account (sms.system_id, smpp_password in secrets.json), as an operator sets it
    s.overrides["interop"]["enabled"] = False
    s.overrides["sms"] = {"enabled": True, "host": "127.0.0.1", "port": free_port(), "system_id": "hotline12348",
                          "poll_seconds": 0.2, "reconnect_seconds": 0.2, "reconnect_max_seconds": 1}
    s.reconfigure()
    s.cfg.state_dir.mkdir(parents=True, exist_ok=True)
    (s.cfg.state_dir / "secrets.json").write_text(json.dumps({"smpp_password": SMPP_PASSWORD}))
    s.smsc_record = tmp / "smsc-parts.jsonl"
    s.start()
    procs = []
    try:
        # the SMSC simulator and the SMS sender, each its own process as in production
        for name, args in (("smsc", ["simulate-smsc", "--test-only", "--port", str(s.cfg.system.sms.port),
                                     "--record", str(s.smsc_record)]), ("interop", ["interop"])):
            log = open(tmp / f"{name}.log", "wb")
            procs.append((subprocess.Popen([sys.executable, "-m", "hotline.cli", *args], cwd=ROOT, env=s.env,
                                           stdout=log, stderr=subprocess.STDOUT), log))
        s.sms_logs = [tmp / "smsc.log", tmp / "interop.log"]
        for user in ("agent1001", "sup_leshan"):
            s.set_password(user, PASSWORD)
        # the seed file, loaded as an operator does
        done = subprocess.run([sys.executable, "-m", "hotline.cli", "kb", "load"], cwd=ROOT, env=s.env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "52 entries added" in " ".join(done.stderr.split()), done.stderr
        yield s
    finally:
        for p, log in procs:
            terminate(p)
            log.close()
        s.close()


@pytest.fixture
def s(stack):
    with fresh(stack):
        yield stack


def test_a_suggestion_on_a_real_call_is_attached_and_texted(s, audio):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (make test installs it)")
    s.agent("agent1001", play=audio["agent"], login=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 1400})
            refused = csp_violations(page)
            page.goto(s.base_url + "/login?next=/desk")
            page.fill("#user", "agent1001")
            page.fill("#password", PASSWORD)
            page.click("#btn-login-submit")
            page.wait_for_url("**/desk")
            page.click("#btn-login")
            page.wait_for_selector('#state[data-state="paused"]')
            page.click("#btn-ready")
            page.wait_for_selector('#state[data-state="ready"]')

            caller = s.call("083312348", dtmf=IVR, play=audio["caller"], hangup_after=90, caller=CALLER)
            page.wait_for_selector('#pop[data-status="talking"]', timeout=60_000)
            assert page.text_content("#pop-ivr") == "lang=zh/svc=legal_aid"
            # the IVR service (legal aid) suggests the legal-aid entries at once
            page.wait_for_selector('#kb-suggestions button[data-slug="legal-aid-exempt-check"]', timeout=15_000)
            assert "律师审核" in page.text_content("#pop")      # every entry awaits a lawyer's review
            # a live transcript line (published on the bus as the transcriber does): its words lead
            _live_line(s, CALLER, "他经常打我，我想申请人身安全保护令")
            page.wait_for_selector("#live-transcript:has-text('人身安全保护令')", timeout=15_000)
            page.wait_for_selector('#kb-suggestions li:first-child button[data-slug="dv-protection-order"]',
                                   timeout=15_000)
            assert "通话关键词" in page.text_content("#kb-suggestions li:first-child")

            # the agent classifies the ticket: its category's entries come first
            page.wait_for_selector("#ticket-id:has-text('#')", timeout=15_000)
            page.select_option("#ticket-category", "labour_wages")
            page.fill("#ticket-summary", "包工头拖欠工资，工地总包不管")
            page.click("#btn-ticket-save")
            page.wait_for_selector("#ticket-saved:has-text('已保存')")
            page.wait_for_selector('#kb-suggestions button[data-slug="labour-written-contract"]', timeout=15_000)
            # and searches with the caller's words
            page.fill("#kb-q", "包工头不给工资")
            page.click("#btn-kb-search")
            item = page.locator('#kb-suggestions button[data-slug="wage-illegal-contractor"]')
            item.wait_for(timeout=15_000)
            item.click()
            page.wait_for_selector("#kb-article:not([hidden])")
            assert "保障农民工工资支付条例" in page.text_content("#kb-a-laws")
            assert "第三十六条" in page.text_content("#kb-a-laws")
            page.click("#btn-kb-attach")
            page.wait_for_selector("#kb-result:has-text('已关联到工单')")
            page.wait_for_selector("#kb-attached li:has-text('已关联')")
            page.click("#btn-kb-sms")
            page.wait_for_selector("#kb-result:has-text('已加入短信发送队列')")
            page.wait_for_selector("#kb-attached li:has-text('已发短信')")
            # the ticket panel follows the text: queued, then delivered once the SMSC's receipt is in
            sent = '#ticket-texts li[data-kind="kb_summary"]'
            page.wait_for_selector(sent, timeout=15_000)
            try:
                page.wait_for_selector(sent + '[data-status="delivered"]', timeout=45_000)
            except Exception:
                raise AssertionError(page.text_content("#ticket-texts") + "\n" + _logs(s)) from None
            assert "知识库摘要" in page.text_content(sent) and CALLER in page.text_content(sent)
            assert page.text_content(sent + " .st") == "已送达"
            page.screenshot(path=str(ARTIFACTS / "desk-knowledge-zh.png"), full_page=True)
            page.click("#lang-toggle")
            assert page.text_content("#btn-kb-sms") == "Text the summary"
            assert page.text_content(sent + " .st") == "delivered"
            assert page.text_content('h4[data-i18n="ticket_texts"]') == "Texts on this ticket"
            page.click("#lang-toggle")
            page.click("#btn-hangup")
            page.wait_for_selector('#pop[data-status="ended"]', timeout=15_000)
            assert refused == [], refused

            _supervisor_maintains_the_entry(s, browser)
        finally:
            browser.close()
    caller.result(timeout=30)

    rec = s.wait_record(lambda r: r["caller_number"] == CALLER and r["status"] == "ended")
    ticket = s.api(f"/api/calls/{rec['call_id']}/ticket")
    out = s.api(f"/api/outbox?related=ticket:{ticket['id']}")
    (msg,) = out
    assert (msg["channel"], msg["kind"], msg["to_number"], msg["status"]) == ("sms", "kb_summary", CALLER, "delivered")
    # what reached the SMSC, read from its record and joined here as a handset does: UCS-2 parts of one text
    parts = [json.loads(line) for line in s.smsc_record.read_text(encoding="utf-8").splitlines() if line.strip()]
    mine = sorted((p for p in parts if p["destination"] == CALLER), key=lambda p: p["part"])
    assert mine and {p["data_coding"] for p in mine} == {8}, mine             # Chinese: UCS-2
    assert [p["part"] for p in mine] == list(range(1, mine[0]["parts"] + 1)) and len({p["ref"] for p in mine}) == 1
    assert "".join(p["text"] for p in mine) == msg["body"]
    assert {p["system_id"] for p in mine} == {"hotline12348"}
    [shown] = s.api(f"/api/tickets/{ticket['id']}/messages")
    assert (shown["id"], shown["status"]) == (msg["id"], "delivered")
    uses = s.api(f"/api/tickets/{ticket['id']}/knowledge")
    title = "工程转包给个人（包工头）导致欠薪，由建设单位或总承包单位清偿"
    assert [(u["title"], u["action"], u["by"], u["version"]) for u in uses] == [
        (title, "attach", "agent1001", 1), (title, "sms", "agent1001", 1)]
    # the text is version 1's summary, the one published when it was sent; the supervisor's v2 is live now
    found = s.api("/api/knowledge?q=" + quote("包工头"))["results"]
    now = next(x for x in found if x["slug"] == "wage-illegal-contractor")
    v1 = next(v for v in s.api(f"/api/knowledge/{now['id']}")["versions"] if v["version"] == 1)
    assert now["version"] == 2 and v1["status"] == "superseded"
    assert msg["body"].startswith("【12348】工程发包、分包给个人（包工头）或无资质单位导致欠薪的") and now["summary"] not in msg["body"]


def _logs(s: Stack) -> str:
    return "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:] for p in s.sms_logs if p.exists())


def _live_line(s: Stack, caller: str, text: str) -> None:
    """What the transcriber publishes for a final line of a live call (transcription/service.py
    _live_text), on the install's Redis bus, signed with its key."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from store.bus import Bus
    call = next(c for c in s.api("/api/status")["calls_in_progress"] if c["caller_number"] == caller)

    async def send():
        bus = Bus.for_install(s.cfg.system.redis, s.secrets)
        try:
            assert await bus.publish("transcription", {
                "type": "transcript", "final": True, "text": text, "at": time.time(), "call_id": call["call_id"],
                "speaker": "caller", "city": call["city"], "agent": "agent1001", "language": "zh"})
        finally:
            await bus.close()
    # playwright's sync API runs a loop in this thread: the bus gets a thread of its own
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, send()).result(timeout=30)


def _supervisor_maintains_the_entry(s: Stack, browser) -> None:
    """Leshan's supervisor sees the use in the report, edits the entry (a new version) and publishes it."""
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 1200})
    try:
        page = ctx.new_page()
        refused = csp_violations(page)
        page.goto(s.base_url + "/login?next=/knowledge")
        page.fill("#user", "sup_leshan")
        page.fill("#password", PASSWORD)
        page.click("#btn-login-submit")
        page.wait_for_url("**/knowledge")
        page.wait_for_selector("#kb-most-used tr:has-text('包工头')", timeout=15_000)
        row = page.locator('#kb-entries tr[data-slug="wage-illegal-contractor"]')
        row.click()
        page.wait_for_selector("#kb-form-state:has-text('已发布')")
        page.fill("#f-summary", "工程分包给包工头导致欠薪的，由建设单位或总承包单位清偿。可拨打12348申请法律援助。")
        page.click("#btn-kb-save")
        page.wait_for_selector("#kb-saved:has-text('v2')")
        page.wait_for_selector("#kb-versions tr:has-text('草稿')")
        page.click("#btn-kb-publish")
        page.wait_for_selector("#kb-form-state:has-text('发布版本 v2')")
        page.wait_for_selector("#kb-versions tr:has-text('已被替代')")
        page.screenshot(path=str(ARTIFACTS / "knowledge-page-zh.png"), full_page=True)
        assert refused == [], refused
    finally:
        ctx.close()
    audit = s.api("/api/audit?limit=50")
    assert {"kb_edit", "kb_publish"} <= {a["action"] for a in audit if a["user_id"] == "sup_leshan" and a["allowed"]}
