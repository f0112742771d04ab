"""Contact-center KPIs, one definition each (docs/kpis.md), as pure functions of calls.

A call counts as *queued* once it entered a queue (``queued_at``); it leaves the queue *answered*
(``answered_at``) or *abandoned* (the caller hung up, or left to voicemail / a callback request,
while queued). Following Amazon Connect:

* service level (X s) = calls that left the queue within X s of entering it (answered or abandoned)
  / calls queued — short abandons excluded from both when the policy says so;
* ASA = mean seconds from queued to answered, over answered calls;
* abandonment rate = abandoned / queued (short abandons excluded per policy);
* AHT = mean (talk + after-call work) over answered calls that ended;
* green share = green-channel calls / calls; callbacks = callback requests and voicemail tasks.

Occupancy is a snapshot of agents (on call + wrap-up) / (logged in, not paused).

Every output takes its figures from here: the wallboard and ``/api/reports`` (callcenter/wallboard.py),
``/api/stats`` and ``hotline stats`` (backoffice/stats.py), ``hotline staffing`` (backoffice/staffing.py)
and the dialplan's wait estimate (the controller's learned AHT). A call is a mapping or an object with
the call record's fields; times are epochs or datetimes (naive ones are UTC, as SQLite hands them back).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo

LEFT_QUEUE_UNANSWERED = ("abandoned", "voicemail", "callback_requested")


@dataclass(frozen=True)
class Policy:
    service_level_seconds: float = 20
    short_abandon_seconds: float = 5
    exclude_short_abandons: bool = True
    wrapup_seconds: float = 0          # after-call work added to talk time for AHT

    @classmethod
    def of(cls, cfg) -> "Policy":
        """The configured policy (``wallboard`` and ``queues.wrapup_seconds`` of a HotlineConfig)."""
        w = cfg.system.wallboard
        return cls(w.service_level_seconds, w.short_abandon_seconds, w.exclude_short_abandons,
                   cfg.system.queues.wrapup_seconds)


@dataclass
class Kpis:
    calls: int = 0
    queued: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandons: int = 0
    within_sl: int = 0
    service_level: float | None = None       # 0..1
    asa_seconds: float | None = None
    abandonment_rate: float | None = None    # 0..1
    aht_seconds: float | None = None
    green_share: float | None = None
    callbacks: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def _get(c, key):
    return c.get(key) if isinstance(c, Mapping) else getattr(c, key, None)


def epoch(t: float | datetime | None) -> float | None:
    """A time as an epoch; a naive datetime is UTC (SQLite hands those back)."""
    if isinstance(t, datetime):
        return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()
    return t


def _time(c, key) -> float | None:
    return epoch(_get(c, key))


def local_date(t: float | datetime, zone: ZoneInfo) -> date:
    """The hotline's local date of a time (figures are bucketed by local date, not UTC)."""
    return datetime.fromtimestamp(epoch(t), zone).date()


def is_call(c) -> bool:
    """A call into the hotline: every call record except unknown numbers (a number that is not 12348)."""
    return _get(c, "outcome") != "unknown_number"


def compute(calls: Iterable, policy: Policy = Policy(), callbacks: int = 0) -> Kpis:
    k = Kpis(callbacks=callbacks)
    waits_answered: list[float] = []
    handle: list[float] = []
    green = 0
    for c in calls:
        if not is_call(c):
            continue
        k.calls += 1
        if _get(c, "green"):
            green += 1
        queued_at, answered_at = _time(c, "queued_at"), _time(c, "answered_at")
        if queued_at is None:
            continue
        if answered_at is not None:
            wait = max(0.0, answered_at - queued_at)
            k.queued += 1
            k.answered += 1
            waits_answered.append(wait)
            if wait <= policy.service_level_seconds:
                k.within_sl += 1
            talk = _get(c, "talk_seconds")
            if talk is not None and _get(c, "status") == "ended":
                handle.append(talk + policy.wrapup_seconds)
        elif _get(c, "status") == "ended" and _get(c, "outcome") in LEFT_QUEUE_UNANSWERED:
            ended = _time(c, "ended_at")
            wait = max(0.0, (ended or queued_at) - queued_at)
            if wait < policy.short_abandon_seconds:
                k.short_abandons += 1
                if policy.exclude_short_abandons:
                    continue
            k.queued += 1
            k.abandoned += 1
            if wait <= policy.service_level_seconds:
                k.within_sl += 1
        # still waiting: neither served nor abandoned yet, not counted
    if k.queued:
        k.service_level = round(k.within_sl / k.queued, 4)
        k.abandonment_rate = round(k.abandoned / k.queued, 4)
    if waits_answered:
        k.asa_seconds = round(sum(waits_answered) / len(waits_answered), 2)
    if handle:
        k.aht_seconds = round(sum(handle) / len(handle), 2)
    if k.calls:
        k.green_share = round(green / k.calls, 4)
    return k


def occupancy(agent_states: Iterable[str]) -> float | None:
    """Right now: agents on call or in wrap-up / agents available for calls (not paused)."""
    busy = avail = 0
    for s in agent_states:
        if s in ("on_call", "wrap_up"):
            busy += 1
            avail += 1
        elif s == "ready":
            avail += 1
    return round(busy / avail, 4) if avail else None


def by_day(calls: Iterable, tz: str, policy: Policy = Policy()) -> list[dict]:
    """KPIs per local date (service-level trend, volume), in date order."""
    zone = ZoneInfo(tz)
    days: dict[str, list] = {}
    for c in calls:
        started = _get(c, "started_at")
        if started is None:
            continue
        days.setdefault(local_date(started, zone).isoformat(), []).append(c)
    return [{"date": d, **compute(cs, policy).as_dict()} for d, cs in sorted(days.items())]


def _hours(calls: Iterable, tz: str) -> list[list]:
    """The calls started in each local hour of the day (0-23)."""
    zone = ZoneInfo(tz)
    hours: list[list] = [[] for _ in range(24)]
    for c in calls:
        started = _time(c, "started_at")
        if started is not None and is_call(c):
            hours[datetime.fromtimestamp(started, zone).hour].append(c)
    return hours


def by_hour(calls: Iterable, tz: str) -> list[int]:
    """Calls per local hour of the day (0-23), over the whole range."""
    return [len(cs) for cs in _hours(calls, tz)]


def aht_by_hour(calls: Iterable, tz: str, policy: Policy = Policy()) -> dict[int, float]:
    """AHT per local hour of the day, for the hours that have one (staffing's handle times)."""
    out = {}
    for h, cs in enumerate(_hours(calls, tz)):
        aht = compute(cs, policy).aht_seconds
        if aht is not None:
            out[h] = aht
    return out


def by_agent(calls: Iterable, policy: Policy = Policy()) -> list[dict]:
    """Answered calls, ASA and AHT per agent, busiest first."""
    agents: dict[str, list] = {}
    for c in calls:
        if _get(c, "agent") and _get(c, "answered_at") is not None:
            agents.setdefault(_get(c, "agent"), []).append(c)
    rows = [{"agent": a, "answered": k.answered, "asa_seconds": k.asa_seconds, "aht_seconds": k.aht_seconds}
            for a, k in ((a, compute(cs, policy)) for a, cs in agents.items())]
    return sorted(rows, key=lambda r: (-r["answered"], r["agent"]))
