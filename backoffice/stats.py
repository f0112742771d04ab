"""Statistics per city and province by day, month or year (pure aggregation + table export).

Rows come from the store (call records, tickets, appointments in a date range); buckets are the
hotline's local dates. The call figures (calls, answered, abandoned, service level, ASA, abandonment
rate, AHT, green share) are core/kpi.py's, the same as the wallboard's and /api/reports'; here are
only: voicemail = calls that ended in voicemail; answer rate = answered / calls; satisfaction = mean of
each completed follow-up's ratings 1-5, by the day it was answered; complaints = filed that day;
consultations = tickets by category; referrals = tickets with a referral outcome; appointments =
booked, not cancelled; emergencies = calls handed to 110/120 (warm transfer, outcome `emergency`);
texts to callers (SMS) by the day they were queued and the city of what they are about: sms = queued,
sms_sent = every part acknowledged by the SMSC, sms_delivered = every part's receipt DELIVRD, sms_failed =
failed or dead letters (never delivered; docs/messaging.md).
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
    emergencies: int = 0
    consultations: dict[str, int] = field(default_factory=dict)
    referrals: int = 0
    appointments: int = 0
    complaints: int = 0
    ratings: list[float] = field(default_factory=list)   # mean of a follow-up's answered ratings
    sms: int = 0
    sms_sent: int = 0
    sms_delivered: int = 0
    sms_failed: int = 0

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
                "surveys": len(self.ratings), "emergencies": self.emergencies, "sms": self.sms,
                "sms_sent": self.sms_sent, "sms_delivered": self.sms_delivered, "sms_failed": self.sms_failed}


def aggregate(calls: Iterable[dict], tickets: Iterable[dict], appointments: Iterable[dict], period: Period,
              tz: str, complaints: Iterable[dict] = (), surveys: Iterable[dict] = (),
              policy: kpi.Policy = kpi.Policy(), texts: Iterable[dict] = ()) -> list[dict]:
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
            f.emergencies += c["outcome"] == "emergency"
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
    for m in texts:
        def texted(f: Figures, m=m) -> None:
            f.sms += 1
            f.sms_sent += m["sent"]
            f.sms_delivered += m["status"] == "delivered"
            f.sms_failed += m["status"] in ("failed", "dead")
        add(kpi.local_date(m["created_at"], zone), m["city"], texted)
    return [{"period": b, "city": city, **f.as_row(policy)} for (b, city), f in sorted(table.items())]


COLUMNS = ["period", "city", "calls", "answered", "abandoned", "voicemail", "answer_rate", "green_share",
           "queued", "short_abandons", "service_level", "asa_seconds", "abandonment_rate", "aht_seconds",
           "consultations", "referrals", "appointments", "complaints", "satisfaction", "surveys",
           "emergencies", "sms", "sms_sent", "sms_delivered", "sms_failed"]


# the export's column headers for a Chinese office (Excel, WPS); English ones (the keys) on request
HEADERS_ZH = {"period": "统计期间", "city": "城市", "calls": "来电量", "answered": "接通量", "abandoned": "放弃量",
              "voicemail": "留言量", "answer_rate": "接通率", "green_share": "绿色通道占比", "queued": "排队量",
              "short_abandons": "短时放弃量", "service_level": "服务水平", "asa_seconds": "平均应答时长(秒)",
              "abandonment_rate": "放弃率", "aht_seconds": "平均处理时长(秒)", "consultations": "咨询量",
              "referrals": "转介量", "appointments": "预约量", "complaints": "投诉量", "satisfaction": "满意度",
              "surveys": "回访量", "emergencies": "紧急转警/急救量", "sms": "短信量", "sms_sent": "短信发出量",
              "sms_delivered": "短信送达量", "sms_failed": "短信失败量"}
UNCLASSIFIED_ZH, UNKNOWN_CITY_ZH = "未分类", "未知"


@dataclass(frozen=True)
class Labels:
    """What the export calls its columns, categories and cities. English: the keys and ids
    (``category:<id>``, ``leshan``), as the JSON API names them."""
    columns: dict[str, str] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)
    cities: dict[str, str] = field(default_factory=dict)
    category_prefix: str = "category:"

    @classmethod
    def of(cls, cfg, lang: str = "zh") -> "Labels":
        if lang == "en":
            return cls()
        cities = {c.id: c.names.zh for c in cfg.cities} | {PROVINCE: cfg.province.names.zh, "unknown": UNKNOWN_CITY_ZH}
        cats = {k: v.zh for k, v in cfg.tickets.categories.items()} | {"unclassified": UNCLASSIFIED_ZH}
        return cls(HEADERS_ZH, cats, cities, "咨询类别:")


def _flat(rows: list[dict], categories: list[str], labels: Labels) -> tuple[list[str], list[list]]:
    header = [labels.columns.get(c, c) for c in COLUMNS] + \
        [labels.category_prefix + labels.categories.get(c, c) for c in categories]
    body = [[labels.cities.get(r[k], r[k]) if k == "city" else r[k] for k in COLUMNS]
            + [r["by_category"].get(c, 0) for c in categories] for r in rows]
    return header, body


def to_csv(rows: list[dict], categories: list[str], labels: Labels = Labels()) -> str:
    """The table as CSV text; whoever writes it adds the UTF-8 BOM (encoding "utf-8-sig") for Excel."""
    header, body = _flat(rows, categories, labels)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    w.writerows(body)
    return out.getvalue()


def to_xlsx(rows: list[dict], categories: list[str], labels: Labels = Labels()) -> bytes:
    import xlsxwriter

    header, body = _flat(rows, categories, labels)
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
