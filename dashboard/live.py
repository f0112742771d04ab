"""Live updates to desks over WebSocket: agent states and calls, each viewer seeing only what
their role allows (an agent: their own desk and the calls offered to or taken by them).

Each update is encoded once, as a WebSocket frame, and written as is to every viewer's connection:
no task, queue or coroutine per viewer and message, which at 500 viewers was most of the controller's
loop. Updates are written at the end of the loop's pass that made them, all of them in one write per
viewer: a burst of AMI events costs each viewer one system call, not one per update. A viewer that
stops reading is disconnected once its unsent bytes pass WRITE_BUFFER_LIMIT (it reconnects and gets a
fresh snapshot), so one slow browser never holds up the controller.

A socket lives no longer than the login it was opened with: it is closed (code ENDED) at once when
that session or token is ended in this process (logout), and the logins behind open sockets are re-read
from the store every RECHECK_SECONDS (once per login, however many sockets it has), which catches expiry
and what other processes did (`hotline passwd`).
"""
from __future__ import annotations

import asyncio
import json
import logging
import struct
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from core import access
from dashboard.auth import PRINCIPAL, SESSION, Auth
from dashboard.common import AUTH
from dashboard.services import SERVICES, ApiServices

log = logging.getLogger("hotline.live")
WRITE_BUFFER_LIMIT = 1 << 20   # unsent bytes to one viewer (some thousands of updates) before it is cut off
RECHECK_SECONDS = 3     # how often the logins behind open sockets are re-read
ENDED = 4401            # close code: the login behind this socket has ended (log in again)


