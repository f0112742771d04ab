"""Texts to callers (channel "sms" of the outbox): queued by whoever has something to say
(appointments, complaint replies, the knowledge base), claimed and sent over SMPP by interop/sms.py,
each submitted part kept with the SMSC's message id so that a delivery receipt finds its text.

States: pending (queued, or waiting for sending hours / a retry) -> sending (claimed, leased) ->
submitted (every part acknowledged) -> delivered | failed (why in last_error); dead after too many
attempts (`hotline sms retry`); cancelled (opted out, or the appointment was cancelled)."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from store.engine import Database, row_to_dict, utcnow
from store.followups import opted_out
from store.models import ID_MAX, Appointment, Complaint, OutboxMessage, SmsPart, Ticket

FINAL = ("delivered", "failed", "dead", "cancelled")


def text_row(*, to_number: str, body: str, kind: str, language: str = "zh", related: str = "",
             not_before: datetime | None = None) -> OutboxMessage:
    """An outbox row for one text, to add in the caller's own transaction (same as the change it reports)."""
    now = utcnow()
    return OutboxMessage(channel="sms", kind=kind[:24], to_number=to_number, language=language, body=body,
                         related=related, status="pending", not_before=not_before or now, created_at=now,
                         updated_at=now, attempts=0, last_error="", worker="")


