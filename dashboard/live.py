"""Live updates to desks over WebSocket: agent states and calls, each viewer seeing only what
their role allows (an agent: their own desk and the calls offered to or taken by them).

The controller authenticates a viewer, completes the WebSocket handshake and builds its snapshot; then it
hands the connection to the broadcaster, a process of its own (dashboard/broadcast.py) that does all the
writing to viewers. Updates are filtered and framed here once per audience (the viewers of one login see
the same) and sent to the broadcaster at the end of the loop's pass that made them, one packet per
audience: the controller's loop, which also follows Asterisk and writes the records, costs the same at
500 viewers as at 5. A viewer that stops reading is disconnected by the broadcaster once its unsent bytes
pass WRITE_BUFFER_LIMIT (it reconnects and gets a fresh snapshot), so one slow browser holds up nobody.

A socket lives no longer than the login it was opened with: it is closed (code ENDED) at once when
that session or token is ended in this process (logout), and the logins behind open sockets are re-read
from the store every RECHECK_SECONDS (once per login, however many sockets it has), which catches expiry
and what other processes did (`hotline passwd`).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import web

from core import access
from dashboard.auth import PRINCIPAL, SESSION, Auth
from dashboard.broadcast import Link, text_frame
from dashboard.common import AUTH
from dashboard.services import SERVICES, ApiServices

log = logging.getLogger("hotline.live")
WRITE_BUFFER_LIMIT = 1 << 20   # unsent bytes to one viewer (some thousands of updates) before it is cut off
RECHECK_SECONDS = 3     # how often the logins behind open sockets are re-read
HEARTBEAT_SECONDS = 20  # a ping to every viewer; one that answers none by the next is dropped
ENDED = 4401            # close code: the login behind this socket has ended (log in again)

__all__ = ["HUB", "LiveHub", "text_frame", "routes", "setup"]


class LiveHub:
    def __init__(self, services: ApiServices, auth: Auth):
        self.services, self.auth = services, auth
        # each viewer, by the id the broadcaster knows it by: who, and the login row it was opened with
        self.viewers: dict[int, tuple[access.Principal, dict | None]] = {}
        self._ids = itertools.count(1)
        # an audience per principal (a login's viewers see the same): id(principal) -> (number, principal, viewers)
        self._audiences: dict[int, list] = {}
        self._audience_ids = itertools.count(1)
        self._pending: list[tuple[Callable[[access.Principal], bool], dict]] = []   # updates not yet sent
        self._link: Link | None = None
        self._recheck_task: asyncio.Task | None = None
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
        # queued and sent at the end of this pass of the loop: the updates from one read of AMI events
        # (a burst at a busy moment) reach each viewer in one write, after the events are all handled
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append((p_filter, message))

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch or self._link is None:
            return
        encoded: dict[tuple[int, bool], bytes] = {}       # each message in each form, encoded once

        def frame(i: int, masked: bool) -> bytes:
            f = encoded.get((i, masked))
            if f is None:
                message = batch[i][1]
                f = encoded[i, masked] = text_frame(json.dumps(_masked(message) if masked else message,
                                                               ensure_ascii=False, default=str))
            return f

        for number, p, _ in self._audiences.values():
            data = b"".join(frame(i, p.masked) for i in range(len(batch)) if batch[i][0](p))
            if data:
                self._link.data(number, data)

    # ---- viewers come and go
    def _join(self, p: access.Principal, row: dict | None, fd: int, snapshot: bytes) -> int:
        if self._link is None:
            self._link = Link(self._gone, self._lost, WRITE_BUFFER_LIMIT, HEARTBEAT_SECONDS)
        audience = self._audiences.get(id(p))
        if audience is None:
            audience = self._audiences[id(p)] = [next(self._audience_ids), p, 0]
        audience[2] += 1
        viewer = next(self._ids)
        self.viewers[viewer] = (p, row)
        self._link.add(viewer, audience[0], fd, snapshot)
        if row is not None and (self._recheck_task is None or self._recheck_task.done()):
            self._recheck_task = asyncio.get_running_loop().create_task(self._recheck())
        return viewer

    @staticmethod
    def _take(transport: asyncio.BaseTransport, fd: int) -> int:
        """A copy of the connection's socket, for the broadcaster; aiohttp lets go of it (its copy closes,
        and no Close frame or FIN is sent: ours keeps the connection open)."""
        ours = os.dup(fd)
        transport.abort()
        return ours

    def _gone(self, viewer: int) -> None:
        """The viewer's connection has ended (the broadcaster said so, or we ended it)."""
        entry = self.viewers.pop(viewer, None)
        if entry is None:
            return
        audience = self._audiences.get(id(entry[0]))
        if audience is not None:
            audience[2] -= 1
            if audience[2] <= 0:
                del self._audiences[id(entry[0])]

    def _lost(self) -> None:
        """The broadcaster died: its connections went with it, and the desks reconnect."""
        self.viewers.clear()
        self._audiences.clear()

    def _end(self, viewer: int, code: int, why: str) -> None:
        """Stop sending to ``viewer`` now and close its connection."""
        if viewer in self.viewers and self._link is not None:
            self._gone(viewer)
            self._link.end(viewer, code, why)

    def login_ended(self, token_hash: str, user_id: str, why: str) -> None:
        """A session or token (or every login of a user) ended in this process: close its sockets."""
        for viewer, (_, row) in list(self.viewers.items()):
            if row is not None and ((token_hash and row.get("hash") == token_hash)
                                    or (user_id and row.get("user_id") == user_id)):
                self._end(viewer, ENDED, why)

    async def _recheck(self) -> None:
        while any(row is not None for _, row in self.viewers.values()):
            await asyncio.sleep(RECHECK_SECONDS)
            await self.recheck_logins()

    async def recheck_logins(self) -> None:
        """Does each login behind an open socket still stand? (expiry; passwords and revocations by other
        processes). One read of the store per login, however many sockets it has open."""
        logins: dict[str, dict] = {}
        for _, row in self.viewers.values():
            if row is not None:
                logins.setdefault(row["hash"], row)
        for token_hash, row in logins.items():
            try:
                why = await self.auth.still_valid(row)
            except Exception:     # cannot tell: fail closed; the desks reconnect and log in if they must
                log.exception("cannot re-check a live socket's session; closing its sockets")
                code, why = 1011, "cannot check the session; reconnect"
            else:
                code = ENDED
            if why:
                for viewer, (_, r) in list(self.viewers.items()):
                    if r is not None and r.get("hash") == token_hash:
                        self._end(viewer, code, why)

    async def close(self) -> None:
        if self._recheck_task is not None:
            self._recheck_task.cancel()
        if self._link is not None:
            await self._link.close()
        self._lost()

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
        # viewer per message, for a few hundred bytes each (bench_wallboard.py). No aiohttp heartbeat:
        # the broadcaster pings once the connection is its own
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        transport = request.transport
        for _ in range(500):      # the handshake's answer must be on the wire before the socket changes hands
            if transport is None or transport.is_closing():
                return ws
            if not transport.get_write_buffer_size():
                break
            await asyncio.sleep(0.01)
        else:
            transport.abort()
            return ws
        sock = transport.get_extra_info("socket")
        if sock is None or transport.get_extra_info("sslcontext") is not None:
            # the controller serves plain HTTP behind the site's proxy; a TLS session cannot change process
            log.error("a live socket over TLS cannot be handed to the broadcaster; closing it")
            await ws.close(code=1011, message=b"live updates need plain HTTP behind the proxy")
            return ws
        fd = self._take(transport, sock.fileno())
        # what is still queued goes to the viewers already there: this viewer's snapshot includes it
        self._flush()
        hello = {"type": "hello", "me": p.as_dict(),
                 "agents": [a.as_dict() for a in self.services.agents.agents.values() if self._sees_agent(p, a.id)],
                 "calls": [c.as_dict() for c in self.services.tracker.live() if self._sees_call(p, c.as_dict())]}
        self._join(p, request.get(SESSION), fd,
                   text_frame(json.dumps(_masked(hello) if p.masked else hello, ensure_ascii=False, default=str)))
        return ws


HUB = web.AppKey("live_hub", LiveHub)
routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    hub = app[HUB] = LiveHub(app[SERVICES], app[AUTH])

    async def stop(_app: web.Application) -> None:
        await hub.close()
    app.on_cleanup.append(stop)


@routes.get("/ws")
async def websocket(request: web.Request) -> web.WebSocketResponse:
    return await request.app[HUB].handler(request)


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
