"""Opening hours, public holidays and make-up working days: a pure, typed model.

The same model generates Asterisk's GotoIfTime rules (confgen), so "is Leshan open now?" is decided
inside Asterisk, controller or not; ``is_open`` is the reference the tests compare against.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([0-2][0-9]):([0-5][0-9])-([0-2][0-9]):([0-5][0-9])$")


@dataclass(frozen=True)
class Span:
    start: time
    end: time  # exclusive; 24:00 is written as 23:59 inclusive end


@dataclass(frozen=True)
class Schedule:
    always_open: bool
    weekly: dict[int, tuple[Span, ...]]      # weekday (0 = Monday) -> spans
    closed: frozenset[date]
    workdays: frozenset[date]                # weekend days worked with Monday's hours

    def spans_on(self, day: date) -> tuple[Span, ...]:
        if day in self.closed:
            return ()
        if day in self.workdays:
            return self.weekly.get(0, ())
        return self.weekly.get(day.weekday(), ())


def parse_days(spec: str) -> list[int]:
    """'mon-fri' -> [0..4]; 'sat' -> [5]; 'sat-sun' -> [5, 6]."""
    a, _, b = spec.partition("-")
    if a not in DAYS or (b and b not in DAYS):
        raise ValueError(f"day range {spec!r}: use mon..sun, e.g. mon-fri")
    i, j = DAYS.index(a), DAYS.index(b or a)
    if j < i:
        raise ValueError(f"day range {spec!r} runs backwards")
    return list(range(i, j + 1))


def parse_span(spec: str) -> Span:
    m = _SPAN.match(spec)
    if not m:
        raise ValueError(f"hours {spec!r}: use HH:MM-HH:MM")
    h1, m1, h2, m2 = map(int, m.groups())
    if h1 > 23 or h2 > 24 or (h2 == 24 and m2) or (h1, m1) >= (h2, m2):
        raise ValueError(f"hours {spec!r}: start must be before end, within one day")
    end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
    return Span(time(h1, m1), end)


def parse_dates(items: list[str]) -> frozenset[date]:
    out: set[date] = set()
    for item in items:
        a, _, b = str(item).partition("..")
        d1 = date.fromisoformat(a.strip())
        d2 = date.fromisoformat(b.strip()) if b else d1
        if d2 < d1:
            raise ValueError(f"date range {item!r} runs backwards")
        while d1 <= d2:
            out.add(d1)
            d1 += timedelta(days=1)
    return frozenset(out)


def is_open(s: Schedule, at: datetime, tz: str) -> bool:
    """Is the city open at ``at`` (any timezone-aware datetime), in the schedule's local time?"""
    if s.always_open:
        return True
    local = at.astimezone(ZoneInfo(tz))
    t = local.time().replace(tzinfo=None)
    return any(span.start <= t < span.end or (span.end == time(23, 59, 59) and t >= span.start)
               for span in s.spans_on(local.date()))


def missing_holiday_years(today: date, years: dict[str, list[int]]) -> dict[str, str]:
    """Scope ("national" or a city with local holidays) -> what is missing: from 1 December on, next
    year's dates must be in the config (the State Council's notice usually comes in November)."""
    if (today.month, today.day) < (12, 1):
        return {}
    need = today.year + 1
    return {scope: f"holiday dates for {need} are missing ({'holidays.yaml' if scope == 'national' else 'local_holidays.yaml'})"
            for scope, have in years.items() if need not in have}
