"""A faithful stand-in for a city's 12345 ticket system (we cannot run the real one): it checks
signatures, refuses replays and malformed tickets like a strict partner, keeps tickets once per
Idempotency-Key, answers with its own ticket id, and reports progress back to 12348 with signed
status callbacks — which it retries, as a real system would. Faults can be switched on at run time
(POST /_sim/faults): HTTP 500s, slowness, duplicate and out-of-order status callbacks; "down" is the
process not running.

    hotline simulate-12345 [--port 8345]
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from interop import signing

log = logging.getLogger("hotline.sim12345")
REQUIRED = {"source_ref": str, "source_ticket_id": int, "region": str, "content": str, "created_at": str}
OPTIONAL = {"category": str, "language": str, "citizen_phone": str, "citizen_name": str}


def check_ticket(doc) -> str:
    """The 12345 system's own schema: '' if acceptable, else why not."""
    if not isinstance(doc, dict):
        return "ticket must be a JSON object"
    unknown = set(doc) - set(REQUIRED) - set(OPTIONAL)
    if unknown:
        return f"unknown fields {sorted(unknown)}"
    for k, kind in REQUIRED.items():
        if not isinstance(doc.get(k), kind) or doc.get(k) in ("",):
            return f"{k} is required ({kind.__name__})"
    for k, kind in OPTIONAL.items():
        if k in doc and not isinstance(doc[k], kind):
            return f"{k} must be {kind.__name__}"
    return ""


