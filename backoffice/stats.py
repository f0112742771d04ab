"""Statistics per city and province by day, month or year (pure aggregation + table export).

Rows come from the store (call records, tickets, appointments in a date range); buckets are the
hotline's local dates. The call figures (calls, answered, abandoned, service level, ASA, abandonment
rate, AHT, green share) are core/kpi.py's, the same as the wallboard's and /api/reports'; here are
only: voicemail = calls that ended in voicemail; answer rate = answered / calls; satisfaction = mean of
each completed follow-up's ratings 1-5, by the day it was answered; complaints = filed that day;
consultations = tickets by category; referrals = tickets with a referral outcome; appointments =
booked, not cancelled.
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Iterable, Literal
from zoneinfo import ZoneInfo

from core import kpi

Period = Literal["day", "month", "year"]
PROVINCE = "province"
# the dates a report, a statistic or a search may name: local midnight and the day after, in UTC,
# stay inside datetime's years 1..9999 (0001-01-01 or 9999-12-31 was a 500: OverflowError)
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


def parse_day(value: str) -> date:
    """An ISO date (YYYY-MM-DD) between FIRST_DAY and LAST_DAY; ValueError otherwise."""
    d = date.fromisoformat(value)
    if not FIRST_DAY <= d <= LAST_DAY:
        raise ValueError(f"{d} is not between {FIRST_DAY} and {LAST_DAY}")
    return d


def bucket(d: date, period: Period) -> str:
    return d.isoformat() if period == "day" else d.strftime("%Y-%m") if period == "month" else str(d.year)


@dataclass
class Figures:
    calls: list = field(default_factory=list)            # call records into the hotline (core/kpi.py)
    voicemail: int = 0
    consultations: dict[str, int] = field(default_factory=dict)
    referrals: int = 0
    appointments: int = 0
    complaints: int = 0
    ratings: list[float] = field(default_factory=list)   # mean of a follow-up's answered ratings

    def as_row(self, policy: kpi.Policy) -> dict:
        k = kpi.compute(self.calls, policy)
        return {"calls": k.calls, "answered": k.answered, "abandoned": k.abandoned,
                "voicemail": self.voicemail, "answer_rate": round(k.answered / k.calls, 4) if k.calls else None,
                "green_share": k.green_share, "queued": k.queued, "short_abandons": k.short_abandons,
                "service_level": k.service_level, "asa_seconds": k.asa_seconds,
                "abandonment_rate": k.abandonment_rate, "aht_seconds": k.aht_seconds,
                "consultations": sum(self.consultations.values()), "by_category": dict(sorted(self.consultations.items())),
                "referrals": self.referrals, "appointments": self.appointments, "complaints": self.complaints,
                "satisfaction": round(sum(self.ratings) / len(self.ratings), 2) if self.ratings else None,
                "surveys": len(self.ratings)}


def aggregate(calls: Iterable[dict], tickets: Iterable[dict], appointments: Iterable[dict], period: Period,
              tz: str, complaints: Iterable[dict] = (), surveys: Iterable[dict] = (),
              policy: kpi.Policy = kpi.Policy()) -> list[dict]:
    """[{period, city, ...figures}] per (bucket, city), plus a province row per bucket. ``policy`` is
    the configured KPI policy (service-level threshold, short abandons, wrap-up): kpi.Policy.of(cfg)."""
    zone = ZoneInfo(tz)
    table: dict[tuple[str, str], Figures] = defaultdict(Figures)

    def add(key_day: date, city: str, fn) -> None:
        b = bucket(key_day, period)
        for c in (city or "unknown", PROVINCE):
            fn(table[(b, c)])

    for c in calls:
        if not kpi.is_call(c):
            continue
        def count(f: Figures, c=c) -> None:
            f.calls.append(c)
            f.voicemail += c["outcome"] == "voicemail"
        add(kpi.local_date(c["started_at"], zone), c["city"], count)
    for t in tickets:
        def consult(f: Figures, t=t) -> None:
            cat = t["category"] or "unclassified"
            f.consultations[cat] = f.consultations.get(cat, 0) + 1
            f.referrals += str(t["outcome"]).startswith("referred_")
        add(kpi.local_date(t["created_at"], zone), t["city"], consult)
    for a in appointments:
        if a["status"] == "booked":
            def booked(f: Figures) -> None:
                f.appointments += 1
            add(date.fromisoformat(a["day"]), a["city"], booked)
    for c in complaints:
        def complaint(f: Figures) -> None:
            f.complaints += 1
        add(kpi.local_date(c["created_at"], zone), c["city"], complaint)
    for sv in surveys:
        scores = [sv[q] for q in ("attitude", "efficiency", "professionalism") if sv[q] is not None]
        if scores:
            def rated(f: Figures, mean=sum(scores) / len(scores)) -> None:
                f.ratings.append(mean)
            add(kpi.local_date(sv["updated_at"], zone), sv["city"], rated)
    return [{"period": b, "city": city, **f.as_row(policy)} for (b, city), f in sorted(table.items())]


COLUMNS = ["period", "city", "calls", "answered", "abandoned", "voicemail", "answer_rate", "green_share",
           "queued", "short_abandons", "service_level", "asa_seconds", "abandonment_rate", "aht_seconds",
           "consultations", "referrals", "appointments", "complaints", "satisfaction", "surveys"]


def _flat(rows: list[dict], categories: list[str]) -> tuple[list[str], list[list]]:
    header = COLUMNS + [f"category:{c}" for c in categories]
    return header, [[r[k] for k in COLUMNS] + [r["by_category"].get(c, 0) for c in categories] for r in rows]


def to_csv(rows: list[dict], categories: list[str]) -> str:
    header, body = _flat(rows, categories)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    w.writerows(body)
    return out.getvalue()


def to_xlsx(rows: list[dict], categories: list[str]) -> bytes:
    import xlsxwriter

    header, body = _flat(rows, categories)
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = book.add_worksheet("12348")
    bold = book.add_format({"bold": True})
    sheet.write_row(0, 0, header, bold)
    for i, row in enumerate(body, start=1):
        sheet.write_row(i, 0, ["" if v is None else v for v in row])
    sheet.freeze_panes(1, 2)
    book.close()
    return out.getvalue()
