"""The outbox worker (`hotline interop`): sends due partner messages, signed, with retries and
backoff; marks them sent on 2xx (or 409: the partner already has it); a permanent refusal or too
many attempts makes a dead letter, which raises an alert. The partner's idempotency (the message's
Idempotency-Key) turns at-least-once sending into exactly-once effect."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import aiohttp
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from store.bus import Bus
from core.config import HotlineConfig
from core.text import storable
from store.engine import Database, migrate
from store.interop import InteropStore
from store.alerts import AlertStore
from store.models import Handoff, Ticket
from store.models import ID_MAX
from store.secrets import Secrets
from interop import signing
from interop.metrics import OutboxMetrics
from core.config import Partner

log = logging.getLogger("hotline.interop")
PATHS = {"handoff": "/tickets", "status": "/status", "ticket_event": "/api/federation/v1/events"}
COMMAND_CENTER = "command_center"
RETRYABLE = {408, 425, 429}
METRICS_SECONDS = 5        # how often the outbox figures of /metrics are read from the database
ANSWER_MAX = 64 * 1024     # of a partner's answer, kept for the handoff's ticket id or the error


def backoff(attempts: int, base: float, cap: float, rnd=random.random) -> float:
    """Seconds before the next attempt: doubling from ``base``, capped, with ±25 % jitter so that a
    partner coming back is not hit by every message at the same instant."""
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return delay * (0.75 + 0.5 * rnd())


async def _answer(r) -> bytes:
    """The first ANSWER_MAX bytes of a response's body (StreamReader.read(n) may give fewer at a time)."""
    data = bytearray()
    while len(data) < ANSWER_MAX:
        chunk = await r.content.read(ANSWER_MAX - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def outcome(status: int) -> str:
    """What an HTTP answer means for the message: sent, retry or dead."""
    if 200 <= status < 300 or status == 409:
        return "sent"
    if status >= 500 or status in RETRYABLE:
        return "retry"
    return "dead"


class Deliverer:
    def __init__(self, cfg: HotlineConfig, secrets: Secrets, registry: CollectorRegistry | None = None):
        self.cfg = cfg
        self.metrics = OutboxMetrics(registry or CollectorRegistry())
        self.s = cfg.system.interop
        self.node = cfg.system.node.name
        self.db = Database(cfg.system.database.url, cfg.root)
        self.outbox = InteropStore(self.db, self.node)
        self.alerts = AlertStore(self.db)
        self.partners: dict[str, Partner] = dict(cfg.partners)
        self.secrets = {**secrets.partner_secrets, COMMAND_CENTER: secrets.federation_secret} \
            if secrets.federation_secret else dict(secrets.partner_secrets)
        self.bus = Bus.for_install(cfg.system.redis, secrets)
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.http: aiohttp.ClientSession | None = None
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.to_thread(migrate, self.cfg.system.database.url, self.cfg.root)
        timeout = aiohttp.ClientTimeout(total=self.s.timeout_seconds)
        watch = asyncio.create_task(self._watch(stop), name="outbox-metrics")
        async with aiohttp.ClientSession(timeout=timeout) as self.http:
            sem = asyncio.Semaphore(self.s.concurrency)
            while not stop.is_set():
                try:
                    batch = await self.outbox.claim(self.worker, self.s.lease_seconds, limit=self.s.concurrency * 4)
                except Exception as e:    # database away: try again
                    log.warning("claiming outbox messages failed: %s", e)
                    batch = []
                if not batch:
                    try:
                        await asyncio.wait_for(stop.wait(), self.s.poll_seconds)
                    except asyncio.TimeoutError:
                        pass
                    continue

                async def one(m):
                    async with sem:
                        await self.deliver(m)
                await asyncio.gather(*(one(m) for m in batch))
        watch.cancel()
        await self.db.close()
        await self.bus.close()

    async def _watch(self, stop: asyncio.Event) -> None:
        """The outbox's figures for /metrics, read every METRICS_SECONDS."""
        while not stop.is_set():
            try:
                self.metrics.update(await self.outbox.counts())
            except Exception as e:    # database away: the figures stay as last read
                log.warning("reading the outbox figures failed: %s", e)
            try:
                await asyncio.wait_for(stop.wait(), METRICS_SECONDS)
            except asyncio.TimeoutError:
                pass

    def target(self, m: dict) -> tuple[str, str] | tuple[None, str]:
        if m["partner"] == COMMAND_CENTER:
            url = self.cfg.system.federation.command_center_url
            if not url:
                return None, "federation.command_center_url is not set"
            return url.rstrip("/") + PATHS[m["kind"]], ""
        partner = self.partners.get(m["partner"])
        if partner is None:
            return None, f"unknown partner {m['partner']!r} (config/partners.yaml)"
        base = partner.endpoint(m["to_number"]) if m["to_number"] else partner.endpoints.get("default")
        if not base:
            return None, f"partner {m['partner']} has no endpoint for {m['to_number'] or 'default'}"
        return base.rstrip("/") + PATHS.get(m["kind"], "/" + m["kind"]), ""

    async def deliver(self, m: dict) -> None:
        url, why = self.target(m)
        secret = self.secrets.get(m["partner"])
        if url is None or secret is None:
            await self._dead(m, why or f"no shared secret for partner {m['partner']} (secrets.json partner_secrets)")
            return
        body = m["payload"].encode()
        headers = signing.sign(self.node, secret, "POST", urlsplit(url).path, body, time.time(),
                               idempotency_key=m["idempotency_key"] or "")
        started = time.monotonic()
        try:
            async with self.http.post(url, data=body, headers=headers) as r:
                # the answer as text we can store, whatever the server sent: at most ANSWER_MAX bytes
                # (nothing bounded it), any encoding (strict UTF-8 raised on a GBK error page), no NUL
                # (PostgreSQL refused it): each made the batch raise and the message fail again for ever
                status, text = r.status, storable((await _answer(r)).decode("utf-8", "replace"))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            await self._retry(m, f"{type(e).__name__}: {e}"[:500])
            return
        verdict = outcome(status)
        if verdict == "sent":
            self.sent += 1
            self.metrics.delivered.inc()
            await self.outbox.settle(m["id"], self.worker, status="sent",
                                     on_delivered=lambda s, msg: self._delivered(s, msg, text))
            log.info("outbox %s (%s %s) delivered in %.0f ms: %s", m["id"], m["partner"], m["kind"],
                     (time.monotonic() - started) * 1000, status)
        elif verdict == "retry":
            await self._retry(m, f"HTTP {status}: {text[:300]}")
        else:
            await self._dead(m, f"refused with HTTP {status}: {text[:300]}")

    async def _delivered(self, s, msg, response_text: str) -> None:
        """The partner's answer to a handoff names its ticket: keep it with the handoff."""
        if msg.kind != "handoff" or not msg.idempotency_key:
            return
        try:
            answer = json.loads(response_text)
        except ValueError:
            return
        hid = msg.idempotency_key.rsplit("-h", 1)[-1]
        if not (hid.isascii() and hid.isdigit() and 0 < int(hid) <= ID_MAX) or not isinstance(answer, dict):
            return
        h = await s.get(Handoff, int(hid))
        if h is not None and not h.partner_ticket_id:
            h.partner_ticket_id = str(answer.get("ticket_id", ""))[:64]
            if h.status == "pending":
                h.status = "sent"

    async def _retry(self, m: dict, error: str) -> None:
        if m["attempts"] >= self.s.max_attempts:
            await self._dead(m, f"gave up after {m['attempts']} attempts; last: {error}")
            return
        wait = backoff(m["attempts"], self.s.backoff_seconds, self.s.backoff_max_seconds)
        await self.outbox.settle(m["id"], self.worker, status="pending", error=error,
                                 retry_at=datetime.now(timezone.utc) + timedelta(seconds=wait))

    async def _dead(self, m: dict, error: str) -> None:
        if not await self.outbox.settle(m["id"], self.worker, status="dead", error=error):
            return
        log.error("outbox %s to %s is a dead letter: %s", m["id"], m["partner"], error)
        city = await self._city(m)
        alert = await self.alerts.add_alert(kind="dead_letter", city=city, call_id=f"outbox:{m['id']}",
                                            topic=m["partner"], term=m["kind"], severity="high",
                                            phase="delivery", detail=error[:500])
        if alert is not None:
            await self.bus.publish("interop", {"type": "alert", "alert": alert})

    async def _city(self, m: dict) -> str:
        if m["to_number"]:
            return m["to_number"]
        related = m.get("related", "")
        if related.startswith("ticket:") and related[7:].isdigit():
            async with self.db.session() as s:
                city = (await s.execute(select(Ticket.city).where(Ticket.id == int(related[7:])))).scalar_one_or_none()
                return city or ""
        return ""
