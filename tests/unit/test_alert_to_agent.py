"""A self-harm or violence keyword alert on a live call reaches that call's agent (the desk's emergency
row turns urgent), besides the supervisors; other agents and ordinary alerts do not. Real app, real
sessions and WebSockets, SQLite and PostgreSQL."""
from __future__ import annotations

import aiohttp

from core.calls import CallState
from dashboard.common import AUTH
from dashboard.live import HUB
from tests.helpers import http_app

PW = "alert-test-password-12348"


async def _socket(c, user: str):
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))   # the server is an IP address
    async with session.post(c.make_url("/api/login"), json={"user": user, "password": PW}) as r:
        assert r.status == 200, await r.text()
    ws = await session.ws_connect(c.make_url("/ws"))
    hello = await ws.receive_json(timeout=10)
    assert hello["type"] == "hello"
    return session, ws


async def _next(ws, kinds: tuple[str, ...]) -> dict:
    while True:
        msg = await ws.receive_json(timeout=10)
        if msg["type"] in kinds:
            return msg


async def test_high_severity_alert_reaches_the_calls_agent_only(db_url, tmp_path):
    async with http_app(db_url, tmp_path) as c:
        for user in ("agent1001", "agent1008", "sup_leshan"):
            await c.server.app[AUTH].set_password(user, PW)
        sockets = {u: await _socket(c, u) for u in ("agent1001", "agent1008", "sup_leshan")}
        try:
            call = CallState(call_id="1700000000.9", city="leshan", agent="agent1001", status="talking",
                             caller_number="13900005555")
            c.ctl.tracker.calls[call.call_id] = call
            base = {"kind": "keyword", "city": "leshan", "call_id": call.call_id, "agent": "agent1001",
                    "acknowledged_at": None}
            for listener in list(c.ctl.transcription_listeners):
                listener({"type": "alert", "alert": {**base, "id": 1, "topic": "wage_arrears", "severity": "normal"}})
                listener({"type": "alert", "alert": {**base, "id": 2, "topic": "self_harm", "severity": "high"}})
            c.server.app[HUB].on_agent({"id": "agent1008", "state": "ready"})   # something agent1008 does get
            got = await _next(sockets["agent1001"][1], ("alert",))
            assert got["alert"]["id"] == 2 and got["alert"]["topic"] == "self_harm"     # not the normal one
            sup = [(await _next(sockets["sup_leshan"][1], ("alert",)))["alert"]["id"] for _ in range(2)]
            assert sup == [1, 2]
            other = await _next(sockets["agent1008"][1], ("alert", "agent"))
            assert other["type"] == "agent"           # no alert about someone else's call came first
        finally:
            for session, ws in sockets.values():
                await ws.close()
                await session.close()
