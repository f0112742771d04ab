"""Follow-up visits (回访): after a ticket with follow_up closes, the caller is called into a survey
IVR in their language (hotline-survey: three ratings 1-5, 0 asks for a callback, 9 opts out).

Only within calling hours (quiet hours respected), never a number that opted out, a bounded number
of attempts. The dialplan reports each rating and the end as UserEvents; the controller stores them.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Mapping
from zoneinfo import ZoneInfo

from core.config import HotlineConfig
from core.outbound import Outbound, OutboundRefused
from core.periodic import run_every
from core.schedule import parse_span

log = logging.getLogger("hotline.followups")


def within_calling_hours(at: datetime, hours: str, tz: str) -> bool:
    span = parse_span(hours)
    t = at.astimezone(ZoneInfo(tz)).time().replace(tzinfo=None)
    return span.start <= t < span.end


class FollowUpDialer:
    def __init__(self, cfg: HotlineConfig, originate, followups, interval: float,
                 clock=lambda: datetime.now(timezone.utc)):
        """``originate`` places an Outbound call (callcenter/originate.py), True when Asterisk took it."""
        self.cfg, self.originate, self.followups, self.interval, self.clock = cfg, originate, followups, interval, clock
        self.settings = cfg.system.controller.follow_up

    def _retry_at(self, now: datetime) -> datetime:
        return now + timedelta(minutes=self.settings.retry_minutes)

    async def tick(self) -> int:
        now = self.clock()
        s = self.settings
        for f in await self.followups.expire_dialing(now, self._retry_at(now), s.attempts):
            log.info("follow-up %s: no survey result (attempt %s) -> %s", f["id"], f["attempts"], f["status"])
        if not within_calling_hours(now, s.calling_hours, self.cfg.routing.timezone):
            return 0
        deadline = now + timedelta(seconds=s.ring_seconds + s.survey_seconds)
        started = 0
        for f in await self.followups.due(now, deadline):
            city = next((c for c in self.cfg.cities if c.id == f["city"]), None)
            did = city.did if city else "12348"
            call = Outbound("follow_up", f"{f['id']} (attempt {f['attempts']})", f["caller_number"],
                            f"PJSIP/{f['caller_number']}@{self.cfg.system.trunk.name}", "hotline-survey", "s",
                            s.ring_seconds, {"HL_FU": str(f["id"]),
                                             "HL_LANG": f["language"] or self.cfg.ivr.default_language},
                            caller_id=f'"12348" <{did}>')
            try:
                placed = await self.originate(call)
            except OutboundRefused:     # outside the numbering plan: audited there, never dialled
                await self.followups.refused(f["id"])
                continue
            if placed:
                started += 1
        return started

    async def on_event(self, ev: Mapping[str, str]) -> None:
        """HotlineSurvey (one rating) and HotlineSurveyEnd (the call is over) from the survey IVR."""
        kind = ev.get("UserEvent", "")
        try:
            fid = int(ev.get("FollowUp", ""))
        except ValueError:
            return
        if kind == "HotlineSurvey":
            try:
                score = int(ev.get("Score", ""))
            except ValueError:
                return
            await self.followups.score(fid, ev.get("Question", ""), score)
        elif kind == "HotlineSurveyEnd":
            now = self.clock()
            done = await self.followups.end(fid, ev.get("Result", ""), ev.get("Callback") == "1",
                                            self._retry_at(now), self.settings.attempts)
            if done:
                log.info("follow-up %s ended: %s (%s/%s/%s)", fid, done["status"], done["attitude"],
                         done["efficiency"], done["professionalism"])

    async def run(self, ready: asyncio.Event) -> None:
        await run_every(ready, self.interval, self.tick, log, "follow-up dialer")
