"""The command center's wallboard on the real stack, in headless Chromium: a call waiting in Leshan's
queue shows on Leshan's tile without a reload and leaves it when an agent answers; a city supervisor
sees only their city; the no-agent alarm fires, is acknowledged and clears once an agent logs in."""
from __future__ import annotations

import time

import pytest

from simulators.audio import tone_wav
from tests.helpers import ROOT, Stack, csp_violations, fresh, page_login, wait_for

PASSWORD = "wallboard-2026!"
ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="module")
def wb(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("wallboard"))
    s.overrides["wallboard"] = {"alarm_interval_seconds": 0.5}
    s.reconfigure()
    s.start()
    for user in ("command1", "sup_leshan", "wall_province", "wall_leshan"):
        s.set_password(user, PASSWORD)
    yield s
    s.close()


@pytest.fixture
def w(wb):
    with fresh(wb):
        yield wb


def login(page, s: Stack, user: str) -> None:
    page_login(page, s.base_url, user, PASSWORD, "/wallboard")


def test_a_waiting_call_appears_on_its_city_tile_and_leaves_when_answered(w, browser, tmp_path):
    s = w
    s.agent("agent1001", play=tone_wav(1000, 30, tmp_path / "a.wav"), login=False)
    s.api("/api/agents/agent1001/login", "POST", {"ready": False})       # logged in, paused: the caller waits
    page = browser.new_page(locale="zh-CN", viewport={"width": 1600, "height": 1000})
    refused = csp_violations(page)      # the pages run under script-src 'self' (issue 16, finding 10)
    try:
        login(page, s, "command1")
        page.wait_for_selector("#tiles article.tile")
        assert page.locator("#tiles article.tile").count() == len(s.cfg.cities)   # all 21 cities
        leshan = page.locator('article.tile[data-city="leshan"]')
        assert leshan.get_attribute("data-waiting") == "0" and "乐山市" in leshan.text_content()
        s.call("083312348", dtmf="2:1,4:1", play=tone_wav(500, 40, tmp_path / "c.wav"), hangup_after=30,
               caller="13970000001")
        page.wait_for_selector('article.tile[data-city="leshan"][data-waiting="1"]', timeout=60_000)
        assert leshan.get_attribute("data-health") in ("amber", "red")   # a caller waits, nobody is ready
        import urllib.request
        with urllib.request.urlopen(s.base_url + "/metrics", timeout=10) as r:
            assert 'hotline_queue_waiting{queue="leshan"} 1.0' in r.read().decode()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "wallboard-leshan-waiting-zh.png"), full_page=True)
        # drill down: the live call, its number masked
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        leshan.click()
        try:
            page.wait_for_selector("#detail-calls tr", timeout=10_000)
        except Exception:
            raise AssertionError(f"no drill-down: {errors} {page.text_content('#action-error')}")
        assert "139****0001" in page.text_content("#detail-calls")
        phone = s.agent("command1", login=False)       # the command center's own SIP phone
        s.api("/api/agents/agent1001/ready", "POST", {})
        page.wait_for_selector('article.tile[data-city="leshan"][data-waiting="0"]', timeout=30_000)
        # drill-down on the answered call: listen in from the wallboard, like from the desk
        page.wait_for_selector("#detail-calls button.spy-listen:not([disabled])", timeout=15_000)
        page.click("#detail-calls button.spy-listen")
        phone.wait_event("answered", 20)
        page.click("#lang-toggle")
        page.wait_for_selector("text=Leshan")
        page.screenshot(path=str(ARTIFACTS / "wallboard-after-answer-en.png"), full_page=True)
        page.click("#lang-toggle")
        assert refused == [], refused
    finally:
        page.close()
    assert any(a["action"] == "view_city" and a["user_id"] == "command1" for a in s.api("/api/audit?limit=50"))


def test_a_city_supervisor_sees_only_their_city(w, browser):
    s = w
    sup = s.desk_session("sup_leshan", PASSWORD)
    code, board = sup.request("/api/wallboard")
    assert code == 200 and [c["city"] for c in board["cities"]] == ["leshan"]
    assert sup.request("/api/wallboard/chengdu")[0] == 403
    assert sup.request("/api/wallboard/leshan")[0] == 200
    page = browser.new_page(locale="zh-CN")
    try:
        login(page, s, "sup_leshan")
        page.wait_for_selector("#tiles article.tile")
        assert page.locator("#tiles article.tile").count() == 1
        assert page.locator('article.tile[data-city="chengdu"]').count() == 0
    finally:
        page.close()
    refused = [a for a in s.api("/api/audit?limit=50") if a["action"] == "view_wallboard" and not a["allowed"]]
    assert refused and refused[0]["user_id"] == "sup_leshan" and refused[0]["target"] == "chengdu"


