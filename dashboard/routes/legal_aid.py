"""Legal aid: the pre-screen the agent runs with the caller (backoffice/legal_aid.py), the centers
and their slots, appointments (booking queues the SMS confirmation and reminder), the outbox."""
from __future__ import annotations

import dataclasses
import re
from datetime import datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, Field, create_model

from backoffice import legal_aid
from backoffice.appointments import BookingError, check_booking_time, home_visit_reason, message, slot_times
from core import access
from core.numbering import may_text
from dashboard.common import audit, bad_request, json_error, me, ok, parse_date, refuse, services
from dashboard.common import body as read_body
from dashboard.schemas import (HOUSEHOLD_MAX, INCOME_MAX, Appointment, Center, CityId, Date, OutboxMessage,
                               PreScreen, Strict, Unset, Vocab)
from dashboard.spec import op
from store.appointments import SlotFull
from store.models import ID_MAX

routes = web.RouteTableDef()
PHONE = re.compile(r"\+?[0-9]+")
PRESCREEN_FIELDS = {f.name for f in dataclasses.fields(legal_aid.Facts)}
PLACE_FIELDS = {f.name for f in dataclasses.fields(legal_aid.Places)}
BOOL_FLAGS = ("has_lawyer", "facing_life_or_death", "blind_deaf_mute", "mental_illness_limited_control",
              "death_penalty_review", "tried_in_absentia", "compulsory_medical", "urgent_preservation")

# a place: a city id, or a Sichuan or Chongqing division code (county-level centers, 川渝通办)
DivisionCode = Annotated[str, Field(pattern=r"^5[01][0-9]{4}$", description="administrative-division code")]
Places = create_model("Places", __base__=Strict, **{
    p: (Literal[""] | CityId | DivisionCode, Unset) for p in sorted(PLACE_FIELDS)})


class Facts(Strict):
    city: CityId
    matter: legal_aid.Matter
    household_size: int | None = Field(None, ge=1, le=HOUSEHOLD_MAX)
    household_monthly_income: float | None = Field(None, ge=0, le=INCOME_MAX, description="yuan per month")
    groups: list[Annotated[str, Vocab("groups")]] = Unset
    residence: Literal["urban", "rural"] | None = Field(None, description="household registration or residence "
                                                        "(urban or rural 低保 line)")
    age: int | None = Field(None, ge=0, le=130)
    has_lawyer: bool = Unset
    facing_life_or_death: bool = Unset
    blind_deaf_mute: bool = Unset
    mental_illness_limited_control: bool = Unset
    death_penalty_review: bool = Unset
    tried_in_absentia: bool = Unset
    compulsory_medical: bool = Unset
    ordinary_procedure: bool | None = Field(None, description="criminal trial under ordinary procedure")
    limitation_days_left: int | None = Field(None, ge=0, le=100000, description="days until a limitation period "
                                             "or time limit runs out")
    urgent_preservation: bool = Unset
    places: Places | None = Unset
    year: int = Field(None, description="standards year (default: the current year)")


class CentersQuery(BaseModel):
    city: str = Field(None, description="only this city's centers")


class SlotsQuery(BaseModel):
    date: Date


class Slot(BaseModel):
    slot: str = Field(pattern="^[0-9]{2}:[0-9]{2}$")
    free: int


class Booking(BaseModel):
    center: Annotated[str, Vocab("centers")]
    date: Date
    slot: str = Field(description="HH:MM, one of the center's slots that day")
    caller_number: str = Field(pattern=r"^\+?[0-9]{4,20}$", min_length=5, max_length=20)
    language: Annotated[str, Vocab("languages")] = "zh"
    ticket_id: int | None = Field(None, description="the ticket it is booked for (required for an agent)")


class AppointmentsQuery(BaseModel):
    city: str = Unset
    center: str = Unset
    date: str = Unset
    caller: str = Unset
    status: str = Unset


class OutboxQuery(BaseModel):
    status: str = Unset
    related: str = Field(None, description="e.g. appointment:12")


