"""Legal-aid appointments: centers, their slots, and the texts sent to the caller (pure).

Booking itself is a database operation (store/appointments.py: AppointmentStore): a slot has
``capacity`` seats and each booking takes a free seat under a unique constraint, so two
desks can never get the same seat, on SQLite or PostgreSQL.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from core.config import Center, HotlineConfig
from core.schedule import Schedule, parse_days, parse_span

Lang = str


@dataclass(frozen=True)
class Centers:
    by_id: dict[str, Center]
    texts: dict[str, dict[str, str]]        # kind -> language -> template


def centers_of(cfg: HotlineConfig) -> Centers:
    """The centers (config/legal_aid_centers.yaml, checked by the loader) by id, and the texts."""
    f = cfg.centers
    return Centers({c.id: c for c in f.centers},
                   {"confirmation": f.confirmation, "reminder": f.reminder, "cancellation": f.cancellation,
                    "home_visit_confirmation": f.home_visit_confirmation or f.confirmation})


def slot_times(center: Center, day: date, city_schedule: Schedule | None) -> list[str]:
    """The slot start times ('09:30') a center offers on ``day``: its weekly hours, closed on the
    city's public holidays and open on make-up working days (with Monday's hours). Also a center's
    ``home_visits`` (the same hours, slot_minutes fields)."""
    if city_schedule is not None and day in city_schedule.closed:
        return []
    weekday = 0 if city_schedule is not None and day in city_schedule.workdays else day.weekday()
    out = []
    for days, spans in center.hours.items():
        if weekday not in parse_days(days):
            continue
        for spec in spans:
            span = parse_span(spec)
            t = datetime.combine(day, span.start)
            end = datetime.combine(day, span.end)
            step = timedelta(minutes=center.slot_minutes)
            while t + step <= end:
                out.append(t.strftime("%H:%M"))
                t += step
    return sorted(out)


class BookingError(ValueError):
    pass


def check_booking_time(center: Center, day: date, slot: str, city_schedule: Schedule | None,
                       today: date, days_ahead: int = 30, kind: str = "office") -> None:
    if day < today:
        raise BookingError(f"{day} is in the past")
    if day > today + timedelta(days=days_ahead):
        raise BookingError(f"appointments are taken up to {days_ahead} days ahead")
    if kind == "home_visit" and center.home_visits is None:
        raise BookingError(f"{center.id} does not make home visits")
    offered = slot_times(center.home_visits if kind == "home_visit" else center, day, city_schedule)
    if slot not in offered:
        raise BookingError(f"{center.id} has no slot {slot} on {day}" + (f"; slots: {', '.join(offered)}" if offered
                                                                         else " (closed that day)"))


HOME_VISIT_AGE = 80
SEVERE_DISABILITY_GRADES = (1, 2)     # 残疾等级 一级、二级 (the disabled persons' card)


def home_visit_reason(age: int | None, disability_grade: int | None) -> str:
    """Why an applicant may have a home visit instead of an office slot (seeds 001, 003 #18: 80 and over,
    severe disability), or BookingError."""
    if age is not None and age >= HOME_VISIT_AGE:
        return "elderly_80"
    if disability_grade in SEVERE_DISABILITY_GRADES:
        return "severe_disability"
    raise BookingError("home visits are for applicants aged 80 or over or with a severe (grade 1 or 2) "
                       "disability; book an office slot instead")


def message(centers: Centers, kind: str, lang: Lang, center: Center, day: str, slot: str, code: str,
            address: str | None = None) -> str:
    """The SMS text in the caller's language (Chinese when there is no text for it); ``address`` is the
    applicant's for a home visit, else the center's."""
    template = centers.texts[kind].get(lang) or centers.texts[kind]["zh"]
    name = getattr(center.name, lang, None) or center.name.zh
    return template.format(name=name, date=day, time=slot, address=address or center.address, code=code)


def reminder_due(day: date, tz_hour: time = time(18, 0)) -> datetime:
    """Reminders go out at 18:00 local time the day before."""
    return datetime.combine(day - timedelta(days=1), tz_hour)
