"""Statistics per city and province by day, month or year (pure aggregation + table export).

Rows come from the store (call records, tickets, appointments in a date range); buckets are the
hotline's local dates. Definitions (satisfaction: mean of each completed follow-up's ratings 1-5,
by the day it was answered; complaints: filed that day): a call is one call record into the hotline (unknown numbers
excluded); answered = reached an agent; green share = green-channel calls / calls; consultations =
tickets by category; referrals = tickets with a referral outcome; appointments = booked, not cancelled.
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable, Literal
from zoneinfo import ZoneInfo

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
    calls: int = 0
    answered: int = 0
    abandoned: int = 0
    voicemail: int = 0
    green: int = 0
    consultations: dict[str, int] = field(default_factory=dict)
    referrals: int = 0
    appointments: int = 0
    complaints: int = 0
    ratings: list[float] = field(default_factory=list)   # mean of a follow-up's answered ratings

    def as_row(self) -> dict:
        return {"calls": self.calls, "answered": self.answered, "abandoned": self.abandoned,
                "voicemail": self.voicemail, "answer_rate": round(self.answered / self.calls, 4) if self.calls else None,
                "green_share": round(self.green / self.calls, 4) if self.calls else None,
                "consultations": sum(self.consultations.values()), "by_category": dict(sorted(self.consultations.items())),
                "referrals": self.referrals, "appointments": self.appointments, "complaints": self.complaints,
                "satisfaction": round(sum(self.ratings) / len(self.ratings), 2) if self.ratings else None,
                "surveys": len(self.ratings)}


def _local_day(ts: datetime, tz: ZoneInfo) -> date:
    if ts.tzinfo is None:        # SQLite hands back naive UTC
        from datetime import timezone
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(tz).date()


def aggregate(calls: Iterable[dict], tickets: Iterable[dict], appointments: Iterable[dict], period: Period,
              tz: str, complaints: Iterable[dict] = (), surveys: Iterable[dict] = ()) -> list[dict]:
    """[{period, city, ...figures}] per (bucket, city), plus a province row per bucket."""
    zone = ZoneInfo(tz)
    table: dict[tuple[str, str], Figures] = defaultdict(Figures)

    def add(key_day: date, city: str, fn) -> None:
        b = bucket(key_day, period)
        for c in (city or "unknown", PROVINCE):
            fn(table[(b, c)])

    for c in calls:
        if c["outcome"] == "unknown_number":
            continue
        def count(f: Figures, c=c) -> None:
            f.calls += 1
            f.answered += c["outcome"] == "answered" or bool(c["answered_at"])
            f.abandoned += c["outcome"] == "abandoned"
            f.voicemail += c["outcome"] == "voicemail"
            f.green += bool(c["green"])
        add(_local_day(c["started_at"], zone), c["city"], count)
    for t in tickets:
        def consult(f: Figures, t=t) -> None:
            cat = t["category"] or "unclassified"
            f.consultations[cat] = f.consultations.get(cat, 0) + 1
            f.referrals += str(t["outcome"]).startswith("referred_")
        add(_local_day(t["created_at"], zone), t["city"], consult)
    for a in appointments:
        if a["status"] == "booked":
            def booked(f: Figures) -> None:
                f.appointments += 1
            add(date.fromisoformat(a["day"]), a["city"], booked)
    for c in complaints:
        def complaint(f: Figures) -> None:
            f.complaints += 1
        add(_local_day(c["created_at"], zone), c["city"], complaint)
    for sv in surveys:
        scores = [sv[q] for q in ("attitude", "efficiency", "professionalism") if sv[q] is not None]
        if scores:
            def rated(f: Figures, mean=sum(scores) / len(scores)) -> None:
                f.ratings.append(mean)
            add(_local_day(sv["updated_at"], zone), sv["city"], rated)
    return [{"period": b, "city": city, **f.as_row()} for (b, city), f in sorted(table.items())]


COLUMNS = ["period", "city", "calls", "answered", "abandoned", "voicemail", "answer_rate", "green_share",
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