class SmsStore:
    def __init__(self, db: Database):
        self.session = db.session

    async def queue(self, *, to_number: str, body: str, kind: str, language: str = "zh", related: str = "",
                    not_before: datetime | None = None) -> dict:
        """Queue one text (e.g. the knowledge base's "send this summary to the caller"); the caller
        checks the number first with core.numbering.may_text. Returns the outbox row."""
        async with self.session.begin() as s:
            m = text_row(to_number=to_number, body=body, kind=kind, language=language, related=related,
                         not_before=not_before)
            s.add(m)
            await s.flush()
            return row_to_dict(m)

    # ---- the delivery worker's side
    async def claim(self, worker: str, lease_seconds: float, *, kinds: list[str] | None = None,
                    limit: int = 20) -> list[dict]:
        """Due texts, oldest first, leased to ``worker``; ``kinds`` limits them (quiet hours). A text
        to a number that opted out is cancelled here, never sent."""
        now = utcnow()
        due = and_(OutboxMessage.channel == "sms",
                   or_(and_(OutboxMessage.status == "pending", OutboxMessage.not_before <= now),
                       and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now)))
        if kinds is not None:
            due = and_(due, OutboxMessage.kind.in_(kinds))
        out = []
        async with self.session.begin() as s:
            rows = (await s.execute(select(OutboxMessage.id, OutboxMessage.to_number).where(due)
                                    .order_by(OutboxMessage.not_before, OutboxMessage.id).limit(limit)
                                    .with_for_update(skip_locked=True))).all()
            for mid, number in rows:
                # conditional on still being due: two workers racing (SQLite has no row locks) take it once
                if await opted_out(s, number):
                    await s.execute(update(OutboxMessage).where(OutboxMessage.id == mid, due).values(
                        status="cancelled", last_error="the caller opted out of messages", updated_at=now))
                    continue
                res = await s.execute(update(OutboxMessage).where(OutboxMessage.id == mid, due).values(
                    status="sending", worker=worker, lease_until=now + timedelta(seconds=lease_seconds),
                    attempts=OutboxMessage.attempts + 1, updated_at=now))
                if res.rowcount == 1:
                    out.append(mid)
            if out:
                got = (await s.execute(select(OutboxMessage).where(OutboxMessage.id.in_(out)))).scalars().all()
                return [row_to_dict(m) for m in sorted(got, key=lambda m: (m.not_before, m.id))]
        return []

    async def sent_parts(self, message_id: int) -> set[int]:
        """Parts the SMSC already acknowledged: after a lost link only the others are sent again."""
        async with self.session() as s:
            return set((await s.execute(select(SmsPart.part).where(SmsPart.message_id == message_id))).scalars())

    async def part_submitted(self, message_id: int, part: int, parts: int, smsc_id: str) -> bool:
        """Keep an acknowledged part; False if that part is already kept (a worker whose lease ran out
        sent it too: the text belongs to the other one now)."""
        try:
            async with self.session.begin() as s:
                s.add(SmsPart(message_id=message_id, part=part, parts=parts, smsc_id=smsc_id[:65],
                              status="submitted", receipt="", error="", submitted_at=utcnow()))
            return True
        except IntegrityError:      # unique (message_id, part)
            return False

    async def submitted(self, message_id: int, worker: str) -> bool:
        """Every part acknowledged: the text waits for its receipts (which may already be in)."""
        async with self.session.begin() as s:
            m = await s.get(OutboxMessage, message_id, with_for_update=True)
            if m is None or m.worker != worker or m.status != "sending":
                return False
            m.status, m.lease_until, m.updated_at, m.last_error = "submitted", None, utcnow(), ""
            await _conclude(s, m)
            return True

    async def settle(self, message_id: int, worker: str, *, status: str, error: str = "",
                     retry_at: datetime | None = None, count_attempt: bool = True) -> bool:
        """End a sending attempt: pending again at ``retry_at`` (``count_attempt`` False: the SMSC
        only asked us to slow down), failed, dead or cancelled. Only the worker holding it may."""
        now = utcnow()
        async with self.session.begin() as s:
            m = await s.get(OutboxMessage, message_id, with_for_update=True)
            if m is None or m.worker != worker or m.status != "sending":
                return False
            m.status, m.last_error, m.updated_at, m.lease_until = status, error[:2000], now, None
            if status == "pending":
                m.not_before = retry_at or now
                if not count_attempt:
                    m.attempts = max(0, m.attempts - 1)
            return True

    async def receipt(self, smsc_id: str, stat: str, err: str) -> dict | None:
        """A delivery receipt: its part takes the receipt's state; once every part of the text has one
        the text is delivered (all DELIVRD) or failed (why). None when no part has this id."""
        now = utcnow()
        async with self.session.begin() as s:
            p = (await s.execute(select(SmsPart).where(SmsPart.smsc_id == smsc_id).order_by(SmsPart.id.desc())
                                 .limit(1))).scalar_one_or_none()
            if p is None:
                return None
            p.receipt, p.error, p.done_at = stat[:16], err[:16], now
            p.status = "delivered" if stat == "DELIVRD" else ("submitted" if stat in ("ACCEPTD", "ENROUTE")
                                                             else "failed")
            await s.flush()
            m = await s.get(OutboxMessage, p.message_id, with_for_update=True)
            if m is not None and m.status == "submitted":
                await _conclude(s, m)
            return row_to_dict(m) if m is not None else None

    # ---- reading and operating
    async def get(self, message_id: int) -> dict | None:
        async with self.session() as s:
            m = await s.get(OutboxMessage, message_id)
            if m is None or m.channel != "sms":
                return None
            out = row_to_dict(m)
            out["parts"] = [row_to_dict(p) for p in (await s.execute(
                select(SmsPart).where(SmsPart.message_id == m.id).order_by(SmsPart.part))).scalars()]
            return out

    async def messages(self, *, status: str | None = None, related: list[str] | None = None,
                       limit: int = 200) -> list[dict]:
        q = select(OutboxMessage).where(OutboxMessage.channel == "sms").order_by(OutboxMessage.id).limit(limit)
        if status:
            q = q.where(OutboxMessage.status == status)
        if related is not None:
            q = q.where(OutboxMessage.related.in_(related))
        async with self.session() as s:
            return [row_to_dict(m) for m in (await s.execute(q)).scalars().all()]

    async def for_ticket(self, ticket_id: int) -> list[dict]:
        """The texts about one ticket: its own, and those of the appointments booked on it."""
        async with self.session() as s:
            appts = (await s.execute(select(Appointment.id).where(Appointment.ticket_id == ticket_id))).scalars().all()
        return await self.messages(related=[f"ticket:{ticket_id}", *(f"appointment:{a}" for a in appts)], limit=500)

    async def counts(self, since: datetime | None = None) -> dict[str, int]:
        """Texts by state (statistics, /metrics), of those queued since ``since`` if given."""
        q = select(OutboxMessage.status, func.count()).where(OutboxMessage.channel == "sms")
        if since is not None:
            q = q.where(OutboxMessage.created_at >= since)
        async with self.session() as s:
            return {status: n for status, n in (await s.execute(q.group_by(OutboxMessage.status))).all()}

    async def counts_by_kind(self, since: datetime | None = None) -> dict[str, dict[str, int]]:
        """{kind: {status: n}}: which texts reach callers (confirmations, reminders, replies, ...)."""
        q = select(OutboxMessage.kind, OutboxMessage.status, func.count()).where(OutboxMessage.channel == "sms")
        if since is not None:
            q = q.where(OutboxMessage.created_at >= since)
        out: dict[str, dict[str, int]] = {}
        async with self.session() as s:
            for kind, status, n in (await s.execute(q.group_by(OutboxMessage.kind, OutboxMessage.status))).all():
                out.setdefault(kind, {})[status] = n
        return out

    async def city_of(self, related: str) -> str:
        """The city a text is about (its appointment's, ticket's or complaint's), '' if none."""
        kind, _, ref = related.partition(":")
        model = {"appointment": Appointment, "ticket": Ticket, "complaint": Complaint}.get(kind)
        if model is None or not ref.isdigit() or not 0 < int(ref) <= ID_MAX:
            return ""
        async with self.session() as s:
            return (await s.execute(select(model.city).where(model.id == int(ref)))).scalar_one_or_none() or ""

    async def requeue(self, message_id: int) -> dict | None:
        """Operator: send a dead letter (or a failed text) again, from scratch."""
        async with self.session.begin() as s:
            m = await s.get(OutboxMessage, message_id, with_for_update=True)
            if m is None or m.channel != "sms" or m.status not in ("dead", "failed"):
                return None
            await s.execute(SmsPart.__table__.delete().where(SmsPart.message_id == m.id))
            m.status, m.not_before, m.updated_at, m.last_error, m.attempts = "pending", utcnow(), utcnow(), "", 0
            return row_to_dict(m)


async def _conclude(s, m: OutboxMessage) -> None:
    """A submitted text whose parts all have a final receipt is delivered or failed."""
    parts = (await s.execute(select(SmsPart).where(SmsPart.message_id == m.id))).scalars().all()
    if not parts or len(parts) < parts[0].parts or any(p.status == "submitted" for p in parts):
        return
    bad = [p for p in sorted(parts, key=lambda p: p.part) if p.status != "delivered"]
    now = utcnow()
    if bad:
        m.status = "failed"
        m.last_error = "; ".join(f"part {p.part}/{p.parts}: {p.receipt} (err {p.error})" for p in bad)[:2000]
    else:
        m.status, m.delivered_at = "delivered", now
    m.updated_at = now

