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
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Mapping

LEFT_QUEUE_UNANSWERED = ("abandoned", "voicemail", "callback_requested")


@dataclass(frozen=True)
class Policy:
    service_level_seconds: float = 20
    short_abandon_seconds: float = 5
    exclude_short_abandons: bool = True
    wrapup_seconds: float = 0          # after-call work added to talk time for AHT


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


def compute(calls: Iterable, policy: Policy = Policy(), callbacks: int = 0) -> Kpis:
    k = Kpis(callbacks=callbacks)
    waits_answered: list[float] = []
    handle: list[float] = []
    green = 0
    for c in calls:
        if _get(c, "outcome") == "unknown_number":
            continue            # not a call into the hotline
        k.calls += 1
        if _get(c, "green"):
            green += 1
        queued_at, answered_at = _get(c, "queued_at"), _get(c, "answered_at")
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
            ended = _get(c, "ended_at")
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
    from datetime import datetime
    from zoneinfo import ZoneInfo
    zone = ZoneInfo(tz)
    days: dict[str, list] = {}
    for c in calls:
        started = _get(c, "started_at")
        if started is None:
            continue
        days.setdefault(datetime.fromtimestamp(started, zone).date().isoformat(), []).append(c)
    return [{"date": d, **compute(cs, policy).as_dict()} for d, cs in sorted(days.items())]


def by_hour(calls: Iterable, tz: str) -> list[int]:
    """Calls per local hour of the day (0-23), over the whole range."""
    from datetime import datetime
    from zoneinfo import ZoneInfo
    zone = ZoneInfo(tz)
    hours = [0] * 24
    for c in calls:
        started = _get(c, "started_at")
        if started is not None and _get(c, "outcome") != "unknown_number":
            hours[datetime.fromtimestamp(started, zone).hour] += 1
    return hours


def by_agent(calls: Iterable, policy: Policy = Policy()) -> list[dict]:
    """Answered calls, ASA and AHT per agent, busiest first."""
    agents: dict[str, list] = {}
    for c in calls:
        if _get(c, "agent") and _get(c, "answered_at") is not None:
            agents.setdefault(_get(c, "agent"), []).append(c)
    rows = [{"agent": a, "answered": k.answered, "asa_seconds": k.asa_seconds, "aht_seconds": k.aht_seconds}
            for a, k in ((a, compute(cs, policy)) for a, cs in agents.items())]
    return sorted(rows, key=lambda r: (-r["answered"], r["agent"]))
