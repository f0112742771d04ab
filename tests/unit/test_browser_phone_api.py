"""The browser phone's API without Asterisk (issue 21): the SIP account only for the agent's own desk
session, the CSP that lets the page reach Asterisk's WebSocket, and call quality on the call record,
on SQLite and PostgreSQL."""
import pytest

from core.calls import CallState
from dashboard.common import AUTH
from tests.helpers import http_app

PW = "browser-phone-unit-12348"
SIP_SECRET = "sip-secret-of-agent1001"
WSS = {"asterisk": {"tls_port": 15061, "wss_port": 18089}, "phones": {"browser": ["agent1001"]}}


@pytest.fixture
async def client(db_url, tmp_path):
    async with http_app(db_url, tmp_path, WSS, agent_passwords={"agent1001": SIP_SECRET, "agent1008": "x"}) as c:
        auth = c.server.app[AUTH]
        for user in ("agent1001", "agent1008", "sup_leshan"):
            await auth.set_password(user, PW)
        yield c


async def login(client, user: str) -> dict:
    r = await client.post("/api/login", json={"user": user, "password": PW})
    assert r.status == 200
    return {"X-CSRF-Token": (await r.json())["csrf"]}


async def test_the_agent_s_desk_session_gets_its_browser_phone_account(client):
    await login(client, "agent1001")
    r = await client.get("/api/phone")
    assert r.status == 200
    assert await r.json() == {"browser": True, "ws_url": "wss://127.0.0.1:18089/ws", "uri": "sip:agent1001@127.0.0.1",
                              "username": "agent1001", "password": SIP_SECRET, "display_name": "王律师"}
    # the pages may reach that WebSocket, and nothing else beyond their own origin
    assert "connect-src 'self' wss://127.0.0.1:18089;" in r.headers["Content-Security-Policy"]
    page = await client.get("/desk")
    assert SIP_SECRET not in await page.text()
    assert "script-src 'self';" in page.headers["Content-Security-Policy"]


async def test_a_sip_phone_agent_gets_no_account_and_others_are_refused(client):
    await login(client, "agent1008")
    assert await (await client.get("/api/phone")).json() == {"browser": False}
    await login(client, "sup_leshan")
    assert (await client.get("/api/phone")).status == 403
    # an API token is not a desk: the SIP secret is never handed to its holder
    token = await client.server.app[AUTH].issue_api_token("agent1001", days=1)
    client.session.cookie_jar.clear()
    r = await client.get("/api/phone", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 403 and SIP_SECRET not in await r.text()
    refused = await client.ctl.audit_log.audit_entries(50, None)
    assert any(e["action"] == "phone_account" and not e["allowed"] for e in refused)


async def test_quality_is_stored_on_the_call_record_by_the_agent_on_the_call_only(client):
    ctl = client.ctl
    call = CallState(call_id="w.1", city="leshan", caller_number="13800001111", agent="agent1001", status="talking",
                     started_at=1000.0, answered_at=1010.0)
    await ctl.call_records.save_call(call)
    csrf = await login(client, "agent1008")                 # same city, not their call
    r = await client.put("/api/calls/w.1/quality", json={"jitter_ms": 3.0, "loss_pct": 0.0}, headers=csrf)
    assert r.status == 403
    csrf = await login(client, "agent1001")
    for bad in ({"jitter_ms": -1, "loss_pct": 0}, {"jitter_ms": 1, "loss_pct": 101}, {"jitter_ms": "x", "loss_pct": 0},
                {"loss_pct": 1}, []):
        r = await client.put("/api/calls/w.1/quality", json=bad, headers=csrf)
        assert r.status == 400, bad
    r = await client.put("/api/calls/w.1/quality", json={"jitter_ms": 4.5, "loss_pct": 1.25, "rtt_ms": 12.0},
                         headers=csrf)
    assert r.status == 200, await r.text()
    # the record writer's next save (Asterisk's events) keeps the desk's figures
    call.status, call.outcome, call.ended_at = "ended", "answered", 1100.0
    await ctl.call_records.save_call(call)
    rec = await ctl.call_records.call("w.1")
    assert (rec["quality_jitter_ms"], rec["quality_loss_pct"], rec["quality_rtt_ms"]) == (4.5, 1.25, 12.0)
    assert rec["status"] == "ended"
    assert (await client.put("/api/calls/nope/quality", json={"jitter_ms": 1, "loss_pct": 0},
                             headers=csrf)).status == 404
