"""Legal-aid appointments: centers, their slots, and the texts sent to the caller (pure).

Booking itself is a database operation (store/db.py: AppointmentStore): a slot has
``capacity`` seats and each booking takes a free seat under a unique constraint, so two
desks can never get the same seat, on SQLite or PostgreSQL.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator

from core.config import REPO_ROOT, ConfigError, HotlineConfig, Strict, _read_yaml, _validate
from core.schedule import Schedule, parse_days, parse_span

Lang = str


class CenterName(Strict):
    zh: str
    en: str
    bo: str


class Center(Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{2,40}$")]
    city: str
    name: CenterName
    address: str
    hours: dict[str, list[str]]
    slot_minutes: Annotated[int, Field(ge=10, le=240)]
    capacity: Annotated[int, Field(ge=1, le=50)]

    @field_validator("hours")
    @classmethod
    def spans(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for days, spans in v.items():
            parse_days(days)
            for s in spans:
                parse_span(s)
        return v


class CentersFile(Strict):
    centers: list[Center]
    confirmation: dict[str, str]
    reminder: dict[str, str]
    cancellation: dict[str, str]


@dataclass(frozen=True)
class Centers:
    by_id: dict[str, Center]
    texts: dict[str, dict[str, str]]        # kind -> language -> template


def load_centers(cfg: HotlineConfig, root: Path | None = None) -> Centers:
    path = (root or REPO_ROOT) / "config" / "legal_aid_centers.yaml"
    f: CentersFile = _validate(CentersFile, _read_yaml(path), path)
    cities = {c.id for c in cfg.cities}
    for i, c in enumerate(f.centers):
        if c.city not in cities:
            raise ConfigError(f"{path}: centers[{i}] ({c.id}).city: unknown city {c.city!r}")
    for kind in ("confirmation", "reminder", "cancellation"):
        if "zh" not in getattr(f, kind):
            raise ConfigError(f"{path}: {kind}: needs at least the zh text")
    ids = [c.id for c in f.centers]
    if len(ids) != len(set(ids)):
        raise ConfigError(f"{path}: duplicate center ids")
    return Centers({c.id: c for c in f.centers},
                   {"confirmation": f.confirmation, "reminder": f.reminder, "cancellation": f.cancellation})


def slot_times(center: Center, day: date, city_schedule: Schedule | None) -> list[str]:
    """The slot start times ('09:30') a center offers on ``day``: its weekly hours, closed on the
    city's public holidays and open on make-up working days (with Monday's hours)."""
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
                       today: date, days_ahead: int = 30) -> None:
    if day < today:
        raise BookingError(f"{day} is in the past")
    if day > today + timedelta(days=days_ahead):
        raise BookingError(f"appointments are taken up to {days_ahead} days ahead")
    offered = slot_times(center, day, city_schedule)
    if slot not in offered:
        raise BookingError(f"{center.id} has no slot {slot} on {day}" + (f"; slots: {', '.join(offered)}" if offered
                                                                         else " (closed that day)"))


def message(centers: Centers, kind: str, lang: Lang, center: Center, day: str, slot: str, code: str) -> str:
    """The SMS text in the caller's language (Chinese when there is no text for it)."""
    template = centers.texts[kind].get(lang) or centers.texts[kind]["zh"]
    name = getattr(center.name, lang, None) or center.name.zh
    return template.format(name=name, date=day, time=slot, address=center.address, code=code)


def reminder_due(day: date, tz_hour: time = time(18, 0)) -> datetime:
    """Reminders go out at 18:00 local time the day before."""
    return datetime.combine(day - timedelta(days=1), tz_hour)