def test_a_wall_display_reads_the_board_with_numbers_masked_and_nothing_else(w, browser, tmp_path):
    """A wall display's login (config/agents.yaml `wallboards`) gets tiles, the drill-down and the live
    socket with callers' numbers masked — on the wire, not only on screen — and every other route 403."""
    s = w
    wall = s.desk_session("wall_province", PASSWORD)
    code, board = wall.request("/api/wallboard")
    assert code == 200 and len(board["cities"]) == len(s.cfg.cities)
    for path, method in (("/api/calls", "GET"), ("/api/status", "GET"), ("/api/alerts", "GET"),
                         ("/api/audit", "GET"), ("/api/agents/agent1001/login", "POST"),
                         ("/api/search?q=x", "GET"), ("/api/tickets", "GET")):
        assert wall.request(path, method, {} if method == "POST" else None)[0] == 403, path
    assert s.desk_session("wall_leshan", PASSWORD).request("/api/wallboard/chengdu")[0] == 403

    s.agent("agent1001", play=tone_wav(1000, 30, tmp_path / "a.wav"), login=False)
    s.api("/api/agents/agent1001/login", "POST", {"ready": False})       # the caller waits: on the board
    seen: list[dict] = []
    page = browser.new_page(locale="zh-CN", viewport={"width": 1600, "height": 1000})
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: seen.append(f)))
    try:
        login(page, s, "wall_province")
        page.wait_for_selector("#tiles article.tile")
        caller = s.call("083312348", dtmf="2:1,4:1", play=tone_wav(500, 30, tmp_path / "c.wav"), hangup_after=20,
                        caller="13970000031")
        page.wait_for_selector('article.tile[data-city="leshan"][data-waiting="1"]', timeout=60_000)
        page.locator('article.tile[data-city="leshan"]').click()
        page.wait_for_selector("#detail-calls tr", timeout=10_000)
        assert "139****0031" in page.text_content("#detail-calls")
        assert page.locator("#detail-calls button").count() == 0        # no listen/whisper/barge
        assert page.locator("#alarms-box").is_hidden() and page.locator("#desk-link").is_hidden()
        page.screenshot(path=str(ARTIFACTS / "wallboard-display-login-zh.png"), full_page=True)
        wire = " ".join(f if isinstance(f, str) else f.decode(errors="replace") for f in seen)
        assert "139****0031" in wire and "13970000031" not in wire, "the socket must carry masked numbers only"
        s.api("/api/agents/agent1001/ready", "POST", {})
        caller.result(60)
    finally:
        page.close()
    assert "13970000031" not in " ".join(f if isinstance(f, str) else f.decode(errors="replace") for f in seen)


def test_no_agent_alarm_fires_is_acknowledged_and_clears_on_login(w, tmp_path):
    s = w
    def leshan_alarm():
        # the one raised now (an earlier test's cleared but unacknowledged alarm is also current)
        return next((a for a in s.api("/api/alerts?kind=alarm&current=1")
                     if a["city"] == "leshan" and a["topic"] == "no_agent" and not a["cleared_at"]), None)
    alarm = wait_for(leshan_alarm, 20, "the no-agent alarm for Leshan")    # open all day here, nobody logged in
    sup = s.desk_session("sup_leshan", PASSWORD)
    code, acked = sup.request(f"/api/alerts/{alarm['id']}/ack", "POST", {})
    assert code == 200 and acked["acknowledged_by"] == "sup_leshan"
    time.sleep(1.5)
    assert alarm["id"] in {a["id"] for a in s.api("/api/alerts?kind=alarm&current=1")}   # condition holds: still shown
    s.agent("agent1001", play=tone_wav(1000, 5, tmp_path / "a.wav"))       # logs in
    # cleared and acknowledged: no longer on the board (an earlier, unacknowledged one would stay)
    wait_for(lambda: alarm["id"] not in {a["id"] for a in s.api("/api/alerts?kind=alarm&current=1")}, 20,
             "the alarm cleared")
    done = [a for a in s.api("/api/alerts?kind=alarm") if a["id"] == alarm["id"]][0]
    assert done["cleared_at"] and done["acknowledged_at"]
    assert any(a["action"] == "ack_alert" and a["target"] == str(alarm["id"]) for a in s.api("/api/audit?limit=50"))