def prescreen_facts(body: dict, cities: set[str], known_place=lambda p: False) -> legal_aid.Facts:
    """JSON -> Facts, refusing unknown fields, matters and cities with a message that names them. A place
    may also be a division code `known_place` accepts (Sichuan's counties, Chongqing's)."""
    unknown = set(body) - PRESCREEN_FIELDS
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}; known: {sorted(PRESCREEN_FIELDS)}")
    if body.get("matter") not in legal_aid.Matter.__args__:
        raise ValueError(f"matter must be one of {', '.join(legal_aid.Matter.__args__)}")
    places = {} if body.get("places") is None else body["places"]   # false, "" or [] is no object
    if not isinstance(places, dict) or set(places) - PLACE_FIELDS:
        raise ValueError(f"places must be an object with keys among {sorted(PLACE_FIELDS)}")
    if not isinstance(body.get("city"), str) or body["city"] not in cities:
        raise ValueError(f"city: unknown city {body.get('city')!r}")
    for k, v in places.items():
        if not isinstance(v, str) or not (v == "" or v in cities or known_place(v)):
            raise ValueError(f"places.{k}: unknown city or division code {v!r} (a city id, or a Sichuan or "
                             f"Chongqing county-level code such as 511123)")
    if "year" in body and body["year"] is None:   # null would replace the default year, and fail only sometimes
        raise ValueError("year must be an integer (or left out: the current standards)")
    for key, kind in (("household_size", int), ("age", int), ("year", int), ("limitation_days_left", int)):
        if body.get(key) is not None and (not isinstance(body[key], kind) or isinstance(body[key], bool)):
            raise ValueError(f"{key} must be an integer")
    income = body.get("household_monthly_income")
    if income is not None and (not isinstance(income, (int, float)) or isinstance(income, bool)):
        raise ValueError("household_monthly_income must be a number (yuan per month)")
    # income / household size is float division: a huge integer was a 500 (OverflowError), NaN or
    # Infinity (accepted by the JSON parser) an answer that is not JSON; each fails this comparison
    if income is not None and not -INCOME_MAX <= income <= INCOME_MAX:
        raise ValueError(f"household_monthly_income must be a finite number of at most {INCOME_MAX:g}")
    if body.get("household_size") is not None and body["household_size"] > HOUSEHOLD_MAX:
        raise ValueError(f"household_size must be at most {HOUSEHOLD_MAX}")
    groups = body.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ValueError("groups must be a list of strings")
    for flag in BOOL_FLAGS:
        if not isinstance(body.get(flag, False), bool):
            raise ValueError(f"{flag} must be true or false")
    if body.get("ordinary_procedure") is not None and not isinstance(body["ordinary_procedure"], bool):
        raise ValueError("ordinary_procedure must be true, false or null")
    if body.get("residence") not in (None, "urban", "rural"):
        raise ValueError("residence must be urban or rural (or left out)")
    if body.get("limitation_days_left") is not None and not 0 <= body["limitation_days_left"] <= 100000:
        raise ValueError("limitation_days_left must be between 0 and 100000")
    return legal_aid.Facts(**{**body, "groups": frozenset(groups), "places": legal_aid.Places(**places)})


def center_view(c) -> dict:
    return {"id": c.id, "city": c.city, "name": c.name.model_dump(), "address": c.address,
            "slot_minutes": c.slot_minutes, "capacity": c.capacity}


def _center(request, cid):
    centers = services(request).centers
    c = centers.by_id.get(cid) if isinstance(cid, str) else None   # a list was a 500 (unhashable)
    if c is None:
        raise bad_request(f"unknown center {cid!r}; known: {', '.join(centers.by_id)}")
    return c



@routes.post("/api/legal-aid/prescreen")
@op("prescreen", "legal-aid pre-screen of the caller's facts", tag="legal-aid", errors=("400", "403", "409"), body=Facts,
    ok=PreScreen)
async def prescreen(request):
    """The legal-aid pre-screen the agent runs with the caller (backoffice/legal_aid.py)."""
    svc = services(request)
    body = await read_body(request)
    year = datetime.now(ZoneInfo(svc.cfg.routing.timezone)).year   # never a fixed year: the figures age
    directory = legal_aid.Directory.of(svc.cfg)
    try:
        facts = prescreen_facts(body, svc.city_ids, directory.known)
        result = legal_aid.screen(facts, svc.legal_aid_rules, current_year=year, directory=directory)
    except (ValueError, TypeError) as e:   # FactsError is a ValueError
        return json_error(400, str(e))
    except legal_aid.StandardsMissing as e:
        # the caller did nothing wrong, but the answer would be a guess: refuse and tell the operators once
        await svc.alerts.add_alert(kind="config", city="", call_id=f"legal_aid_standards:{e.year}:missing",
                                   topic="legal_aid_standards", severity="high", detail=str(e))
        return json_error(409, str(e))
    return ok(dataclasses.asdict(result) | {"rules_version": svc.legal_aid_rules.version})


