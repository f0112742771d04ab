"""Staffing advice with Erlang C: agents needed per hour for a service-level target.

pyworkforce has the same formula but pulls in OR-Tools and pandas; the formula is a few lines, so
it lives here, pure and tested. Erlang C assumes nobody abandons, so it errs on the safe side.

The service level, ASA and occupancy here are the model's forecasts for a number of agents; the
measured ones, and the history staffing learns from (calls per hour, AHT), are core/kpi.py's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from core import kpi


def erlang_c(agents: int, load: float) -> float:
    """Probability that a call waits (Erlang C), for ``load`` erlangs offered to ``agents``."""
    if load <= 0:
        return 0.0
    if agents <= load:
        return 1.0
    # sum_{k<N} A^k/k! computed term by term (no factorials, no overflow)
    term, total = 1.0, 1.0
    for k in range(1, agents):
        term *= load / k
        total += term
    top = term * load / agents * agents / (agents - load)
    return top / (total + top)


def service_level(agents: int, load: float, aht: float, answer_within: float) -> float:
    """Share of calls answered within ``answer_within`` seconds."""
    if load <= 0:
        return 1.0
    if agents <= load:
        return 0.0
    return 1.0 - erlang_c(agents, load) * math.exp(-(agents - load) * answer_within / aht)


def asa(agents: int, load: float, aht: float) -> float:
    """Average speed of answer, in seconds."""
    if load <= 0:
        return 0.0
    if agents <= load:
        return math.inf
    return erlang_c(agents, load) * aht / (agents - load)


@dataclass(frozen=True)
class HourAdvice:
    hour: int
    calls_per_hour: float
    aht: float
    agents: int
    service_level: float
    asa: float
    occupancy: float


def agents_needed(calls_per_hour: float, aht: float, target_sl: float = 0.8, answer_within: float = 20,
                  max_occupancy: float = 0.85, minimum: int = 1) -> int:
    """Fewest agents meeting the target service level and an occupancy cap. ``minimum`` keeps a
    line staffed at night however few the calls (a hotline is never unattended)."""
    load = calls_per_hour * aht / 3600
    n = max(minimum, math.ceil(load / max_occupancy) if load else minimum)
    while service_level(n, load, aht, answer_within) < target_sl:
        n += 1
    return n


def history(calls: Iterable, days: float, tz: str, policy: kpi.Policy) -> tuple[dict[int, float], dict[int, float]]:
    """What staffing learns from ``days`` of call records: calls per local hour of the day (a day's
    mean) and AHT per hour of the day, both as core/kpi.py counts and defines them."""
    arrivals = {h: n / days for h, n in enumerate(kpi.by_hour(calls, tz)) if n}
    return arrivals, kpi.aht_by_hour(calls, tz, policy)


def advise(arrivals_by_hour: dict[int, float], aht_by_hour: dict[int, float], target_sl: float = 0.8,
           answer_within: float = 20, minimum: int = 1) -> list[HourAdvice]:
    out = []
    for h in range(24):
        lam = arrivals_by_hour.get(h, 0.0)
        aht = aht_by_hour.get(h) or (sum(aht_by_hour.values()) / len(aht_by_hour) if aht_by_hour else 300.0)
        n = agents_needed(lam, aht, target_sl, answer_within, minimum=minimum)
        load = lam * aht / 3600
        out.append(HourAdvice(h, lam, aht, n, service_level(n, load, aht, answer_within), asa(n, load, aht),
                              load / n if n else 0.0))
    return out