class Simulator:
    def __init__(self, secret: str, peer_key: str, callback_base: str, own_key: str = "12345",
                 callback_delay: float = 0.2):
        self.secret, self.peer_key, self.own_key = secret, peer_key, own_key
        self.callback_base = callback_base.rstrip("/")
        self.callback_delay = callback_delay
        self.run = secrets.token_hex(3)
        self.faults = {"error500": False, "slow_seconds": 0.0, "duplicate_callbacks": False, "out_of_order": False}
        self.tickets: dict[str, dict] = {}           # source_ref -> ticket
        self.by_key: dict[str, dict] = {}            # Idempotency-Key -> answer
        self.nonces: set[str] = set()
        self.requests = 0
        self.rejected: list[str] = []
        self.statuses_received: list[dict] = []
        self.callbacks: list[dict] = []              # what 12348 answered to our status callbacks
        self.inbound: list[dict] = []                # what 12348 answered to tickets we pushed
        self._tasks: set[asyncio.Task] = set()
        self.http: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024)
        app.router.add_post("/api/v1/tickets", self.receive_ticket)
        app.router.add_post("/api/v1/status", self.receive_status)
        app.router.add_post("/_sim/faults", self.set_faults)
        app.router.add_get("/_sim/state", self.state)
        app.router.add_post("/_sim/push", self.push)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, app) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def _stop(self, app) -> None:
        for t in list(self._tasks):
            t.cancel()
        await self.http.close()

    def _refuse(self, status: int, why: str) -> web.Response:
        self.rejected.append(why)
        log.warning("refused: %s", why)
        return web.json_response({"error": why}, status=status)

    async def _verified(self, request: web.Request) -> tuple[bytes | None, web.Response | None]:
        body = await request.read()
        try:
            _, nonce = signing.verify(request.headers, request.method, request.path, body,
                                      {self.peer_key: self.secret}, time.time())
        except signing.SignatureError as e:
            return None, self._refuse(401, str(e))
        if nonce in self.nonces:
            return None, self._refuse(401, "replayed nonce")
        self.nonces.add(nonce)
        return body, None

    async def receive_ticket(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.faults["slow_seconds"]:
            await asyncio.sleep(self.faults["slow_seconds"])
        if self.faults["error500"]:
            return web.json_response({"error": "internal error (simulated)"}, status=500)
        body, refusal = await self._verified(request)
        if refusal:
            return refusal
        key = request.headers.get(signing.IDEMPOTENCY, "")
        if key and key in self.by_key:
            return web.json_response(self.by_key[key], status=200, headers={"Idempotent-Replay": "true"})
        try:
            doc = json.loads(body)
        except ValueError:
            return self._refuse(400, "body is not JSON")
        why = check_ticket(doc)
        if why:
            return self._refuse(400, why)
        if doc["source_ref"] in self.tickets:          # same ticket under another key: conflict
            return web.json_response({"error": "duplicate source_ref",
                                      "ticket_id": self.tickets[doc["source_ref"]]["id"]}, status=409)
        # ids never repeat, also across restarts (callbacks are keyed by them)
        tid = f"12345-{doc['region']}-{self.run}-{len(self.tickets) + 1:05d}"
        self.tickets[doc["source_ref"]] = {"id": tid, "doc": doc, "received_at": time.time()}
        answer = {"ticket_id": tid, "status": "received"}
        if key:
            self.by_key[key] = answer
        self._spawn(self._report(doc["source_ref"], tid))
        return web.json_response(answer, status=201)

    async def receive_status(self, request: web.Request) -> web.Response:
        body, refusal = await self._verified(request)
        if refusal:
            return refusal
        try:
            self.statuses_received.append(json.loads(body))
        except ValueError:
            return self._refuse(400, "body is not JSON")
        return web.json_response({"ok": True})

    def _spawn(self, coro) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _report(self, source_ref: str, tid: str) -> None:
        """Progress comes back to 12348: accepted, then resolved (possibly twice, or out of order)."""
        updates = [("accepted", 1, "已受理"), ("resolved", 2, "已办结：已转属地街道处理")]
        if self.faults["out_of_order"]:
            updates.reverse()
        await asyncio.sleep(self.callback_delay)
        for status, seq, note in updates:
            doc = {"schema_version": 1, "handoff_ref": source_ref, "partner_ticket_id": tid, "status": status,
                   "seq": seq, "at": datetime.now(timezone.utc).isoformat(), "note": note}
            copies = 2 if self.faults["duplicate_callbacks"] else 1
            for copy in range(copies):
                await self._send(f"{self.callback_base}/api/interop/v1/status", doc, f"{tid}-s{seq}-c{copy}")

    async def _send(self, url: str, doc: dict, key: str, attempts: int = 8) -> dict | None:
        body = json.dumps(doc, ensure_ascii=False).encode()
        delay = 0.2
        for _ in range(attempts):
            headers = signing.sign(self.own_key, self.secret, "POST", urlsplit(url).path, body, time.time(),
                                   idempotency_key=key)
            try:
                async with self.http.post(url, data=body, headers=headers) as r:
                    answer = {"status": r.status, "body": await r.json(content_type=None), "key": key}
                if r.status < 500:
                    self.callbacks.append(answer)
                    return answer
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
                pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)
        return None

    async def set_faults(self, request: web.Request) -> web.Response:
        body = await request.json()
        unknown = set(body) - set(self.faults)
        if unknown:
            return web.json_response({"error": f"unknown faults {sorted(unknown)}"}, status=400)
        self.faults.update(body)
        return web.json_response(self.faults)

    async def state(self, request: web.Request) -> web.Response:
        return web.json_response({"tickets": {k: v["id"] for k, v in self.tickets.items()}, "requests": self.requests,
                                  "rejected": self.rejected, "statuses_received": self.statuses_received,
                                  "callbacks": self.callbacks, "inbound": self.inbound, "faults": self.faults},
                                 dumps=lambda o: json.dumps(o, ensure_ascii=False))

    async def push(self, request: web.Request) -> web.Response:
        """Hand a legal question to 12348, like a 12345 agent would (test and demo helper)."""
        doc = await request.json()
        answer = await self._send(f"{self.callback_base}/api/interop/v1/tickets", doc,
                                  f"push-{doc.get('partner_ticket_id', time.time())}")
        if answer is None:
            return web.json_response({"error": "12348 unreachable"}, status=502)
        self.inbound.append(answer)
        return web.json_response(answer)


async def serve(secret: str, peer_key: str, callback_base: str, host: str, port: int, stop: asyncio.Event) -> None:
    sim = Simulator(secret, peer_key, callback_base)
    runner = web.AppRunner(sim.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("12345 simulator on http://%s:%s (status callbacks to %s)", host, port, callback_base)
    await stop.wait()
    await runner.cleanup()