class LiveHub:
    def __init__(self, services: ApiServices, auth: Auth):
        self.services, self.auth = services, auth
        # each viewer: who, its connection, and the number of updates queued before its snapshot
        self.viewers: dict[web.WebSocketResponse, tuple[access.Principal, asyncio.WriteTransport, int]] = {}
        self._pending: list[tuple[Callable[[access.Principal], bool], dict]] = []   # updates not yet written
        self._queued = 0         # updates queued so far (written or pending)
        self.logins: dict[web.WebSocketResponse, dict | None] = {}   # each socket's session/token row
        self._rechecking: asyncio.Task | None = None    # re-reads the logins while sockets are open on them
        auth.ended.append(self.login_ended)
        self.agent_cities = services.agent_cities
        events = services.events
        events.calls.append(self.on_call)
        events.agents.append(self.on_agent)
        events.tickets.append(self.on_ticket)
        events.transcription.append(self.on_transcription)

    def _sees_call(self, p: access.Principal, call: dict) -> bool:
        if p.role == "agent":
            return p.agent_id in (call.get("agent"), call.get("ringing"))
        return access.sees_city(p, call.get("city", ""))

    def _sees_agent(self, p: access.Principal, agent_id: str) -> bool:
        return access.may_manage_agent(p, agent_id, self.agent_cities.get(agent_id, set()))

    def _send(self, p_filter, message: dict) -> None:
        # queued and written at the end of this pass of the loop: the updates from one read of AMI events
        # (a burst at a busy moment) reach each viewer in one write, after the events are all handled
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append((p_filter, message))

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        first = self._queued
        self._queued += len(batch)
        encoded: dict[tuple[int, bool], bytes] = {}       # each message in each form, encoded once
        by_audience: dict[tuple[int, int], bytes] = {}    # (principal, first message) -> what they get

        def frame(i: int, masked: bool) -> bytes:
            f = encoded.get((i, masked))
            if f is None:
                message = batch[i][1]
                f = encoded[i, masked] = text_frame(json.dumps(_masked(message) if masked else message,
                                                               ensure_ascii=False, default=str))
            return f

        for ws, (p, transport, joined) in list(self.viewers.items()):
            if ws.closed or transport.is_closing():
                # closing (aiohttp sent its Close frame, or the connection went): no frame may follow
                self.viewers.pop(ws, None)
                continue
            if transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
                # a Close frame would wait behind the unsent megabyte for a reader that does not read:
                # the connection is dropped instead (the desk reconnects and gets a fresh snapshot)
                log.warning("viewer %s is not reading; disconnecting it", p.user_id)
                self.viewers.pop(ws, None)
                self.logins.pop(ws, None)
                transport.abort()
                continue
            # a viewer gets what was queued after its snapshot; viewers of one login see the same
            start = max(0, joined - first)
            key = (id(p), start)
            data = by_audience.get(key)
            if data is None:
                data = by_audience[key] = b"".join(frame(i, p.masked) for i in range(start, len(batch))
                                                   if batch[i][0](p))
            if data:
                transport.write(data)

    def _end(self, ws: web.WebSocketResponse, code: int, why: str) -> None:
        """Stop sending to ``ws`` now and close it."""
        self.viewers.pop(ws, None)
        self.logins.pop(ws, None)
        asyncio.get_running_loop().create_task(ws.close(code=code, message=why.encode()[:120]))

    def login_ended(self, token_hash: str, user_id: str, why: str) -> None:
        """A session or token (or every login of a user) ended in this process: close its sockets."""
        for ws, row in list(self.logins.items()):
            if row is not None and ((token_hash and row.get("hash") == token_hash)
                                    or (user_id and row.get("user_id") == user_id)):
                self._end(ws, ENDED, why)

    async def _recheck(self) -> None:
        while any(row is not None for row in self.logins.values()):
            await asyncio.sleep(RECHECK_SECONDS)
            try:
                await self.recheck_logins()
            except Exception:     # one bad pass must not end the checks for every socket after it
                log.exception("re-checking the live sockets' logins failed; trying again")

    async def recheck_logins(self) -> None:
        """Does each login behind an open socket still stand? (expiry; passwords and revocations by other
        processes). One read of the store per login, however many sockets it has open: 500 wall screens
        on one login were 167 reads a second."""
        logins: dict[str, dict] = {}
        for row in self.logins.values():
            if row is not None:
                logins.setdefault(row.get("hash", ""), row)
        for token_hash, row in logins.items():
            try:
                why = await self.auth.still_valid(row)
            except Exception:     # cannot tell: fail closed; the desks reconnect and log in if they must
                log.exception("cannot re-check a live socket's session; closing its sockets")
                code, why = 1011, "cannot check the session; reconnect"
            else:
                code = ENDED
            if why:
                for ws, r in list(self.logins.items()):
                    if r is not None and r.get("hash", "") == token_hash:
                        self._end(ws, code, why)

    def on_call(self, call: dict) -> None:
        self._send(lambda p: self._sees_call(p, call), {"type": "call", "call": call})

    def on_agent(self, agent: dict) -> None:
        self._send(lambda p: self._sees_agent(p, agent["id"]), {"type": "agent", "agent": agent})

    def on_ticket(self, event: dict) -> None:
        """Escalations reach the city's supervisors and the command center."""
        city = event["ticket"]["city"]
        self._send(lambda p: _supervises(p) and access.sees_city(p, city), event)

    def on_transcription(self, message: dict) -> None:
        """Live text goes to the call's agent and its city's supervisors; keyword alerts to the
        supervisors and the command center."""
        kind = message.get("type")
        if kind == "transcript":
            call = {"agent": message.get("agent", ""), "city": message.get("city", "")}
            live = self.services.tracker.calls.get(message.get("call_id", ""))
            if live is not None:   # after a transfer the text follows the call to its new agent
                call = {"agent": live.agent, "city": live.city, "ringing": ""}
            self._send(lambda p: not p.masked and self._sees_call(p, call), message)
        elif kind in ("alert", "alert_acknowledged") and isinstance(message.get("alert"), dict):
            alert = message["alert"]
            city = alert.get("city", "")
            # a high-severity alert (self-harm, violence) also reaches the agent on that call: the desk's
            # emergency row turns urgent (110/120 warm transfer)
            live = self.services.tracker.calls.get(alert.get("call_id") or "")
            agent = live.agent if live is not None and live.status != "ended" and alert.get("severity") == "high" else ""
            self._send(lambda p: (_supervises(p) and access.sees_city(p, city))
                       or (bool(agent) and not p.masked and p.agent_id == agent), message)
        elif kind == "federation":
            self._send(lambda p: _supervises(p) and (p.all_cities or bool(set(message.get("cities", [])) & p.cities)),
                       message)
        elif kind == "transcript_done":
            call = {"agent": message.get("agent", ""), "city": message.get("city", "")}
            self._send(lambda p: not p.masked and self._sees_call(p, call), message)

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        p: access.Principal = request[PRINCIPAL]
        origin = request.headers.get("Origin")
        if origin and urlsplit(origin).netloc != request.host:
            # another site's page opening our socket with the viewer's cookie (cross-site WebSocket hijacking)
            return web.json_response({"error": "cross-origin WebSocket refused"}, status=403)
        # no permessage-deflate: every update goes to every viewer, and deflate would run zlib once per
        # viewer per message on the controller's loop, for a few hundred bytes each (bench_wallboard.py)
        ws = web.WebSocketResponse(heartbeat=20, compress=False)
        await ws.prepare(request)
        transport = request.transport
        if transport is None or transport.is_closing():
            return ws
        row = request.get(SESSION)
        self.logins[ws] = row
        hello = {"type": "hello", "me": p.as_dict(),
                 "agents": [a.as_dict() for a in self.services.agents.agents.values() if self._sees_agent(p, a.id)],
                 "calls": [c.as_dict() for c in self.services.tracker.live() if self._sees_call(p, c.as_dict())]}
        # the snapshot is written and the viewer joins with no await between: no update falls in a gap
        # between them, and none can reach the viewer before its snapshot
        transport.write(text_frame(json.dumps(_masked(hello) if p.masked else hello, ensure_ascii=False, default=str)))
        self.viewers[ws] = (p, transport, self._queued + len(self._pending))
        if row is not None and (self._rechecking is None or self._rechecking.done()):
            self._rechecking = asyncio.create_task(self._recheck())
        try:
            async for msg in ws:   # the desk sends nothing we act on; reading keeps pings answered
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.viewers.pop(ws, None)
            self.logins.pop(ws, None)
        return ws


