"""City node → command center: the live report (queues, agents; every few seconds, latest wins) is
sent directly; ticket events travel through the durable outbox (interop.effects), numbered without
gaps, so a node that was down catches up and the command center can see what is missing."""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

import aiohttp

from core.config import HotlineConfig
from store.engine import Database
from store.interop import sequence_value
from interop import signing
from interop.schema import CityReport, QueueSnapshot

log = logging.getLogger("hotline.federation")
AGENT_STATES = ("ready", "on_call", "paused", "wrap_up")


def build_report(node: str, cities: list[str], status: dict, ticket_seq: int, now: float) -> CityReport:
    """A city node's report from its controller's /api/status (pure)."""
    queues: dict[str, QueueSnapshot] = {}
    for q, counts in status.get("queues", {}).items():
        waits = [now - c["queued_at"] for c in status.get("calls_in_progress", [])
                 if c.get("queue") == q and c.get("status") == "queued" and c.get("queued_at")]
        queues[q] = QueueSnapshot(waiting=counts.get("waiting", 0), talking=counts.get("talking", 0),
                                  longest_wait_seconds=round(max(waits, default=0.0), 1))
    agents = {s: 0 for s in AGENT_STATES}
    agents["logged_in"] = 0
    for a in status.get("agents", []):
        if a.get("state") in agents:
            agents[a["state"]] += 1
        if a.get("state") not in ("logged_out", None):
            agents["logged_in"] += 1
    return CityReport(node=node, cities=cities, sent_at=datetime.fromtimestamp(now, tz=timezone.utc), queues=queues,
                      agents=agents, ticket_seq=ticket_seq)


class Reporter:
    def __init__(self, cfg: HotlineConfig, secrets):
        self.cfg = cfg
        self.f = cfg.system.federation
        self.node = cfg.system.node.name
        self.cities = self.f.cities or [c.id for c in cfg.cities]
        self.secret = secrets.federation_secret
        self.token = secrets.service_token
        c = cfg.system.controller
        self.local = f"http://{c.http_host}:{c.http_port}/api/status"
        self.url = self.f.command_center_url.rstrip("/") + "/api/federation/v1/report"
        self.failing = False

    async def run(self, stop: asyncio.Event) -> None:
        db = Database(self.cfg.system.database.url, self.cfg.root)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while not stop.is_set():
                try:
                    await self.once(http, db)
                    if self.failing:
                        log.info("reporting to the command center again")
                    self.failing = False
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as e:
                    if not self.failing:
                        log.warning("report to the command center failed (will keep trying): %s", e)
                    self.failing = True
                try:
                    await asyncio.wait_for(stop.wait(), self.f.report_seconds)
                except asyncio.TimeoutError:
                    pass
        await db.close()

    async def once(self, http: aiohttp.ClientSession, db: Database) -> None:
        async with http.get(self.local, headers={"Authorization": f"Bearer {self.token}"}) as r:
            r.raise_for_status()
            status = await r.json()
        report = build_report(self.node, self.cities, status, await sequence_value(db, "ticket_events"), time.time())
        body = report.model_dump_json().encode()
        headers = signing.sign(self.node, self.secret, "POST", urlsplit(self.url).path, body, time.time())
        async with http.post(self.url, data=body, headers=headers) as r:
            if r.status >= 300:
                raise ValueError(f"command center answered {r.status}: {(await r.text())[:200]}")
