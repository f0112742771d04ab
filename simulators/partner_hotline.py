"""A faithful stand-in for a city's 12345 ticket system (we cannot run the real one): it checks
signatures, refuses replays and malformed tickets like a strict partner, keeps tickets once per
Idempotency-Key, answers with its own ticket id, and reports progress back to 12348 with signed
status callbacks — which it retries, as a real system would. Faults can be switched on at run time
(POST /_sim/faults): HTTP 500s, slowness, duplicate and out-of-order status callbacks; "down" is the
process not running.

It signs as 12345 with this node's shared secret, so it runs only for tests and the demo
(`refusal`: `--test-only`, everything on loopback, no real 12345 configured), and its control
endpoints (/_sim/*) need the run's token, a fresh one per run in a 0600 file (`token_path`).

    hotline simulate-12345 --test-only [--port 8345]
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import os
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from interop import signing

log = logging.getLogger("hotline.sim12345")
REQUIRED = {"source_ref": str, "source_ticket_id": int, "region": str, "content": str, "created_at": str}
OPTIONAL = {"category": str, "language": str, "citizen_phone": str, "citizen_name": str}


SIGNED = ("/api/v1/tickets", "/api/v1/status")   # the partner protocol: every other path needs the token


def loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def refusal(test_only: bool, host: str, target: str, endpoints_12345: dict[str, str]) -> str:
    """Why the simulator must not run here ('' if it may): it holds the secret a real 12345 would
    share with us, so it runs only when asked for a test or the demo, on loopback, talking to a
    12348 on loopback, on a node that does not send its 12345 handoffs anywhere else."""
    if not test_only:
        return ("the 12345 simulator signs tickets as 12345 with this node's shared secret: it is for tests "
                "and the demo only (hotline demo starts it itself); pass --test-only on a test or demo node")
    if not loopback(host):
        return f"--host {host}: the simulator listens on loopback only"
    if not loopback(urlsplit(target).hostname):
        return f"--target {target}: the simulator talks to a 12348 on loopback only"
    real = sorted(f"{city}: {url}" for city, url in endpoints_12345.items() if not loopback(urlsplit(url).hostname))
    if real:
        return f"a real 12345 is configured on this node ({'; '.join(real)}): the simulator would sign as it"
    return ""


def token_path(state_dir: Path, port: int) -> Path:
    """Where a run on this port leaves its control token (tests and the demo read it from here)."""
    return state_dir / f"sim12345-{port}.token"


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
    def __init__(self, secret: str, peer_key: str, callback_base: str, control_token: str, own_key: str = "12345",
                 callback_delay: float = 0.2):
        self.secret, self.peer_key, self.own_key = secret, peer_key, own_key
        self.control_token = control_token.encode()
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
        app = web.Application(client_max_size=256 * 1024, middlewares=[self._control])
        app.router.add_post(SIGNED[0], self.receive_ticket)
        app.router.add_post(SIGNED[1], self.receive_status)
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

    @web.middleware
    async def _control(self, request: web.Request, handler):
        """/_sim/* sign tickets as 12345 and show what 12348 sent (numbers given with consent):
        only for the holder of this run's token. Every matched route but the signed ones needs it (an
        unknown path stays a 404: the dead-letter test uses one as a refusing partner)."""
        if request.match_info.http_exception is None and request.path not in SIGNED:
            given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
            # bytes: a non-ASCII header is a refusal, not compare_digest's TypeError (a 500)
            if not hmac.compare_digest(given, b"Bearer " + self.control_token):
                log.warning("refused %s %s: no or wrong control token", request.method, request.path)
                return web.json_response({"error": "the simulator's control token is required "
                                                   "(Authorization: Bearer <token from its token file>)"},
                                         status=401, headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    @staticmethod
    async def _json_object(request: web.Request) -> dict | None:
        try:
            doc = await request.json()
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

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
        body = await self._json_object(request)
        if body is None:
            return web.json_response({"error": "body must be a JSON object"}, status=400)
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
        doc = await self._json_object(request)
        if doc is None:
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        answer = await self._send(f"{self.callback_base}/api/interop/v1/tickets", doc,
                                  f"push-{doc.get('partner_ticket_id', time.time())}")
        if answer is None:
            return web.json_response({"error": "12348 unreachable"}, status=502)
        self.inbound.append(answer)
        return web.json_response(answer)


async def serve(secret: str, peer_key: str, callback_base: str, host: str, port: int, token_file: Path,
                stop: asyncio.Event) -> None:
    token = secrets.token_urlsafe(32)
    token_file.unlink(missing_ok=True)        # a killed run's file: never reuse its token
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    sim = Simulator(secret, peer_key, callback_base, token)
    runner = web.AppRunner(sim.app(), access_log=None)
    try:
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        log.info("12345 simulator on http://%s:%s (status callbacks to %s; control token in %s)",
                 host, port, callback_base, token_file)
        await stop.wait()
    finally:
        await runner.cleanup()
        token_file.unlink(missing_ok=True)
