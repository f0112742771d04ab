"""The wallboard's figures per city: live (waiting callers, longest wait, agents by state, from the
controller's AMI-fed state) and today's KPIs (core/kpi.py over today's call records), plus the
alarms they raise. Tiles and alarm rules are plain data; the service caches today's KPIs briefly."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

from core import kpi
from core.config import AlarmThresholds, HotlineConfig
from core.schedule import is_open, missing_holiday_years

log = logging.getLogger("hotline.wallboard")
KPI_TTL = 2.0     # seconds today's KPIs are reused (a DB aggregate; live figures are always fresh)


@dataclass(frozen=True)
class Alarm:
    kind: str          # no_agent | long_wait | low_service_level | node_stale | holidays_missing
    detail: str


def alarms_for(tile: dict, t: AlarmThresholds) -> list[Alarm]:
    """The alarm conditions a city's tile shows right now (pure)."""
    out = []
    if t.no_agent_when_open and tile["open"] and tile["agents"]["logged_in"] == 0:
        out.append(Alarm("no_agent", "open, but no agent logged in"))
    if tile["longest_wait_seconds"] > t.longest_wait_seconds:
        out.append(Alarm("long_wait", f"a caller has waited {tile['longest_wait_seconds']:.0f} s "
                                      f"(limit {t.longest_wait_seconds:.0f} s)"))
    k = tile["today"]
    if k["queued"] >= t.min_calls_for_service_level and k["service_level"] is not None \
            and k["service_level"] < t.service_level_target:
        out.append(Alarm("low_service_level", f"service level {k['service_level']:.0%} "
                                              f"(target {t.service_level_target:.0%})"))
    return out


def health(tile: dict, alarms: list[Alarm]) -> str:
    """Tile colour: red with an alarm, amber when callers wait and nobody is free, grey closed."""
    if alarms:
        return "red"
    if tile["waiting"] and tile["agents"]["ready"] == 0:
        return "amber"
    if not tile["open"] and not tile["waiting"]:
        return "grey"
    return "green"


