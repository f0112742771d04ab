"""Appointments at the legal-aid centers: a seat in a slot taken without double booking, the
confirmation, reminder and cancellation texts queued in the same transaction (the SMS outbox)."""
from __future__ import annotations

import secrets as pysecrets

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from store.engine import Database, row_to_dict, same_caller, utcnow
from store.models import Appointment, OutboxMessage
from store.sms import text_row


class SlotFull(Exception):
    """No free seat in that slot (or too many desks raced for the last ones)."""


class AppointmentStore:
    """Bookings and their messages, each change in one transaction with the messages it causes."""

    def __init__(self, db: Database):
        self.session = db.session

    async def taken(self, center_id: str, day: str, kind: str = "office") -> dict[str, int]:
        """slot -> seats booked, for one center and day (office seats, or home-visit teams)."""
        async with self.session() as s:
            rows = (await s.execute(select(Appointment.slot).where(
                Appointment.center_id == center_id, Appointment.day == day, Appointment.kind == kind,
                Appointment.seat.is_not(None)))).scalars().all()
        out: dict[str, int] = {}
        for slot in rows:
            out[slot] = out.get(slot, 0) + 1
        return out

    async def book(self, *, center_id: str, city: str, day: str, slot: str, capacity: int, caller_number: str,
                   language: str, ticket_id: int | None, booked_by: str, messages, kind: str = "office",
                   address: str = "", reason: str = "") -> dict:
        """Take a free seat of the slot, or raise SlotFull. ``messages(code)`` gives the
        outbox rows [(kind, body, not_before)] written in the same transaction as the booking.
        A home visit (kind "home_visit") takes one of the center's visiting teams the same way."""
        for _ in range(capacity + 3):
            async with self.session() as s:
                taken = set((await s.execute(select(Appointment.seat).where(
                    Appointment.center_id == center_id, Appointment.kind == kind, Appointment.day == day,
                    Appointment.slot == slot, Appointment.seat.is_not(None)))).scalars())
            free = [n for n in range(1, capacity + 1) if n not in taken]
            if not free:
                raise SlotFull(f"{center_id} {day} {slot} is fully booked")
            code = "A" + pysecrets.token_hex(4).upper()
            # a random free seat, not the lowest: racing desks then rarely pick the same one
            seat = free[0] if len(free) == 1 else free[pysecrets.randbelow(len(free))]
            try:
                async with self.session.begin() as s:
                    now = utcnow()
                    a = Appointment(code=code, center_id=center_id, city=city, day=day, slot=slot, seat=seat,
                                    caller_number=caller_number, language=language, ticket_id=ticket_id,
                                    booked_by=booked_by, status="booked", created_at=now, kind=kind,
                                    address=address, reason=reason)
                    s.add(a)
                    await s.flush()
                    for kind, body, not_before in messages(code):
                        s.add(text_row(to_number=caller_number, body=body, kind=kind, language=language,
                                       related=f"appointment:{a.id}", not_before=not_before or now))
                    return row_to_dict(a)
            except IntegrityError:
                continue    # someone took that seat a moment ago: look again
        raise SlotFull(f"{center_id} {day} {slot}: too much contention, try again")

    async def cancel(self, appointment_id: int, message) -> dict | None:
        """Free the seat, drop the pending reminder, queue the cancellation text; None if not booked."""
        async with self.session.begin() as s:
            a = await s.get(Appointment, appointment_id, with_for_update=True)
            if a is None or a.status != "booked":
                return None
            now = utcnow()
            a.status, a.seat, a.cancelled_at = "cancelled", None, now
            await s.execute(update(OutboxMessage).where(
                OutboxMessage.related == f"appointment:{a.id}", OutboxMessage.status == "pending",
                OutboxMessage.kind == "appointment_reminder").values(status="cancelled"))
            s.add(text_row(to_number=a.caller_number, body=message(a), kind="appointment_cancelled",
                           language=a.language, related=f"appointment:{a.id}", not_before=now))
            return row_to_dict(a)

    async def get(self, appointment_id: int) -> dict | None:
        async with self.session() as s:
            a = await s.get(Appointment, appointment_id)
            return row_to_dict(a) if a else None

    async def search(self, *, city: str | None = None, center_id: str | None = None, day: str | None = None,
                     caller: str | None = None, status: str | None = None, limit: int = 200) -> list[dict]:
        q = select(Appointment).order_by(Appointment.day, Appointment.slot, Appointment.id).limit(limit)
        for col, v in ((Appointment.city, city), (Appointment.center_id, center_id), (Appointment.day, day),
                       (Appointment.status, status)):
            if v:
                q = q.where(col == v)
        if caller:
            q = q.where(same_caller(Appointment.caller_number, caller))
        async with self.session() as s:
            return [row_to_dict(a) for a in (await s.execute(q)).scalars().all()]

    async def outbox(self, *, status: str | None = None, related: str | None = None, limit: int = 200) -> list[dict]:
        q = select(OutboxMessage).order_by(OutboxMessage.id).limit(limit)
        if status:
            q = q.where(OutboxMessage.status == status)
        if related:
            q = q.where(OutboxMessage.related == related)
        async with self.session() as s:
            return [row_to_dict(m) for m in (await s.execute(q)).scalars().all()]
