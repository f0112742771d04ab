"""Texts to callers (SMS over SMPP, interop/sms.py): the command center's list, figures and the
retry of a dead letter or a failed text. A ticket's own texts: GET /api/tickets/{id}/messages."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from aiohttp import web
from pydantic import BaseModel, Field

from dashboard.common import audit, by_id, json_error, limit, me, ok, refuse, services
from dashboard.schemas import OutboxMessage, Unset, WholeNumber, one_of_or_empty
from dashboard.spec import op
from store.sms import SmsStore

routes = web.RouteTableDef()
STATES = ("pending", "sending", "submitted", "delivered", "failed", "dead", "cancelled")


class MessagesQuery(BaseModel):
    status: one_of_or_empty(STATES) = Unset
    limit: WholeNumber = Field(None, description="1 to 1000, default 200")


class StatsQuery(BaseModel):
    days: WholeNumber = Field(None, description="texts queued in the last this many days (1 to 3660, default 30)")


class SmsStats(BaseModel):
    since: str
    by_status: dict[str, int]
    by_kind: dict[str, dict[str, int]] = Field(description="kind (appointment_reminder, ...) -> status -> count")
    queued: int
    delivered_share: float | None = Field(description="delivered / (delivered + failed + dead); none before any")


async def _command_center(request, action: str) -> None:
    if not me(request).all_cities:
        await refuse(request, action, why="texts to callers are the command center's to operate")


@routes.get("/api/messages")
@op("messages", "texts to callers and their delivery state", tag="messages", errors=("400", "403"),
    query=MessagesQuery, ok=list[OutboxMessage])
async def messages(request):
    await _command_center(request, "view_messages")
    status = request.query.get("status") or None
    if status and status not in STATES:
        return json_error(400, f"status must be one of {', '.join(STATES)}")
    return ok(await SmsStore(services(request).db).messages(status=status, limit=limit(request, 200, 1000)))


@routes.get("/api/messages/stats")
@op("message_stats", "texts by delivery state", tag="messages", errors=("400", "403"), query=StatsQuery,
    ok=SmsStats)
async def message_stats(request):
    await _command_center(request, "view_messages")
    try:
        days = int(request.query.get("days", "30"))
    except ValueError:
        return json_error(400, "days must be a whole number")
    if not 1 <= days <= 3660:
        return json_error(400, "days must be 1 to 3660")
    since = datetime.now(timezone.utc) - timedelta(days=days)
    store = SmsStore(services(request).db)
    counts = await store.counts(since)
    settled = sum(counts.get(k, 0) for k in ("delivered", "failed", "dead"))
    return ok({"since": since.isoformat(), "by_status": counts, "by_kind": await store.counts_by_kind(since),
               "queued": sum(counts.values()),
               "delivered_share": round(counts.get("delivered", 0) / settled, 4) if settled else None})


@routes.post("/api/messages/{message_id}/retry")
@op("retry_message", "send a dead letter or failed text again", tag="messages", errors=("400", "403", "404", "409"),
    ok=OutboxMessage, description="409 unless the text is dead or failed.")
async def retry_message(request):
    await _command_center(request, "retry_message")
    store = SmsStore(services(request).db)
    m = await by_id(request, "message_id", "text", store.get)
    again = await store.requeue(m["id"])
    if again is None:
        return json_error(409, f"the text is {m['status']}: only a dead or failed text is sent again")
    await audit(request, "message_retry", "", str(m["id"]), m["kind"])
    return ok(again)