def test_reports_page_charts_a_seeded_day_and_csv_matches_the_api(w, browser):
    import asyncio
    import csv
    import io
    import urllib.request
    from datetime import date, timedelta

    from core.calls import CallState
    from store.calls import CallStore
    from store.engine import Database
    from store.tickets import TicketStore
    s = w
    now = time.time()

    async def seed():
        db = Database(s.cfg.system.database.url, s.cfg.root)
        store, tickets = CallStore(db), TicketStore(db)
        for i in range(12):     # 8 answered (waits 5..40 s), 4 abandoned after 30 s
            start = now - 3600 + i * 120
            answered = i < 8
            c = CallState(call_id=f"seed-{i}", city="leshan", caller_number=f"1390000{i:04d}", language="zh",
                          status="ended", outcome="answered" if answered else "abandoned", agent="agent1001" if answered else "",
                          started_at=start, queued_at=start + 10, answered_at=start + 10 + 5 * (i + 1) if answered else None,
                          ended_at=start + 200 if answered else start + 40)
            await store.save_call(c)
            if answered:
                await tickets.ensure_for_call(c, "call", 72)
                t = await tickets.for_call(c.call_id)
                await tickets.update(t["id"], {"category": "labour_wages" if i % 2 else "traffic"})
        await db.close()
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as ex:      # playwright's sync API holds this thread's event loop
        ex.submit(asyncio.run, seed()).result()
    first, last = date.today() - timedelta(days=1), date.today() + timedelta(days=1)
    api = s.api(f"/api/reports?city=leshan&from={first}&to={last}")
    assert api["total"]["calls"] >= 12 and api["total"]["abandoned"] >= 4
    page = browser.new_page(locale="zh-CN", viewport={"width": 1400, "height": 1400})
    refused = csp_violations(page)
    try:
        login(page, s, "command1")
        page.goto(s.base_url + "/reports")
        page.wait_for_selector("#city option[value=leshan]", state="attached")
        page.select_option("#city", "leshan")
        page.fill("#from", str(first))
        page.fill("#to", str(last))
        page.click("#show")
        # a selector, not wait_for_function: its polling evaluates strings, which script-src 'self' refuses
        page.wait_for_selector("body[data-loaded='1']")
        page.wait_for_timeout(500)
        drawn = page.evaluate("""() => {
            const sum = (id, i) => echarts.getInstanceByDom(document.getElementById(id)).getOption().series[i || 0].data
                .reduce((a, b) => a + (typeof b === 'object' && b ? b.value : (b || 0)), 0);
            return {calls: sum('ch-volume'), answered: sum('ch-volume', 1), hours: sum('ch-hour'),
                    categories: sum('ch-category'), agents: sum('ch-agents')};
        }""")
        assert drawn["calls"] == drawn["hours"] == api["total"]["calls"]
        assert drawn["answered"] == api["total"]["answered"] == drawn["agents"]
        assert drawn["categories"] >= 8
        # the page in Chinese exports Chinese headers and city names
        assert "format=csv&lang=zh&" in page.get_attribute("#csv", "href")
        page.screenshot(path=str(ARTIFACTS / "reports-leshan-zh.png"), full_page=True)
        assert refused == [], refused
    finally:
        page.close()
    # the CSV export carries the same numbers as the statistics API
    stats = s.api(f"/api/stats?period=day&city=leshan&from={first}&to={last}")
    req = urllib.request.Request(f"{s.base_url}/api/stats?period=day&city=leshan&from={first}&to={last}&format=csv&lang=en",
                                 headers={"Authorization": f"Bearer {s.secrets.service_token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        rows = list(csv.DictReader(io.StringIO(r.read().decode("utf-8-sig"))))
    by_period = {(r["period"], r["city"]): r for r in rows}
    for row in stats:
        assert int(by_period[(row["period"], row["city"])]["calls"]) == row["calls"]
        assert int(by_period[(row["period"], row["city"])]["answered"]) == row["answered"]
    assert sum(r["calls"] for r in stats if r["city"] == "leshan") == api["total"]["calls"]


def test_login_and_status_pages_work_under_the_content_security_policy(w, browser):
    """Issue 16, finding 10: their scripts moved out of the HTML (script-src 'self' refuses inline
    script and onclick=): the login still logs in, the status page still fills in and switches language."""
    s = w
    page = browser.new_page(locale="zh-CN")
    refused = csp_violations(page)
    try:
        page_login(page, s.base_url, "command1", PASSWORD, "/")
        page.wait_for_selector("#ami.ok, #ami.bad")
        assert page.text_content("#ami") in ("正常", "断开")
        page.click("#lang")
        assert page.text_content("#lang") == "中文"
        page.wait_for_selector("#ami:text-matches('^(up|down)$')")     # at the next refresh
        page.goto(s.base_url + "/wallboard")
        page.wait_for_selector("#tiles article.tile")
        assert refused == [], refused
    finally:
        page.close()


def test_the_live_socket_is_served_uncompressed_even_when_the_viewer_offers_deflate(w):
    """One update goes to every open desk and wallboard: permessage-deflate would run zlib once per
    viewer per message on the controller's event loop (and inflate in every browser), for messages of
    a few hundred bytes of JSON. The socket declines it (bench_wallboard.py has the figures)."""
    import asyncio
    import concurrent.futures
    import json

    import aiohttp

    async def run():
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(s.base_url.replace("http", "ws", 1) + "/ws", compress=15,
                                       headers={"Authorization": f"Bearer {s.secrets.service_token}"})
            try:
                hello = await ws.receive(timeout=10)
                assert json.loads(hello.data)["type"] == "hello"
                assert ws.compress == 0
            finally:
                await ws.close()
    s = w
    # in a thread of its own: the browser tests of this module leave Playwright's loop on this one
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        ex.submit(asyncio.run, run()).result(timeout=60)
