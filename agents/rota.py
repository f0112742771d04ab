"""Shift rotas: pure decisions (who should be logged in now) and the service that applies them."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from core.schedule import Schedule, is_open

log = logging.getLogger("hotline.rota")


@dataclass(frozen=True)
class RotaAction:
    agent_id: str
    action: str  # "login" | "logout"


def rota_actions(now: datetime, tz: str, rotas: dict[str, Schedule], logged_in: set[str],
                 in_call: set[str], by_rota: set[str]) -> list[RotaAction]:
    """What to do now. Only agents the rota logged in are logged out by it, never during a call."""
    out = []
    for agent_id, sched in sorted(rotas.items()):
        on = is_open(sched, now, tz)
        if on and agent_id not in logged_in:
            out.append(RotaAction(agent_id, "login"))
        elif not on and agent_id in logged_in and agent_id in by_rota and agent_id not in in_call:
            out.append(RotaAction(agent_id, "logout"))
    return out


class RotaService:
    """Every ``interval`` seconds, bring app_queue membership in line with the rotas."""

    def __init__(self, cfg, agents, interval: float = 30.0, clock=lambda: datetime.now(timezone.utc)):
        self.cfg, self.agents, self.interval, self.clock = cfg, agents, interval, clock
        self.by_rota: set[str] = set()

    async def tick(self) -> list[RotaAction]:
        view = self.agents.agents
        logged = {a for a, v in view.items() if v.queues}
        busy = {a for a, v in view.items() if v.in_call}
        done = []
        for act in rota_actions(self.clock(), self.cfg.routing.timezone, self.cfg.rotas, logged, busy, self.by_rota):
            try:
                if act.action == "login":
                    await self.agents.login(act.agent_id, ready=True)
                    self.by_rota.add(act.agent_id)
                else:
                    await self.agents.logout(act.agent_id)
                    self.by_rota.discard(act.agent_id)
                log.info("rota: %s %s", act.action, act.agent_id)
                done.append(act)
            except Exception as e:  # Asterisk away: try again next tick
                log.warning("rota: %s %s failed: %s", act.action, act.agent_id, e)
        return done

    async def run(self, ready: asyncio.Event) -> None:
        while True:
            await ready.wait()
            await self.tick()
            await asyncio.sleep(self.interval)
