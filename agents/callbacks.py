"""Scheduled callbacks: voicemail left when nobody could answer is called back once the city is open.

The controller only starts the callback; Asterisk runs it with the same dialplan as a caller's
"press 5" request (an AstDB request and a Local-channel placeholder in the city's queue), so the agent
is connected first, then the caller, with the same retries and give-up.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from core.outbound import Outbound, OutboundRefused
from core.periodic import run_every
from core.schedule import is_open

log = logging.getLogger("hotline.callbacks")


class CallbackScheduler:
    def __init__(self, cfg, originate, store, interval: float = 30.0, clock=lambda: datetime.now(timezone.utc)):
        """``originate`` places an Outbound call (callcenter/originate.py), True when Asterisk took it."""
        self.cfg, self.originate, self.store, self.interval, self.clock = cfg, originate, store, interval, clock

    def queue_for(self, city: str) -> str | None:
        """Where a callback for this mailbox waits: the city's queue while it is open (None if closed)."""
        if city == self.cfg.province.id:
            return city
        sched = self.cfg.schedules.get(city)
        if sched is None:
            return None
        return city if is_open(sched, self.clock(), self.cfg.routing.timezone) else None

    async def tick(self) -> int:
        started = 0
        for task in await self.store.due_voicemail_callbacks():
            queue = self.queue_for(task.city)
            if queue is None or not task.caller_number:
                continue
            if not await self.store.mark_callback(task.id, "dialing"):
                continue  # another controller took it
            rid = f"t{task.id}"
            city = self.cfg.city(task.city) if task.city != self.cfg.province.id else None
            # the request travels as inheritable variables; the dialplan stores it in AstDB (the
            # controller needs no 'system' AMI privilege for that)
            values = {"QUEUE": queue, "NUMBER": task.caller_number, "DID": city.did if city else "12348",
                      "CITY": task.city, "LANG": task.language or self.cfg.ivr.default_language}
            # the placeholder waits in the queue (a day at most); the caller is dialled once an agent answers
            call = Outbound("callback", rid, task.caller_number, f"Local/{rid}@hotline-cb-hold", "hotline-cb-dial",
                            rid, 86400, {f"__HLCB_{k}": v for k, v in values.items()})
            try:
                placed = await self.originate(call)
            except OutboundRefused:     # outside the numbering plan: audited there, never dialled
                await self.store.mark_callback(task.id, "failed", was="dialing")
                continue
            if placed:
                log.info("callback for voicemail task %s queued in %s", task.id, queue)
                started += 1
        return started

    async def run(self, ready: asyncio.Event) -> None:
        await run_every(ready, self.interval, self.tick, log, "callback scheduler")
