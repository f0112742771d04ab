"""Consultation tickets: search, one ticket (with its transcript status), classification and the
workflow (backoffice/tickets.py)."""
from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field

from backoffice.tickets import STATUSES, TEXT_MAX, TicketError, check_edit, check_transition
from core import access
from dashboard.common import (audit, call_record, json_error, limit, me, ok, refuse, services, ticket_row,
                              timestamp)
from dashboard.common import body as read_body
from dashboard.schemas import Strict, Ticket, TicketView, Unset, Vocab, WholeNumber, one_of, one_of_or_empty
from dashboard.schemas import OutboxMessage
from dashboard.spec import op
from store.sms import SmsStore

routes = web.RouteTableDef()


class TicketsQuery(BaseModel):
    status: one_of_or_empty(STATUSES) = Unset
    city: str = Unset
    caller: str = Unset
    agent: str = Unset
    overdue: str = Field(None, description="1: only escalated open ones")
    limit: WholeNumber = Field(None, description="1 to 500, default 100")


class Edit(Strict):
    category: Annotated[str, Vocab("categories")] = Unset
    outcome: Annotated[str, Vocab("outcomes")] = Unset
    summary: str = Field(None, max_length=TEXT_MAX)
    answer: str = Field(None, max_length=TEXT_MAX)
    follow_up: bool = Unset
    county: str = Field(None, pattern=r"^(5[01][0-9]{4})?$", description="the caller's county (division code)")


class Move(BaseModel):
    status: one_of(STATUSES)


async def with_transcript(request, t: dict) -> dict:
    """A ticket shows its call's transcript status and the categories its keywords suggest
    (the text itself is behind /transcript, which asks for a reason)."""
    tr = await services(request).transcripts.get(t["call_id"]) if t.get("call_id") else None
    t["transcript"] = ({"status": tr["status"], "reason": tr["reason"],
                        "suggested_categories": tr["suggested_categories"]} if tr else None)
    return t


@routes.get("/api/tickets")
@op("tickets", "consultation tickets, newest first", tag="tickets", errors=("400", "403"), query=TicketsQuery,
    ok=list[Ticket])
async def tickets(request):
    p, q = me(request), request.query
    status = q.get("status") or None
    if status and status not in STATUSES:
        return json_error(400, f"status must be one of {', '.join(STATUSES)}")
    city = q.get("city") or None
    if city and not access.sees_city(p, city):
        await refuse(request, "view_tickets", target=city, why=f"{city} is outside your cities")
    n, caller = limit(request, 100, 500), q.get("caller") or None
    # a caller's tickets past their retention period hold the number's pseudonym: both are theirs
    rows = await services(request).tickets.search(
        status=status, city=city, caller=caller, alias=services(request).privacy.pseudonym(caller or ""),
        agent=p.agent_id if p.role == "agent" else (q.get("agent") or None),
        overdue=q.get("overdue") == "1", limit=n if p.all_cities else 500)
    return ok([t for t in rows if access.may_view_call(p, t["agent"], t["city"])][:n])


@routes.get("/api/tickets/{ticket_id}")
@op("ticket", "one ticket, with its transcript status", tag="tickets", errors=("400", "403", "404"), ok=TicketView)
async def ticket(request):
    return ok(await with_transcript(request, await ticket_row(request)))


@routes.get("/api/tickets/{ticket_id}/messages")
@op("ticket_messages", "the texts sent to the caller about a ticket, with their delivery state", tag="tickets",
    errors=("400", "403", "404"), ok=list[OutboxMessage],
    description="Its own texts and those of appointments booked on it: pending, sending, submitted, delivered, "
                "failed (last_error says why), dead or cancelled (docs/messaging.md).")
async def ticket_messages(request):
    t = await ticket_row(request)
    return ok(await SmsStore(services(request).db).for_ticket(t["id"]))


@routes.get("/api/calls/{call_id}/ticket")
@op("call_ticket", "the consultation ticket of a call", tag="tickets", errors=("403", "404"), ok=TicketView)
async def ticket_for_call(request):
    rec = await call_record(request)
    t = await services(request).tickets.for_call(rec["call_id"])
    return ok(await with_transcript(request, t)) if t else json_error(404, "this call has no ticket (not answered)")


@routes.patch("/api/tickets/{ticket_id}")
@op("edit_ticket", "classify and write up a ticket", tag="tickets", errors=("403", "404", "409"), body=Edit,
    body_required=False, ok=Ticket)
async def edit_ticket(request):
    t, svc = await ticket_row(request), services(request)
    if t["status"] == "closed":
        return json_error(409, "the ticket is closed")
    try:
        changes = check_edit(await read_body(request), svc.ticket_rules)
    except TicketError as e:
        return json_error(400, str(e))
    new = await svc.tickets.update(t["id"], changes, expect_status=t["status"])
    if new is None:
        return json_error(409, "the ticket changed meanwhile; reload it")
    await audit(request, "ticket_edit", t["call_id"] or "", str(t["id"]), ",".join(sorted(changes)))
    await svc.index_document(kind="ticket", ref=str(new["id"]), call_id=new["call_id"] or "", city=new["city"],
                             agent=new["agent"], at=timestamp(new["created_at"]),
                             raw="\n".join(x for x in (new["summary"], new["answer"]) if x))
    return ok(new)


@routes.post("/api/tickets/{ticket_id}/status")
@op("ticket_status", "move a ticket along its workflow", tag="tickets", errors=("403", "404", "409"), body=Move,
    ok=Ticket, description="409 when the workflow does not allow the move (e.g. unclassified).")
async def ticket_status(request):
    t, svc = await ticket_row(request), services(request)
    body = await read_body(request)
    try:
        check_transition(t, body.get("status"))
    except TicketError as e:
        return json_error(409 if body.get("status") in STATUSES else 400, str(e))
    fu = svc.cfg.system.controller.follow_up
    new = await svc.tickets.update(t["id"], {"status": body["status"]}, expect_status=t["status"],
                                   follow_up_after=timedelta(minutes=fu.delay_minutes) if fu.enabled else None)
    if new is None:
        return json_error(409, "the ticket changed meanwhile; reload it")
    await audit(request, "ticket_status", t["call_id"] or "", str(t["id"]), f"{t['status']}>{body['status']}")
    return ok(new)