@routes.get("/api/legal-aid/centers")
@op("centers", "legal-aid centers", tag="legal-aid", query=CentersQuery, ok=list[Center])
async def list_centers(request):
    city = request.query.get("city")
    return ok([center_view(c) for c in services(request).centers.by_id.values() if not city or c.city == city])


@routes.get("/api/legal-aid/centers/{center_id}/slots")
@op("center_slots", "a center's slots on a day", tag="legal-aid", errors=("400",), query=SlotsQuery,
    ok=list[Slot])
async def center_slots(request):
    svc = services(request)
    c = _center(request, request.match_info["center_id"])
    day = parse_date(request.query.get("date", ""))
    taken = await svc.appointments.taken(c.id, day.isoformat())
    return ok([{"slot": t, "free": c.capacity - taken.get(t, 0)}
               for t in slot_times(c, day, svc.cfg.schedules.get(c.city))])


@routes.post("/api/appointments")
@op("book", "book a legal-aid appointment (queues the SMS confirmation)", tag="legal-aid", status=201,
    errors=("400", "403", "409"), body=Booking, ok=Appointment)
async def book(request):
    return await _book(request, home_visit=False)


async def _book(request, home_visit: bool) -> web.Response:
    """An office slot, or a home visit (上门服务: one of the center's visiting teams, the applicant's
    address, and why they qualify); both take a seat under the same unique constraint."""
    p, svc = me(request), services(request)
    cfg, tz = svc.cfg, ZoneInfo(svc.cfg.routing.timezone)
    body = await read_body(request)
    c = _center(request, body.get("center", ""))
    kind, address, reason = "office", "", ""
    if home_visit:
        kind, address = "home_visit", body.get("address")
        if not isinstance(address, str) or not 4 <= len(address.strip()) <= 300:
            return json_error(400, "address must be the applicant's address (4 to 300 characters)")
        age, grade = body.get("age"), body.get("disability_grade")
        for name, v, top in (("age", age, 130), ("disability_grade", grade, 4)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= top):
                return json_error(400, f"{name} must be a whole number from 0 to {top}")
        try:
            reason = home_visit_reason(age, grade)
        except BookingError as e:
            return json_error(400, str(e))
    day, slot = parse_date(body.get("date", "")), body.get("slot")
    number, lang = body.get("caller_number"), body.get("language", "zh")
    # ASCII digits (str.isdigit() also took "١٣٨…" and "²³": an SMS to no dialable number)
    if not isinstance(number, str) or not PHONE.fullmatch(number) or not 5 <= len(number) <= 20:
        return json_error(400, "caller_number must be a phone number (digits)")
    if not isinstance(lang, str) or lang not in {lg.code for lg in cfg.ivr.languages}:   # list: a 500
        return json_error(400, f"language must be one of {', '.join(l.code for l in cfg.ivr.languages)}")
    try:
        check_booking_time(c, day, str(slot), cfg.schedules.get(c.city), datetime.now(tz).date(), kind=kind)
    except BookingError as e:
        return json_error(400, str(e))
    ticket_id = body.get("ticket_id")
    if ticket_id is not None:
        # true is no ticket id, and an id past the INTEGER range was a 500 (the driver refused it)
        t = await svc.tickets.get(ticket_id) if isinstance(ticket_id, int) and not isinstance(ticket_id, bool) \
            and 0 < ticket_id <= ID_MAX else None
        if t is None:
            return json_error(400, "ticket_id must be the id of an existing ticket")
        if not access.may_handle_call(p, t["agent"], t["city"]):
            await refuse(request, "book", t["call_id"] or "", str(ticket_id), "not your ticket")
    elif p.role == "agent":
        return json_error(400, "an agent books for a ticket: give ticket_id")
    remind_at = datetime.combine(day, time(18, 0), tz) - timedelta(days=1)
    no_sms = may_text(number, cfg)    # the seat is booked all the same; the caller is told on the phone

    def messages(code):
        if no_sms:
            return []
        out = [("appointment_confirmation",
                message(svc.centers, "home_visit_confirmation" if home_visit else "confirmation", lang, c,
                        day.isoformat(), slot, code, address or None), None)]
        if remind_at > datetime.now(tz):
            out.append(("appointment_reminder", message(svc.centers, "reminder", lang, c, day.isoformat(), slot, code),
                        remind_at))
        return out
    try:
        a = await svc.appointments.book(center_id=c.id, city=c.city, day=day.isoformat(), slot=slot,
                                        capacity=c.home_visits.capacity if home_visit else c.capacity,
                                        caller_number=number, language=lang, ticket_id=ticket_id,
                                        booked_by=p.user_id, messages=messages, kind=kind, address=address,
                                        reason=reason)
    except SlotFull as e:
        return json_error(409, f"{e}; choose another slot")
    await audit(request, "book_home_visit" if home_visit else "book", "", f"appointment:{a['id']}",
                f"{c.id} {a['day']} {a['slot']}" + (f" ({reason})" if reason else "")
                + (f"; no SMS: {no_sms}" if no_sms else ""))
    return ok(a, status=201)


