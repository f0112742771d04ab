"""Tickets: one per call (or opened by hand), moved by the desks with conditional status changes,
escalated past their deadline; closing one that wants a follow-up schedules the visit."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from core.calls import CallState
from core.routing import identifies_caller
from store.engine import Database, change_row, fit, row_to_dict, same_caller, utcnow
from store.followups import opted_out
from store.models import FollowUp, Ticket

ticket_to_dict = row_to_dict


class TicketStore:
    """Tickets, on the same engine as the call records. ``effects`` are async (session, ticket, kind)
    callables run inside every ticket's creation ("created"), change ("updated") and escalation
    ("escalated"): the messages those cause commit with them (interop.effects)."""

    def __init__(self, db: Database, effects: list | None = None):
        self.session = db.session
        self.effects = list(effects or [])

    async def _effects(self, s, t: Ticket, kind: str) -> None:
        for effect in self.effects:
            await effect(s, t, kind)

    async def ensure_for_call(self, call: CallState, source: str, deadline_hours: float) -> int | None:
        """One ticket per call, whatever the retries: its id when it was created now, else None."""
        try:
            async with self.session.begin() as s:
                if (await s.execute(select(Ticket.id).where(Ticket.call_id == call.call_id))).first():
                    return None
                now = utcnow()
                t = Ticket()
                fit(t, call_id=call.call_id, source=source, city=call.city, caller_number=call.caller_number,
                    language=call.language, agent=call.agent, green=call.green, category="", summary="",
                    answer="", outcome="", follow_up=False, status="open",
                    due_at=now + timedelta(hours=deadline_hours), created_at=now, updated_at=now)
                s.add(t)
                await s.flush()
                await self._effects(s, t, "created")
            return t.id
        except IntegrityError:      # created concurrently (a second controller): fine, it exists
            return None

    async def follow_agent(self, call: CallState) -> None:
        """After a transfer the ticket belongs to the agent who has the caller now."""
        async with self.session.begin() as s:
            await s.execute(update(Ticket).where(Ticket.call_id == call.call_id, Ticket.status != "closed")
                            .values(agent=call.agent, updated_at=utcnow()))

    async def get(self, ticket_id: int) -> dict | None:
        async with self.session() as s:
            t = await s.get(Ticket, ticket_id)
            return ticket_to_dict(t) if t else None

    async def for_call(self, call_id: str) -> dict | None:
        async with self.session() as s:
            t = (await s.execute(select(Ticket).where(Ticket.call_id == call_id))).scalar_one_or_none()
            return ticket_to_dict(t) if t else None

    async def search(self, *, status: str | None = None, city: str | None = None, caller: str | None = None,
                     agent: str | None = None, overdue: bool = False, limit: int = 100, alias: str = "") -> list[dict]:
        q = select(Ticket).order_by(Ticket.id.desc()).limit(limit)
        if status:
            q = q.where(Ticket.status == status)
        if city:
            q = q.where(Ticket.city == city)
        if caller:
            q = q.where(same_caller(Ticket.caller_number, caller, alias))
        if agent:
            q = q.where(Ticket.agent == agent)
        if overdue:
            q = q.where(Ticket.escalated_at.is_not(None), Ticket.status.in_(("open", "in_progress")))
        async with self.session() as s:
            return [ticket_to_dict(t) for t in (await s.execute(q)).scalars().all()]

    async def caller_tickets(self, number: str, limit: int = 20, alias: str = "") -> list[dict]:
        """This caller's tickets, newest first (the screen-pop); none for an empty or withheld number,
        whose tickets are other people's (``search(caller="")`` would be every ticket). ``alias``, the
        number's pseudonym, also finds those past their retention period."""
        if not identifies_caller(number):
            return []
        return await self.search(caller=number, limit=limit, alias=alias)

    async def update(self, ticket_id: int, changes: dict, expect_status: str | None = None,
                     follow_up_after: timedelta | None = None) -> dict | None:
        """Apply validated changes; with ``expect_status`` only if the status is still that one
        (two desks moving the same ticket: the second gets None and a 409). Closing a ticket that
        wants a follow-up schedules the visit in the same transaction (unless the number opted out)."""
        async with self.session.begin() as s:
            t = await change_row(s, Ticket, ticket_id, expect_status, changes)
            if t is None:
                return None
            if changes.get("status") == "closed":
                t.closed_at = t.updated_at
                if t.follow_up and follow_up_after is not None and t.caller_number \
                        and not await opted_out(s, t.caller_number):
                    s.add(FollowUp(ticket_id=t.id, caller_number=t.caller_number, language=t.language or "zh",
                                   city=t.city, agent=t.agent, status="pending", attempts=0,
                                   next_at=t.updated_at + follow_up_after, callback_requested=False, result="",
                                   created_at=t.updated_at, updated_at=t.updated_at))
            await self._effects(s, t, "updated")
            return ticket_to_dict(t)

    async def escalate_overdue(self) -> list[dict]:
        """Tickets past their deadline and still open: marked once, returned for the alerts."""
        now = utcnow()
        async with self.session.begin() as s:
            rows = (await s.execute(select(Ticket).where(
                Ticket.due_at < now, Ticket.escalated_at.is_(None),
                Ticket.status.in_(("open", "in_progress"))).with_for_update())).scalars().all()
            for t in rows:
                t.escalated_at = now
                await self._effects(s, t, "escalated")
            return [ticket_to_dict(t) for t in rows]
