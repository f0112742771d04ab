"""The live socket's fan-out: each update is framed once and written to every viewer's connection
(dashboard/live.py text_frame). A real app, real sessions and aiohttp WebSocket clients, which parse
every frame strictly: all three RFC 6455 length forms arrive whole and in order after the snapshot,
and a viewer that stops reading is cut off without holding up the others. The logins behind open
sockets are re-read once per login. SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import WSMsgType

from dashboard import live
from dashboard.common import AUTH
from dashboard.live import HUB, text_frame
from tests.helpers import http_app

PW = "fanout-test-password-12348"


async def _socket(c, user: str):
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))   # the server is an IP address
    async with session.post(c.make_url("/api/login"), json={"user": user, "password": PW}) as r:
        assert r.status == 200, await r.text()
    ws = await session.ws_connect(c.make_url("/ws"), max_msg_size=0)
    return session, ws


def test_text_frame_headers():
    assert text_frame("a") == b"\x81\x01a"
    assert text_frame("法" * 42)[:2] == b"\x81\x7e" and text_frame("法" * 42)[2:4] == (126).to_bytes(2, "big")
    big = text_frame("x" * 70_000)
    assert big[:2] == b"\x81\x7f" and int.from_bytes(big[2:10], "big") == 70_000 and len(big) == 70_010


async def test_every_length_form_arrives_whole_and_in_order_after_the_snapshot(db_url, tmp_path):
    async with http_app(db_url, tmp_path) as c:
        await c.server.app[AUTH].set_password("sup_leshan", PW)
        session, ws = await _socket(c, "sup_leshan")
        try:
            hub = c.server.app[HUB]
            pads = ["", "律" * 50, "x" * 70_000]      # 7-bit, 16-bit and 64-bit payload lengths
            for i, pad in enumerate(pads):
                hub.on_agent({"id": "agent1001", "state": "ready", "n": i, "pad": pad})
            first = await ws.receive_json(timeout=10)
            assert first["type"] == "hello"
            got = [await ws.receive_json(timeout=10) for _ in pads]
            assert [(m["type"], m["agent"]["n"], m["agent"]["pad"]) for m in got] == \
                [("agent", i, pad) for i, pad in enumerate(pads)]
        finally:
            await ws.close()
            await session.close()


async def test_a_viewer_that_stops_reading_is_cut_off_and_the_others_get_everything(db_url, tmp_path, monkeypatch):
    monkeypatch.setattr(live, "WRITE_BUFFER_LIMIT", 256 << 10)
    async with http_app(db_url, tmp_path) as c:
        await c.server.app[AUTH].set_password("sup_leshan", PW)
        await c.server.app[AUTH].set_password("command1", PW)
        reader_session, reader = await _socket(c, "command1")
        stuck_session, stuck = await _socket(c, "sup_leshan")     # never reads after this
        hub = c.server.app[HUB]
        assert len(hub.viewers) == 2
        got: list[int] = []

        async def read():
            assert (await reader.receive_json(timeout=10))["type"] == "hello"
            while len(got) < 400:
                m = await reader.receive_json(timeout=20)
                if m["type"] == "agent":
                    got.append(m["agent"]["n"])
        task = asyncio.create_task(read())
        try:
            for n in range(400):     # 400 × 64 KB: far more than the kernel's socket buffers hold
                hub.on_agent({"id": "agent1001", "state": "ready", "n": n, "pad": "x" * 64_000})
                await asyncio.sleep(0)
            await asyncio.wait_for(task, 60)
            assert got == list(range(400))
            assert len(hub.viewers) == 1 and next(iter(hub.viewers.values()))[0].user_id == "command1"
            msg = None
            for _ in range(1000):    # what reached the stuck viewer, then the end of the connection
                msg = await stuck.receive(timeout=20)
                if msg.type != WSMsgType.TEXT:
                    break
            assert msg is not None and msg.type in (WSMsgType.CLOSED, WSMsgType.ERROR), msg
        finally:
            task.cancel()
            for s, ws in ((reader_session, reader), (stuck_session, stuck)):
                await ws.close()
                await s.close()


async def test_a_burst_reaches_each_viewer_in_one_write_and_nothing_from_before_its_snapshot(db_url, tmp_path):
    async with http_app(db_url, tmp_path) as c:
        await c.server.app[AUTH].set_password("sup_leshan", PW)
        await c.server.app[AUTH].set_password("command1", PW)
        sessions = [await _socket(c, u) for u in ("command1", "sup_leshan")]
        try:
            for _, ws in sessions:
                assert (await ws.receive_json(timeout=10))["type"] == "hello"
            hub = c.server.app[HUB]
            writes: dict[str, int] = {}
            for ws_server, (p, transport, joined) in list(hub.viewers.items()):
                real = transport.write

                def counted(data, user=p.user_id, real=real):
                    writes[user] = writes.get(user, 0) + 1
                    real(data)
                transport.write = counted
                if p.user_id == "sup_leshan":
                    # as if its snapshot had been taken after the first two updates below were queued
                    hub.viewers[ws_server] = (p, transport, hub._queued + 2)
            for n in range(5):       # one pass of the loop: one burst
                hub.on_agent({"id": "agent1001", "state": "ready", "n": n})
            got = {}
            for (_, ws), user in zip(sessions, ("command1", "sup_leshan")):
                want = 5 if user == "command1" else 3
                got[user] = [(await ws.receive_json(timeout=10))["agent"]["n"] for _ in range(want)]
            assert got == {"command1": [0, 1, 2, 3, 4], "sup_leshan": [2, 3, 4]}
            assert writes == {"command1": 1, "sup_leshan": 1}
        finally:
            for s, ws in sessions:
                await ws.close()
                await s.close()


async def test_each_login_is_rechecked_once_however_many_sockets_it_has(db_url, tmp_path):
    """500 wall screens on one login cost one read of the store every few seconds, not 500; a login
    revoked by another process (`hotline passwd`, straight in the store) closes all its sockets."""
    async with http_app(db_url, tmp_path) as c:
        auth = c.server.app[AUTH]
        await auth.set_password("command1", PW)
        await auth.set_password("sup_leshan", PW)
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with session.post(c.make_url("/api/login"), json={"user": "command1", "password": PW}) as r:
            assert r.status == 200
        sockets = [await session.ws_connect(c.make_url("/ws")) for _ in range(3)]
        other_session, other = await _socket(c, "sup_leshan")
        hub = c.server.app[HUB]
        try:
            for ws in sockets + [other]:
                assert (await ws.receive_json(timeout=10))["type"] == "hello"
            asked: list[str] = []
            still_valid = auth.still_valid

            async def counted(row):
                asked.append(row["hash"])
                return await still_valid(row)
            auth.still_valid = counted
            await hub.recheck_logins()
            assert len(asked) == 2 and len(set(asked)) == 2          # two logins, four sockets
            command_hash = next(row["hash"] for ws, row in hub.logins.items() if hub.viewers[ws][0].user_id == "command1")
            await auth.store.revoke_token(command_hash)              # as another process would
            asked.clear()
            await hub.recheck_logins()
            assert len(asked) == 2
            for ws in sockets:
                msg = await ws.receive(timeout=10)
                assert msg.type == WSMsgType.CLOSE and msg.data == live.ENDED, msg
            assert [p.user_id for p, _, _ in hub.viewers.values()] == ["sup_leshan"]
            assert not other.closed
        finally:
            for ws in sockets + [other]:
                await ws.close()
            await session.close()
            await other_session.close()