class Wallboard:
    def __init__(self, ctl):
        self.ctl = ctl
        self.cfg: HotlineConfig = ctl.cfg
        self.policy = kpi.Policy.of(self.cfg)
        self.tz = ZoneInfo(self.cfg.routing.timezone)
        self.homes = self.cfg.agent_cities()
        self._today: tuple[float, dict] | None = None
        self._lock = asyncio.Lock()
        self.local_date = lambda: datetime.now(self.tz).date()   # the holiday-years check's today

    def thresholds(self, city: str) -> AlarmThresholds:
        w = self.cfg.system.wallboard
        return w.city_thresholds.get(city, w.thresholds)

    async def today(self) -> dict[str, dict]:
        async with self._lock:
            if self._today and time.monotonic() - self._today[0] < KPI_TTL:
                return self._today[1]
            now = datetime.now(self.tz)
            midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
            rows = await self.ctl.call_records.calls_since(midnight)
            callbacks = await self.ctl.callback_tasks.callbacks_since(midnight)
            by_city: dict[str, list] = {}
            for r in rows:
                by_city.setdefault(r["city"], []).append(r)
            out = {c.id: kpi.compute(by_city.get(c.id, []), self.policy, callbacks.get(c.id, 0)).as_dict()
                   for c in self.cfg.cities}
            self._today = (time.monotonic(), out)
            return out

    async def report(self, first: date, last: date, city: str | None = None) -> dict:
        """KPIs over local dates first..last (/api/reports): per day, per hour of day, per agent, total."""
        rows = await self.ctl.call_records.calls_since(datetime.combine(first, dtime(0), self.tz),
                                                datetime.combine(last + timedelta(days=1), dtime(0), self.tz), city)
        tzname = self.cfg.routing.timezone
        # a year of a province's calls is seconds of CPU: off the event loop that follows the calls
        return await asyncio.to_thread(lambda: {
            "days": kpi.by_day(rows, tzname, self.policy), "hours": kpi.by_hour(rows, tzname),
            "agents": kpi.by_agent(rows, self.policy), "total": kpi.compute(rows, self.policy).as_dict()})

    async def tiles(self, cities: set[str] | None = None) -> list[dict]:
        today = await self.today()
        now = time.time()
        live = self.ctl.tracker.live()
        agents = list(self.ctl.agents.agents.values())
        out = []
        for c in self.cfg.cities:
            if cities is not None and c.id not in cities:
                continue
            waiting = [x for x in live if x.city == c.id and x.status == "queued"]
            states = [a.state for a in agents if c.id in self.homes.get(a.id, set())]
            counts = {s: states.count(s) for s in ("ready", "on_call", "paused", "wrap_up")}
            counts["logged_in"] = sum(1 for s in states if s != "logged_out")
            sched = self.cfg.schedules.get(c.id)
            tile = {"city": c.id, "names": c.names.model_dump(),
                    "open": bool(sched is None or is_open(sched, datetime.now(self.tz), self.cfg.routing.timezone)),
                    "waiting": len(waiting),
                    "longest_wait_seconds": round(max((now - x.queued_at for x in waiting if x.queued_at), default=0.0), 1),
                    "talking": sum(1 for x in live if x.city == c.id and x.status == "talking"),
                    "agents": counts, "occupancy": kpi.occupancy(states), "today": today[c.id]}
            alarms = alarms_for(tile, self.thresholds(c.id))
            tile["alarms"] = [a.kind for a in alarms]
            tile["health"] = health(tile, alarms)
            out.append(tile)
        return out

    async def raise_alarms(self) -> list[dict]:
        """Raise alarms whose condition began, clear those whose condition ended; returns the new ones."""
        tiles = await self.tiles()
        active = await self.ctl.alerts.active_alarms()
        now_true = {}
        for t in tiles:
            for a in alarms_for(t, self.thresholds(t["city"])):
                now_true[(t["city"], a.kind)] = a
        # next year's holidays missing by 1 December: an operator alarm (national: the province's)
        for scope, detail in missing_holiday_years(self.local_date(), self.cfg.holiday_years).items():
            now_true[(self.cfg.province.id if scope == "national" else scope, "holidays_missing")] = \
                Alarm("holidays_missing", detail)
        raised = []
        if self.cfg.system.federation.mode == "command":
            for key, a in (await self.stale_nodes()).items():
                now_true[key] = a
        for key, a in now_true.items():
            if key not in active:
                row = await self.ctl.alerts.add_alert(kind="alarm", city=key[0], topic=a.kind, term="",
                                                           severity="high", phase="live", detail=a.detail)
                if row:
                    raised.append(row)
        for key, row in active.items():
            if key not in now_true:
                await self.ctl.alerts.clear_alarm(row["id"])
        return raised

    async def stale_nodes(self) -> dict[tuple[str, str], Alarm]:
        """Command center: every city of a node that stopped reporting has a node_stale alarm."""
        from datetime import timezone

        from store.interop import FederationStore
        out = {}
        now = datetime.now(timezone.utc)
        for n in await FederationStore(self.ctl.db).nodes():
            seen = n["last_seen"]
            if seen is not None and seen.tzinfo is None:
                seen = seen.replace(tzinfo=timezone.utc)
            if seen is None or (now - seen).total_seconds() > self.cfg.system.federation.stale_seconds:
                for city in n["cities"]:
                    out[(city, "node_stale")] = Alarm("node_stale", f"city node {n['node']} stopped reporting")
        return out

    async def run(self, ready: asyncio.Event) -> None:
        await ready.wait()
        while True:
            try:
                for row in await self.raise_alarms():
                    log.warning("alarm in %s: %s (%s)", row["city"], row["topic"], row["detail"])
                    self.ctl.broadcast({"type": "alert", "alert": row})
            except Exception as e:    # database away: next round
                log.warning("evaluating alarms failed: %s", e)
            await asyncio.sleep(self.cfg.system.wallboard.alarm_interval_seconds)
