"""The live socket's fan-out: each update is framed once per audience in the controller and written to
every viewer's connection by the broadcaster process the connections are handed to (dashboard/live.py,
dashboard/broadcast.py). A real app, real sessions, a real broadcaster and aiohttp WebSocket clients,
which parse every frame strictly: all three RFC 6455 length forms arrive whole and in order after the
snapshot, a viewer that stops reading is cut off without holding up the others, a burst is one packet
per audience, and a broadcaster that dies is replaced for the next viewer. SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import WSMsgType

from dashboard import live
from dashboard.common import AUTH
from dashboard.broadcast import text_frame
from dashboard.live import HUB
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
            for _ in range(100):     # the broadcaster tells the controller when it cuts a viewer off
                if len(hub.viewers) == 1:
                    break
                await asyncio.sleep(0.05)
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


async def test_a_burst_is_one_packet_per_audience_and_nothing_from_before_a_snapshot(db_url, tmp_path):
    async with http_app(db_url, tmp_path) as c:
        await c.server.app[AUTH].set_password("sup_leshan", PW)
        await c.server.app[AUTH].set_password("command1", PW)
        hub = c.server.app[HUB]
        first = await _socket(c, "command1")
        assert (await first[1].receive_json(timeout=10))["type"] == "hello"
        take = hub._take

        def updates_in_the_same_pass(transport, fd):
            # two updates queued in the loop's pass that hands the second viewer over, before its snapshot
            hub.on_agent({"id": "agent1001", "state": "ready", "n": 0})
            hub.on_agent({"id": "agent1001", "state": "ready", "n": 1})
            return take(transport, fd)
        hub._take = updates_in_the_same_pass
        second = await _socket(c, "sup_leshan")
        hub._take = take
        sessions = [first, second]
        try:
            assert (await second[1].receive_json(timeout=10))["type"] == "hello"
            packets: list[int] = []
            data = hub._link.data

            def counted(audience, frames):
                packets.append(audience)
                data(audience, frames)
            hub._link.data = counted
            for n in range(2, 5):       # one pass of the loop: one burst
                hub.on_agent({"id": "agent1001", "state": "ready", "n": n})
            got = {}
            for (_, ws), user, want in zip(sessions, ("command1", "sup_leshan"), (5, 3)):
                got[user] = [(await ws.receive_json(timeout=10))["agent"]["n"] for _ in range(want)]
            assert got == {"command1": [0, 1, 2, 3, 4], "sup_leshan": [2, 3, 4]}
            assert sorted(packets) == sorted(set(packets)) and len(packets) == 2   # one each
        finally:
            for s, ws in sessions:
                await ws.close()
                await s.close()


async def test_a_broadcaster_that_dies_drops_its_viewers_and_the_next_one_gets_a_new_one(db_url, tmp_path):
    async with http_app(db_url, tmp_path) as c:
        await c.server.app[AUTH].set_password("command1", PW)
        hub = c.server.app[HUB]
        session, ws = await _socket(c, "command1")
        try:
            assert (await ws.receive_json(timeout=10))["type"] == "hello"
            old = hub._link.proc
            old.kill()
            msg = await ws.receive(timeout=10)
            assert msg.type in (WSMsgType.CLOSED, WSMsgType.CLOSE, WSMsgType.ERROR), msg
            for _ in range(100):
                if not hub.viewers:
                    break
                await asyncio.sleep(0.05)
            assert hub.viewers == {}
            await ws.close()
            await session.close()
            session, ws = await _socket(c, "command1")       # the desk reconnects
            assert (await ws.receive_json(timeout=10))["type"] == "hello"
            assert hub._link.proc is not None and hub._link.proc.pid != old.pid
            hub.on_agent({"id": "agent1001", "state": "ready", "n": 7})
            assert (await ws.receive_json(timeout=10))["agent"]["n"] == 7
        finally:
            await ws.close()
            await session.close()


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
            command_hash = next(row["hash"] for p, row in hub.viewers.values() if p.user_id == "command1")
            await auth.store.revoke_token(command_hash)              # as another process would
            asked.clear()
            await hub.recheck_logins()
            assert len(asked) == 2
            for ws in sockets:
                msg = await ws.receive(timeout=10)
                assert msg.type == WSMsgType.CLOSE and msg.data == live.ENDED, msg
            assert [p.user_id for p, _ in hub.viewers.values()] == ["sup_leshan"]
            assert not other.closed
        finally:
            for ws in sockets + [other]:
                await ws.close()
            await session.close()
            await other_session.close()
