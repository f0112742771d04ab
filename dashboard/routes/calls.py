"""The live status board, call records, a call's history and notes, callback tasks."""
from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from core import access
from dashboard.common import audit, call_record, json_error, limit, me, ok, refuse, services, timestamp
from dashboard.common import body as read_body
from dashboard.schemas import (CALLBACK_STATUSES, NOTES_MAX, CallbackTask, CallRecord, Status, Ticket, Unset,
                               WholeNumber, one_of_or_empty)
from dashboard.spec import op

routes = web.RouteTableDef()


class CallsQuery(BaseModel):
    limit: WholeNumber = Field(None, description="1 to 500, default 50")
    city: str = Field(None, description="only this city's calls (any string; a city outside yours is refused)")


class History(BaseModel):
    call_id: str
    previous_calls: list[CallRecord]
    tickets: list[Ticket]


class Notes(BaseModel):
    notes: str = Field(max_length=NOTES_MAX)


class NotesSaved(BaseModel):
    call_id: str
    notes: str


class CallbacksQuery(BaseModel):
    status: one_of_or_empty(CALLBACK_STATUSES) = Unset


@routes.get("/api/status")
@op("status", "controller, Asterisk, queues, live calls and agents", tag="calls", errors=("403",), ok=Status)
async def status(request):
    p, svc = me(request), services(request)
    if p.role == "agent":
        await refuse(request, "view_status", why="the status board is for supervisors and the command center")
    st = svc.status()
    if not p.all_cities:
        st["calls_in_progress"] = [c for c in st["calls_in_progress"] if access.sees_city(p, c["city"])]
        st["agents"] = [a for a in st["agents"] if p.cities & svc.agent_cities.get(a["id"], set())]
    return ok(st)


@routes.get("/api/calls")
@op("calls", "recent call records, newest first", tag="calls", errors=("400", "403"), query=CallsQuery,
    ok=list[CallRecord])
async def calls(request):
    n = limit(request, 50, 500)
    p = me(request)
    city = request.query.get("city") or None
    if city and not access.sees_city(p, city):
        await refuse(request, "view_calls", target=city, why=f"{city} is outside your cities")
    rows = await services(request).call_records.recent_calls(n if p.all_cities else 500, city)
    return ok([r for r in rows if access.may_view_call(p, r["agent"], r["city"])][:n])


@routes.get("/api/calls/{call_id}")
@op("call", "one call record", tag="calls", errors=("403", "404"), ok=CallRecord)
async def call(request):
    return ok(await call_record(request))


@routes.get("/api/calls/{call_id}/history")
@op("call_history", "earlier calls from the same number, and tickets", tag="calls", errors=("403", "404"),
    ok=History)
async def call_history(request):
    """The screen-pop's memory: earlier calls from the same number, with their notes."""
    rec, p, svc = await call_record(request), me(request), services(request)
    # an empty or withheld number has no history: the stores give nothing for it (it was every ticket);
    # the call's own ticket is always there (the desk edits it)
    # rows past their retention period hold the number's pseudonym (store/privacy.py): still this caller's
    alias = svc.privacy.pseudonym(rec["caller_number"])
    tickets = await svc.tickets.caller_tickets(rec["caller_number"], limit=20, alias=alias)
    own = await svc.tickets.for_call(rec["call_id"])
    if own and all(t["id"] != own["id"] for t in tickets):
        tickets.insert(0, own)
    tickets = [t for t in tickets
               if t["call_id"] == rec["call_id"] or access.sees_city(p, t["city"]) or p.agent_id == t["agent"]]
    # earlier calls to other cities are not this desk's business (same rule as the tickets)
    previous = [c for c in await svc.call_records.caller_history(rec["caller_number"], rec["call_id"], alias=alias)
                if access.sees_city(p, c["city"]) or p.agent_id == c["agent"]]
    return ok({"call_id": rec["call_id"], "previous_calls": previous, "tickets": tickets})


@routes.put("/api/calls/{call_id}/notes")
@op("call_notes", "the desk's notes on a call (replaces them)", tag="calls", errors=("403", "404"), body=Notes,
    ok=NotesSaved)
async def notes(request):
    rec, svc = await call_record(request), services(request)
    if not access.may_handle_call(me(request), rec["agent"], rec["city"]):
        await refuse(request, "notes", rec["call_id"], why="not your call")
    text = (await read_body(request)).get("notes")
    if not isinstance(text, str) or len(text) > NOTES_MAX:
        return json_error(400, f"notes must be a string of at most {NOTES_MAX} characters")
    await svc.call_records.set_notes(rec["call_id"], text)
    await svc.index_document(kind="note", ref=rec["call_id"], call_id=rec["call_id"], city=rec["city"],
                             agent=rec["agent"], at=timestamp(rec["started_at"]), raw=text)
    await audit(request, "notes", rec["call_id"], detail=f"{len(text)} characters")
    return ok({"call_id": rec["call_id"], "notes": text})


@routes.get("/api/callbacks")
@op("callbacks", "callback tasks (voicemail, queue callback)", tag="calls", errors=("400", "403"),
    query=CallbacksQuery, ok=list[CallbackTask])
async def callbacks(request):
    status = request.query.get("status") or None
    if status and status not in CALLBACK_STATUSES:
        return json_error(400, "status must be pending, dialing, done, failed or cancelled")
    p = me(request)
    if p.role == "agent":
        await refuse(request, "view_callbacks", why="callback lists are for supervisors")
    return ok([c for c in await services(request).callback_tasks.callbacks(status) if access.sees_city(p, c["city"])])
