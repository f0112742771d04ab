"""Complaints and petitions (服务投诉, 信访): filing, the supervisors' list, assign, reply, close."""
from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field

from backoffice.tickets import (COMPLAINT_KINDS, COMPLAINT_SOURCES, COMPLAINT_STATUSES, TEXT_MAX, TicketError,
                                check_complaint_intake, check_complaint_move)
from core import access
from core.numbering import may_text
from dashboard.common import AUTH, audit, by_id, json_error, me, ok, refuse, services
from dashboard.common import body as read_body
from dashboard.schemas import Complaint, CityId, Empty, Short, Strict, Unset, Vocab, one_of, one_of_or_empty
from dashboard.spec import Op, op, operations

routes = web.RouteTableDef()


class Intake(Strict):
    kind: one_of(COMPLAINT_KINDS) = "service"
    source: one_of(COMPLAINT_SOURCES) = "api"
    city: CityId
    complainant_number: str = Field(None, pattern=r"^(\+?[0-9]{1,19}|)$", max_length=20)
    complainant_name: Short = Unset
    language: str = Field(None, max_length=8)
    call_id: str | None = Field(None, max_length=64)
    about_agent: Short = Unset
    description: str = Field(min_length=1, max_length=TEXT_MAX, pattern=r"\S")


class ComplaintsQuery(BaseModel):
    status: one_of_or_empty(COMPLAINT_STATUSES) = Unset
    city: str = Unset
    assigned_to: str = Unset
    caller: str = Field(None, description="one complainant's complaints, in any form of the number "
                                          "(13800000000, +8613800000000, ...)")
    overdue: str = Field(None, description="1: only those past their reply date")


class Assign(BaseModel):
    to: Annotated[str, Vocab("supervisors")] = Field(
        description="a supervisor of the complaint's city, or the command center")


class Reply(BaseModel):
    reply: str = Field(pattern=r"\S")


def _doc(action: str, summary: str, body: type[BaseModel]) -> Op:
    return Op(f"complaint_{action}", summary, tag="complaints", body=body, errors=("400", "403", "404", "409"),
              ok=Complaint, body_required=action != "close")


async def complaint_row(request) -> dict:
    p = me(request)
    if p.role == "agent":   # a complaint may be about the agent reading it
        await refuse(request, "view_complaint", why="complaints are handled by supervisors")
    c = await by_id(request, "complaint_id", "complaint", services(request).complaints.get)
    if not access.sees_city(p, c["city"]):
        await refuse(request, "view_complaint", target=f"complaint:{c['id']}", why="outside your cities")
    return c


@routes.post("/api/complaints")
@op("file_complaint", "file a complaint or petition (服务投诉, 信访)", tag="complaints", status=201,
    errors=("400", "403"), body=Intake, ok=Complaint)
async def file_complaint(request):
    p, svc = me(request), services(request)
    try:
        fields = check_complaint_intake(await read_body(request), svc.city_ids)
    except TicketError as e:
        return json_error(400, str(e))
    if p.role == "supervisor" and not access.sees_city(p, fields["city"]):
        await refuse(request, "file_complaint", target=fields["city"], why=f"{fields['city']} is outside your cities")
    c = await svc.complaints.add(fields, p.user_id, svc.ticket_rules.complaints.reply_due_days)
    await audit(request, "file_complaint", fields["call_id"] or "", f"complaint:{c['id']}", fields["kind"])
    return ok(c, status=201)


@routes.get("/api/complaints")
@op("complaints", "complaints, newest first", tag="complaints", errors=("400", "403"), query=ComplaintsQuery,
    ok=list[Complaint])
async def complaints(request):
    p, q = me(request), request.query
    if p.role == "agent":
        await refuse(request, "view_complaints", why="complaints are handled by supervisors")
    status = q.get("status") or None
    if status and status not in COMPLAINT_STATUSES:
        return json_error(400, f"status must be one of {', '.join(COMPLAINT_STATUSES)}")
    rows = await services(request).complaints.search(city=q.get("city") or None, status=status,
                                                     assigned_to=q.get("assigned_to") or None,
                                                     caller=q.get("caller") or None,
                                                     overdue=q.get("overdue") == "1")
    return ok([c for c in rows if access.sees_city(p, c["city"])])


@routes.get("/api/complaints/{complaint_id}")
@op("complaint", "one complaint", tag="complaints", errors=("400", "403", "404"), ok=Complaint)
async def complaint(request):
    return ok(await complaint_row(request))


@routes.post("/api/complaints/{complaint_id}/{action}")
@operations({"assign": _doc("assign", "assign to a supervisor of its city or the command center", Assign),
             "reply": _doc("reply", "reply to the complainant (queues the SMS)", Reply),
             "close": _doc("close", "close a replied complaint", Empty)})
async def complaint_action(request):
    c, svc = await complaint_row(request), services(request)
    action = request.match_info["action"]
    body = await read_body(request)
    changes, message_fn = {}, None
    try:
        if action == "assign":
            to = body.get("to")
            assignee = request.app[AUTH].users.get(to) if isinstance(to, str) else None
            if assignee is None or assignee.role == "agent" or not access.sees_city(assignee, c["city"]):
                return json_error(400, f"assign to a supervisor of {c['city']} or the command center")
            check_complaint_move(c["status"], "assigned")
            changes = {"status": "assigned", "assigned_to": to}
        elif action == "reply":
            reply = body.get("reply")
            check_complaint_move(c["status"], "replied", reply)
            changes = {"status": "replied", "reply": reply}
            texts = svc.ticket_rules.complaints.reply_text

            def message_fn(row):
                template = texts.get(row.language) or texts["zh"]
                return template.format(date=row.created_at.date().isoformat(), ref=row.ref, reply=reply)
        elif action == "close":
            check_complaint_move(c["status"], "closed")
            changes = {"status": "closed"}
        else:
            return json_error(404, f"unknown complaint action {action!r} (assign, reply, close)")
    except TicketError as e:
        return json_error(409, str(e)) if "can move" in str(e) else json_error(400, str(e))
    # no SMS to a number outside the numbering plan (premium, foreign); the reply is kept all the same
    if message_fn and may_text(c["complainant_number"], svc.cfg):
        message_fn = None
    new = await svc.complaints.move(c["id"], c["status"], changes, message_fn)
    if new is None:
        return json_error(409, "the complaint changed meanwhile; reload it")
    await audit(request, f"complaint_{action}", c["call_id"] or "", f"complaint:{c['id']}",
                changes.get("assigned_to", ""))
    return ok(new)