class HomeVisitBooking(Booking):
    slot: str = Field(description="HH:MM, one of the center's home-visit slots that day")
    address: str = Field(min_length=4, max_length=300, description="the applicant's address (where the team goes)")
    age: int | None = Field(None, ge=0, le=130, description="80 or over qualifies")
    disability_grade: int | None = Field(None, ge=0, le=4, description="残疾等级: 1 or 2 (severe) qualifies")


@routes.get("/api/legal-aid/centers/{center_id}/home-visit-slots")
@op("center_home_visit_slots", "a center's home-visit (上门服务) slots on a day", tag="legal-aid", errors=("400",),
    query=SlotsQuery, ok=list[Slot])
async def center_home_visit_slots(request):
    svc = services(request)
    c = _center(request, request.match_info["center_id"])
    day = parse_date(request.query.get("date", ""))
    if c.home_visits is None:
        return json_error(400, f"{c.id} does not make home visits")
    taken = await svc.appointments.taken(c.id, day.isoformat(), kind="home_visit")
    return ok([{"slot": t, "free": c.home_visits.capacity - taken.get(t, 0)}
               for t in slot_times(c.home_visits, day, svc.cfg.schedules.get(c.city))])


@routes.post("/api/home-visits")
@op("book_home_visit", "book a home visit (上门服务) for an applicant aged 80+ or with a severe disability",
    tag="legal-aid", status=201, errors=("400", "403", "409"), body=HomeVisitBooking, ok=Appointment)
async def book_home_visit(request):
    return await _book(request, home_visit=True)


@routes.post("/api/appointments/{appointment_id}/cancel")
@op("cancel_appointment", "cancel (frees the seat, queues the SMS)", tag="legal-aid",
    errors=("400", "403", "404", "409"), ok=Appointment)
async def cancel_appointment(request):
    svc = services(request)
    try:
        aid = int(request.match_info["appointment_id"])
    except ValueError:
        return json_error(400, "appointment id must be a number")
    a = await svc.appointments.get(aid) if 0 < aid <= ID_MAX else None   # out of range: was a 500
    if a is None:
        return json_error(404, "no such appointment")
    p = me(request)
    if not (access.sees_city(p, a["city"]) or a["booked_by"] == p.user_id):
        await refuse(request, "cancel_appointment", target=f"appointment:{aid}", why="not your city's appointment")
    c = svc.centers.by_id.get(a["center_id"])
    done = await svc.appointments.cancel(aid, lambda row: message(svc.centers, "cancellation", row.language, c,
                                                                  row.day, row.slot, row.code))
    if done is None:
        return json_error(409, "the appointment is not booked (already cancelled)")
    await audit(request, "cancel_appointment", "", f"appointment:{aid}")
    return ok(done)


@routes.get("/api/appointments")
@op("appointments", "appointments", tag="legal-aid", errors=("403",), query=AppointmentsQuery, ok=list[Appointment])
async def appointments(request):
    p, q = me(request), request.query
    city = q.get("city") or None
    if city and not access.sees_city(p, city):
        await refuse(request, "view_appointments", target=city, why=f"{city} is outside your cities")
    rows = await services(request).appointments.search(
        city=city, center_id=q.get("center") or None, day=q.get("date") or None,
        caller=q.get("caller") or None, status=q.get("status") or None)
    return ok([a for a in rows if access.sees_city(p, a["city"]) or a["booked_by"] == p.user_id])


@routes.get("/api/outbox")
@op("outbox", "messages to send (SMS, partner deliveries)", tag="legal-aid", errors=("403",), query=OutboxQuery,
    ok=list[OutboxMessage])
async def outbox(request):
    if not me(request).all_cities:
        await refuse(request, "view_outbox", why="the outbox is for the command center")
    return ok(await services(request).appointments.outbox(status=request.query.get("status") or None,
                                                          related=request.query.get("related") or None))