HUB = web.AppKey("live_hub", LiveHub)
routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    hub = app[HUB] = LiveHub(app[SERVICES], app[AUTH])

    async def stop(_app: web.Application) -> None:
        if hub._rechecking is not None:
            hub._rechecking.cancel()
    app.on_cleanup.append(stop)


@routes.get("/ws")
async def websocket(request: web.Request) -> web.WebSocketResponse:
    return await request.app[HUB].handler(request)


def text_frame(text: str) -> bytes:
    """One unfragmented text frame as a server sends it (RFC 6455 §5.2: FIN, opcode 1, no mask), built
    once per update for every viewer. The socket negotiates no extension (compress=False), and aiohttp's
    own frames (pings, close) are whole frames written on this same loop, so frames never interleave."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + payload


def _supervises(p: access.Principal) -> bool:
    """Escalations, alerts (with transcript excerpts) and federation news: supervisors and the command center."""
    return p.role in ("supervisor", "command")


# call fields a wall display gets masked, or not at all (file paths; transfers may name outside numbers)
_NUMBER_FIELDS = ("caller_number",)
_HIDDEN_FIELDS = ("recording", "voicemail", "transfers")


def _masked(message: dict) -> dict:
    """A message as a wall display gets it: callers' numbers masked, recordings and transfers left out."""
    def call(c: dict) -> dict:
        return {k: access.mask_number(v) if k in _NUMBER_FIELDS and isinstance(v, str) else v
                for k, v in c.items() if k not in _HIDDEN_FIELDS}
    out = dict(message)
    if isinstance(out.get("call"), dict):
        out["call"] = call(out["call"])
    if isinstance(out.get("calls"), list):
        out["calls"] = [call(c) if isinstance(c, dict) else c for c in out["calls"]]
    return out
