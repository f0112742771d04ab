"""Async store over SQLAlchemy: SQLite (aiosqlite) by default, PostgreSQL (psycopg 3) by URL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from core.calls import CallState
from store.models import (AgentEvent, Appointment, AuditEntry, AuthToken, CallbackTask, CallRecord,
                                     Complaint, FollowUp, OptOut, OutboxMessage, Ticket, UserCredential)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def sync_url(url: str, root: Path) -> str:
    """Normalise a configured URL for the sync driver (Alembic); relative SQLite paths are under root."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and not path.startswith("/"):
            path = str((root / path).resolve())
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def async_url(url: str, root: Path) -> str:
    s = sync_url(url, root)
    return s.replace("sqlite:///", "sqlite+aiosqlite:///", 1) if s.startswith("sqlite:") else s


def migrate(url: str, root: Path) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url(url, root))
    command.upgrade(cfg, "head")


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, tz=timezone.utc) if ts else None


def _epoch(dt: datetime | None) -> float | None:
    if dt is None:
        return None
    if dt.tzinfo is None:  # SQLite hands back naive datetimes: they were stored as UTC
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


# what core/kpi.py reads of a call record: every query feeding the figures selects these
KPI_FACTS = (CallRecord.call_id, CallRecord.city, CallRecord.agent, CallRecord.status, CallRecord.outcome,
             CallRecord.green, CallRecord.started_at, CallRecord.queued_at, CallRecord.answered_at,
             CallRecord.ended_at, CallRecord.talk_seconds)


def row_to_dict(row) -> dict:
    """A table row as JSON-ready values: every timestamp as ISO 8601 in UTC."""
    out = {c.name: getattr(row, c.name) for c in row.__table__.columns}
    for k, v in out.items():
        if isinstance(v, datetime):
            out[k] = datetime.fromtimestamp(_epoch(v), tz=timezone.utc).isoformat()
    return out


record_to_dict = ticket_to_dict = row_to_dict


class Store:
    def __init__(self, url: str, root: Path):
        self.url = url
        self.engine: AsyncEngine = create_async_engine(async_url(url, root), pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            # WAL: readers (the API) never block the writer; NORMAL sync is durable across process
            # crashes (a power cut may lose the last transactions, not corrupt the file)
            @event.listens_for(self.engine.sync_engine, "connect")
            def _pragmas(dbapi_conn, _record):
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=5000")
                cur.close()
        self.session = async_sessionmaker(self.engine, expire_on_commit=False)
        self._upsert_call = _call_upsert(self.engine.dialect.name)

    async def close(self) -> None:
        await self.engine.dispose()

    async def save_call(self, call: CallState) -> None:
        await self.save_calls([call])

    async def save_calls(self, calls: list[CallState]) -> None:
        """Write the newest state of several calls in one statement (insert, or update all but the agent's
        notes): the record writer's batch under load, one round trip instead of a select and an update
        per call."""
        if not calls:
            return
        now = datetime.now(timezone.utc)
        rows = [_fitted(CallRecord, {
            "call_id": c.call_id, "channel": c.channel, "dialed_number": c.dialed_number,
            "caller_number": c.caller_number, "city": c.city, "area_code": c.area_code, "language": c.language,
            "ivr_path": c.ivr_path, "service": c.service, "queue": c.queue, "overflow": c.overflow,
            "green": c.green, "after_hours": c.after_hours, "agent": c.agent, "recording_path": c.recording,
            "transfers": c.transfers, "status": c.status, "outcome": c.outcome, "hangup_cause": c.hangup_cause,
            "hangup_cause_text": c.hangup_cause_text, "started_at": _dt(c.started_at),
            "queued_at": _dt(c.queued_at), "answered_at": _dt(c.answered_at), "ended_at": _dt(c.ended_at),
            "wait_seconds": c.wait_seconds, "talk_seconds": c.talk_seconds, "updated_at": now}) for c in calls]
        async with self.engine.begin() as conn:
            await conn.execute(self._upsert_call, [{**r, "notes": ""} for r in rows])

    async def missing_call_ids(self, call_ids: list[str]) -> list[str]:
        """Those of ``call_ids`` with no call record."""
        have: set[str] = set()
        async with self.session() as s:
            for i in range(0, len(call_ids), 500):
                chunk = call_ids[i:i + 500]
                have |= set((await s.execute(select(CallRecord.call_id).where(CallRecord.call_id.in_(chunk)))).scalars())
        return [c for c in call_ids if c not in have]

    async def unfinished_calls(self) -> list[CallState]:
        """Calls the store still believes are in progress (to merge with Asterisk after a restart)."""
        async with self.session() as s:
            rows = (await s.execute(select(CallRecord).where(CallRecord.status != "ended"))).scalars().all()
        out = []
        for r in rows:
            out.append(CallState(
                call_id=r.call_id, channel=r.channel, dialed_number=r.dialed_number, caller_number=r.caller_number,
                city=r.city, area_code=r.area_code, language=r.language, ivr_path=r.ivr_path, service=r.service,
                queue=r.queue, overflow=r.overflow, green=r.green, after_hours=r.after_hours, agent=r.agent, recording=r.recording_path, transfers=r.transfers, status=r.status,
                outcome=r.outcome, hangup_cause=r.hangup_cause, hangup_cause_text=r.hangup_cause_text,
                started_at=_epoch(r.started_at), queued_at=_epoch(r.queued_at),
                answered_at=_epoch(r.answered_at), ended_at=_epoch(r.ended_at)))
        return out

    async def recent_calls(self, limit: int = 50, city: str | None = None) -> list[dict]:
        q = select(CallRecord).order_by(CallRecord.id.desc()).limit(limit)
        if city:
            q = q.where(CallRecord.city == city)
        async with self.session() as s:
            return [record_to_dict(r) for r in (await s.execute(q)).scalars().all()]

    async def call(self, call_id: str) -> dict | None:
        async with self.session() as s:
            r = (await s.execute(select(CallRecord).where(CallRecord.call_id == call_id))).scalar_one_or_none()
            return record_to_dict(r) if r else None

    async def agent_event(self, agent_id: str, action: str, reason: str = "") -> None:
        async with self.session.begin() as s:
            s.add(AgentEvent(agent_id=agent_id, action=action, reason=reason, at=datetime.now(timezone.utc)))

    async def add_callback(self, call: CallState, reason: str, voicemail: str = "") -> bool:
        """Create the callback task for a call once; False if it already exists (idempotent)."""
        now = datetime.now(timezone.utc)
        async with self.session.begin() as s:
            same = CallbackTask.call_id == call.call_id
            if voicemail:  # the spool reconciliation may have found this message first
                same = same | (CallbackTask.voicemail == voicemail)
            if (await s.execute(select(CallbackTask.id).where(same))).first():
                return False
            s.add(CallbackTask(call_id=call.call_id, caller_number=call.caller_number, city=call.city,
                               language=call.language, reason=reason, status="pending", attempts=0,
                               voicemail=voicemail, created_at=now, updated_at=now))
        return True

    async def add_voicemail_callback(self, msg) -> bool:
        """A task for a voicemail message no task points to yet (left while no controller ran)."""
        async with self.session.begin() as s:
            known = (await s.execute(select(CallbackTask.id).where(CallbackTask.voicemail == msg.path))).first()
            if known:
                return False
            now = datetime.now(timezone.utc)
            s.add(CallbackTask(call_id=f"vm:{msg.msg_id or msg.path}", caller_number=msg.caller_number,
                               city=msg.mailbox, language="", reason="voicemail", status="pending", attempts=0,
                               voicemail=msg.path, created_at=now, updated_at=now))
        return True

    async def update_callback(self, call_id: str, status: str, attempts: int) -> None:
        """By the call that asked for it, or ``t<task id>`` for a callback the scheduler placed."""
        where = (CallbackTask.id == int(call_id[1:])) if call_id[:1] == "t" and call_id[1:].isdigit() \
            else (CallbackTask.call_id == call_id)
        async with self.session.begin() as s:
            row = (await s.execute(select(CallbackTask).where(where))).scalar_one_or_none()
            if row is None:
                return  # requested while no controller ran: nothing to update (the call is in Asterisk's CDR)
            row.status, row.attempts, row.updated_at = status, max(row.attempts, attempts), datetime.now(timezone.utc)

    async def due_voicemail_callbacks(self, limit: int = 20) -> list[CallbackTask]:
        async with self.session() as s:
            # voicemail, and questions partners handed over with the caller's consent (interop)
            q = (select(CallbackTask).where(CallbackTask.status == "pending",
                                            CallbackTask.reason.in_(("voicemail", "partner_referral")))
                 .order_by(CallbackTask.id).limit(limit))
            return list((await s.execute(q)).scalars().all())

    async def mark_callback(self, task_id: int, status: str) -> bool:
        """pending -> dialing, at most once (a compare-and-set, safe with several controllers)."""
        async with self.session.begin() as s:
            res = await s.execute(update(CallbackTask).where(CallbackTask.id == task_id, CallbackTask.status == "pending")
                                  .values(status=status, updated_at=datetime.now(timezone.utc)))
            return res.rowcount == 1

    async def callbacks(self, status: str | None = None, limit: int = 100) -> list[dict]:
        q = select(CallbackTask).order_by(CallbackTask.id.desc()).limit(limit)
        if status:
            q = q.where(CallbackTask.status == status)
        async with self.session() as s:
            rows = (await s.execute(q)).scalars().all()
        out = []
        for r in rows:
            d = {c.name: getattr(r, c.name) for c in CallbackTask.__table__.columns}
            for k in ("created_at", "updated_at"):
                d[k] = datetime.fromtimestamp(_epoch(d[k]), tz=timezone.utc).isoformat()
            out.append(d)
        return out

    # ---- desk logins, sessions, tokens, audit (policy lives in dashboard/auth.py)
    async def password_hash(self, user_id: str) -> str | None:
        async with self.session() as s:
            row = await s.get(UserCredential, user_id)
            return row.password_hash if row else None

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        async with self.session.begin() as s:
            row = await s.get(UserCredential, user_id)
            if row is None:
                s.add(UserCredential(user_id=user_id, password_hash=password_hash, updated_at=_now()))
            else:
                row.password_hash, row.updated_at = password_hash, _now()
            # a new password ends every session and token of that user
            await s.execute(update(AuthToken).where(AuthToken.user_id == user_id).values(revoked=True))

    async def add_token(self, token_hash: str, kind: str, user_id: str, expires_at: float, csrf: str = "",
                        label: str = "") -> None:
        async with self.session.begin() as s:
            s.add(AuthToken(token_hash=token_hash, kind=kind, user_id=user_id, csrf=csrf, label=label,
                            created_at=_now(), last_seen=_now(), expires_at=_dt(expires_at), revoked=False))

    async def token(self, token_hash: str) -> dict | None:
        async with self.session() as s:
            row = (await s.execute(select(AuthToken).where(AuthToken.token_hash == token_hash))).scalar_one_or_none()
            if row is None or row.revoked:
                return None
            return {"kind": row.kind, "user_id": row.user_id, "csrf": row.csrf, "created_at": _epoch(row.created_at),
                    "last_seen": _epoch(row.last_seen), "expires_at": _epoch(row.expires_at)}

    async def touch_token(self, token_hash: str) -> None:
        async with self.session.begin() as s:
            await s.execute(update(AuthToken).where(AuthToken.token_hash == token_hash).values(last_seen=_now()))

    async def revoke_token(self, token_hash: str) -> None:
        async with self.session.begin() as s:
            await s.execute(update(AuthToken).where(AuthToken.token_hash == token_hash).values(revoked=True))

    async def audit(self, user_id: str, role: str, action: str, call_id: str = "", target: str = "",
                    allowed: bool = True, detail: str = "") -> None:
        async with self.session.begin() as s:
            s.add(AuditEntry(at=_now(), user_id=user_id, role=role, action=action, call_id=call_id,
                             target=target[:128], allowed=allowed, detail=detail))

    async def audit_entries(self, limit: int = 100, call_id: str | None = None, user_id: str | None = None) -> list[dict]:
        q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if call_id:
            q = q.where(AuditEntry.call_id == call_id)
        if user_id:
            q = q.where(AuditEntry.user_id == user_id)
        async with self.session() as s:
            rows = (await s.execute(q)).scalars().all()
        return [{"id": r.id, "at": datetime.fromtimestamp(_epoch(r.at), tz=timezone.utc).isoformat(),
                 "user_id": r.user_id, "role": r.role, "action": r.action, "call_id": r.call_id, "target": r.target,
                 "allowed": r.allowed, "detail": r.detail} for r in rows]

    async def calls_since(self, since: datetime, until: datetime | None = None, city: str | None = None) -> list[dict]:
        """The facts KPIs need (core/kpi.py) of calls started in [since, until), times as epochs."""
        q = select(*KPI_FACTS).where(CallRecord.started_at >= since.astimezone(timezone.utc))
        if until is not None:
            q = q.where(CallRecord.started_at < until.astimezone(timezone.utc))
        if city:
            q = q.where(CallRecord.city == city)
        async with self.session() as s:
            rows = (await s.execute(q)).all()
        out = []
        for r in rows:
            d = dict(r._mapping)
            for k in ("started_at", "queued_at", "answered_at", "ended_at"):
                d[k] = _epoch(d[k])
            out.append(d)
        return out

    async def callbacks_since(self, since: datetime) -> dict[str, int]:
        from sqlalchemy import func
        async with self.session() as s:
            rows = (await s.execute(select(CallbackTask.city, func.count()).where(
                CallbackTask.created_at >= since.astimezone(timezone.utc)).group_by(CallbackTask.city))).all()
        return {city: n for city, n in rows}

    async def set_notes(self, call_id: str, notes: str) -> bool:
        """The desk's notes on a call; the row exists from the call's first event."""
        async with self.session.begin() as s:
            res = await s.execute(update(CallRecord).where(CallRecord.call_id == call_id).values(notes=notes))
            return res.rowcount > 0

    async def caller_history(self, number: str, exclude_call: str = "", limit: int = 10) -> list[dict]:
        """Earlier calls from this number, newest first (the screen-pop's 'previous calls')."""
        if not number:
            return []
        q = (select(CallRecord).where(CallRecord.caller_number == number, CallRecord.call_id != exclude_call)
             .order_by(CallRecord.id.desc()).limit(limit))
        async with self.session() as s:
            return [record_to_dict(r) for r in (await s.execute(q)).scalars().all()]


def _call_upsert(dialect: str):
    """Insert a call record, or update every column but the agent's notes: a Core statement built once,
    so SQLAlchemy compiles it once and runs a batch as one executemany."""
    table = CallRecord.__table__
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    keep = {"id", "call_id", "notes"}
    return stmt.on_conflict_do_update(index_elements=[table.c.call_id],
                                      set_={c.name: stmt.excluded[c.name] for c in table.c if c.name not in keep})


def _fitted(model, values: dict) -> dict:
    """Column values from what Asterisk reported, cut to each column's length and without NUL bytes:
    a caller ID is the caller's to choose, and PostgreSQL refuses an over-long or NUL-bearing value —
    the record writer would retry that row forever and no later call would be saved."""
    cols = model.__table__.c
    out = {}
    for name, v in values.items():
        if isinstance(v, str):
            v = v.replace("\x00", "")
            length = getattr(cols[name].type, "length", None)
            if length:
                v = v[:length]
        out[name] = v
    return out


def _fit(row, **values) -> None:
    for name, v in _fitted(type(row), values).items():
        setattr(row, name, v)


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _change(s, model, row_id: int, expect_status: str | None, changes: dict):
    """Lock a row, check it is still in the expected status, apply changes (None if it moved on)."""
    row = await s.get(model, row_id, with_for_update=True)
    if row is None or (expect_status and row.status != expect_status):
        return None
    for k, v in changes.items():
        setattr(row, k, v)
    row.updated_at = _now()
    return row


class TicketStore:
    """Tickets, on the same engine as the call records. ``effects`` are async (session, ticket, kind)
    callables run inside every ticket's creation ("created"), change ("updated") and escalation
    ("escalated"): the messages those cause commit with them (interop.effects)."""

    def __init__(self, store: Store, effects: list | None = None):
        self.session = store.session
        self.effects = list(effects or [])

    async def _effects(self, s, t: Ticket, kind: str) -> None:
        for effect in self.effects:
            await effect(s, t, kind)

    async def ensure_for_call(self, call: CallState, source: str, deadline_hours: float) -> bool:
        """One ticket per call, whatever the retries; True when it was created now."""
        from sqlalchemy.exc import IntegrityError
        try:
            async with self.session.begin() as s:
                if (await s.execute(select(Ticket.id).where(Ticket.call_id == call.call_id))).first():
                    return False
                now = _now()
                t = Ticket()
                _fit(t, call_id=call.call_id, source=source, city=call.city, caller_number=call.caller_number,
                     language=call.language, agent=call.agent, green=call.green, category="", summary="",
                     answer="", outcome="", follow_up=False, status="open",
                     due_at=now + timedelta(hours=deadline_hours), created_at=now, updated_at=now)
                s.add(t)
                await s.flush()
                await self._effects(s, t, "created")
            return True
        except IntegrityError:      # created concurrently (a second controller): fine, it exists
            return False

    async def follow_agent(self, call: CallState) -> None:
        """After a transfer the ticket belongs to the agent who has the caller now."""
        async with self.session.begin() as s:
            await s.execute(update(Ticket).where(Ticket.call_id == call.call_id, Ticket.status != "closed")
                            .values(agent=call.agent, updated_at=_now()))

    async def get(self, ticket_id: int) -> dict | None:
        async with self.session() as s:
            t = await s.get(Ticket, ticket_id)
            return ticket_to_dict(t) if t else None

    async def for_call(self, call_id: str) -> dict | None:
        async with self.session() as s:
            t = (await s.execute(select(Ticket).where(Ticket.call_id == call_id))).scalar_one_or_none()
            return ticket_to_dict(t) if t else None

    async def search(self, *, status: str | None = None, city: str | None = None, caller: str | None = None,
                     agent: str | None = None, overdue: bool = False, limit: int = 100) -> list[dict]:
        q = select(Ticket).order_by(Ticket.id.desc()).limit(limit)
        if status:
            q = q.where(Ticket.status == status)
        if city:
            q = q.where(Ticket.city == city)
        if caller:
            q = q.where(Ticket.caller_number == caller)
        if agent:
            q = q.where(Ticket.agent == agent)
        if overdue:
            q = q.where(Ticket.escalated_at.is_not(None), Ticket.status.in_(("open", "in_progress")))
        async with self.session() as s:
            return [ticket_to_dict(t) for t in (await s.execute(q)).scalars().all()]

    async def update(self, ticket_id: int, changes: dict, expect_status: str | None = None,
                     follow_up_after: timedelta | None = None) -> dict | None:
        """Apply validated changes; with ``expect_status`` only if the status is still that one
        (two desks moving the same ticket: the second gets None and a 409). Closing a ticket that
        wants a follow-up schedules the visit in the same transaction (unless the number opted out)."""
        async with self.session.begin() as s:
            t = await _change(s, Ticket, ticket_id, expect_status, changes)
            if t is None:
                return None
            if changes.get("status") == "closed":
                t.closed_at = t.updated_at
                if t.follow_up and follow_up_after is not None and t.caller_number \
                        and not await s.get(OptOut, t.caller_number):
                    s.add(FollowUp(ticket_id=t.id, caller_number=t.caller_number, language=t.language or "zh",
                                   city=t.city, agent=t.agent, status="pending", attempts=0,
                                   next_at=t.updated_at + follow_up_after, callback_requested=False, result="",
                                   created_at=t.updated_at, updated_at=t.updated_at))
            await self._effects(s, t, "updated")
            return ticket_to_dict(t)

    async def escalate_overdue(self) -> list[dict]:
        """Tickets past their deadline and still open: marked once, returned for the alerts."""
        now = _now()
        async with self.session.begin() as s:
            rows = (await s.execute(select(Ticket).where(
                Ticket.due_at < now, Ticket.escalated_at.is_(None),
                Ticket.status.in_(("open", "in_progress"))).with_for_update())).scalars().all()
            for t in rows:
                t.escalated_at = now
                await self._effects(s, t, "escalated")
            return [ticket_to_dict(t) for t in rows]


class SlotFull(Exception):
    pass


class AppointmentStore:
    """Bookings and their messages, each change in one transaction with the messages it causes."""

    def __init__(self, store: Store):
        self.session = store.session

    async def taken(self, center_id: str, day: str) -> dict[str, int]:
        """slot -> seats booked, for one center and day."""
        async with self.session() as s:
            rows = (await s.execute(select(Appointment.slot).where(
                Appointment.center_id == center_id, Appointment.day == day,
                Appointment.seat.is_not(None)))).scalars().all()
        out: dict[str, int] = {}
        for slot in rows:
            out[slot] = out.get(slot, 0) + 1
        return out

    async def book(self, *, center_id: str, city: str, day: str, slot: str, capacity: int, caller_number: str,
                   language: str, ticket_id: int | None, booked_by: str, messages) -> dict:
        """Take a free seat of the slot, or raise SlotFull. ``messages(code)`` gives the
        outbox rows [(kind, body, not_before)] written in the same transaction as the booking."""
        import secrets as pysecrets
        from sqlalchemy.exc import IntegrityError

        for _ in range(capacity + 3):
            async with self.session() as s:
                taken = set((await s.execute(select(Appointment.seat).where(
                    Appointment.center_id == center_id, Appointment.day == day, Appointment.slot == slot,
                    Appointment.seat.is_not(None)))).scalars())
            free = [n for n in range(1, capacity + 1) if n not in taken]
            if not free:
                raise SlotFull(f"{center_id} {day} {slot} is fully booked")
            code = "A" + pysecrets.token_hex(4).upper()
            # a random free seat, not the lowest: racing desks then rarely pick the same one
            seat = free[0] if len(free) == 1 else free[pysecrets.randbelow(len(free))]
            try:
                async with self.session.begin() as s:
                    now = _now()
                    a = Appointment(code=code, center_id=center_id, city=city, day=day, slot=slot, seat=seat,
                                    caller_number=caller_number, language=language, ticket_id=ticket_id,
                                    booked_by=booked_by, status="booked", created_at=now)
                    s.add(a)
                    await s.flush()
                    for kind, body, not_before in messages(code):
                        s.add(OutboxMessage(channel="sms", kind=kind, to_number=caller_number, language=language,
                                            body=body, related=f"appointment:{a.id}", status="pending",
                                            not_before=not_before or now, created_at=now))
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
            now = _now()
            a.status, a.seat, a.cancelled_at = "cancelled", None, now
            await s.execute(update(OutboxMessage).where(
                OutboxMessage.related == f"appointment:{a.id}", OutboxMessage.status == "pending",
                OutboxMessage.kind == "appointment_reminder").values(status="cancelled"))
            s.add(OutboxMessage(channel="sms", kind="appointment_cancelled", to_number=a.caller_number,
                                language=a.language, body=message(a), related=f"appointment:{a.id}",
                                status="pending", not_before=now, created_at=now))
            return row_to_dict(a)

    async def get(self, appointment_id: int) -> dict | None:
        async with self.session() as s:
            a = await s.get(Appointment, appointment_id)
            return row_to_dict(a) if a else None

    async def search(self, *, city: str | None = None, center_id: str | None = None, day: str | None = None,
                     caller: str | None = None, status: str | None = None, limit: int = 200) -> list[dict]:
        q = select(Appointment).order_by(Appointment.day, Appointment.slot, Appointment.id).limit(limit)
        for col, v in ((Appointment.city, city), (Appointment.center_id, center_id), (Appointment.day, day),
                       (Appointment.caller_number, caller), (Appointment.status, status)):
            if v:
                q = q.where(col == v)
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


async def report_rows(store: Store, since: datetime, until: datetime, city: str | None = None
                      ) -> tuple[list[dict], list[dict], list[dict], list[dict], list[dict]]:
    """Call records and tickets in [since, until) and appointments on the local dates in between,
    for backoffice/stats.py. ``since`` and ``until`` carry the hotline's timezone."""
    day_from, day_until = since.date().isoformat(), until.date().isoformat()
    # timestamps are stored in UTC, and SQLite compares the text as written: compare in UTC
    since, until = since.astimezone(timezone.utc), until.astimezone(timezone.utc)
    async with store.session() as s:
        cq = select(*KPI_FACTS).where(CallRecord.started_at >= since, CallRecord.started_at < until)
        tq = select(Ticket.created_at, Ticket.city, Ticket.category, Ticket.outcome).where(
            Ticket.created_at >= since, Ticket.created_at < until)
        aq = select(Appointment.day, Appointment.city, Appointment.status).where(
            Appointment.day >= day_from, Appointment.day < day_until)   # local dates
        kq = select(Complaint.created_at, Complaint.city).where(Complaint.created_at >= since, Complaint.created_at < until)
        fq = select(FollowUp.updated_at, FollowUp.city, FollowUp.attitude, FollowUp.efficiency,
                    FollowUp.professionalism).where(FollowUp.status == "done", FollowUp.updated_at >= since,
                                                    FollowUp.updated_at < until)
        if city:
            cq, tq, aq = cq.where(CallRecord.city == city), tq.where(Ticket.city == city), aq.where(Appointment.city == city)
            kq, fq = kq.where(Complaint.city == city), fq.where(FollowUp.city == city)
        out = []
        for q in (cq, tq, aq, kq, fq):
            out.append([dict(r._mapping) for r in await s.execute(q)])
    return tuple(out)


SURVEY_QUESTIONS = ("attitude", "efficiency", "professionalism")


class FollowUpStore:
    """Follow-up visits: scheduled when a ticket closes, dialled by agents/followups.py, scored by
    the survey IVR's events. Every state change is a conditional update: a restart never dials twice."""

    def __init__(self, store: Store):
        self.session = store.session

    async def due(self, now: datetime, deadline: datetime, limit: int = 10) -> list[dict]:
        """Claim pending follow-ups whose time has come (pending -> dialing, attempts + 1)."""
        async with self.session.begin() as s:
            rows = (await s.execute(select(FollowUp).where(FollowUp.status == "pending", FollowUp.next_at <= now)
                                    .order_by(FollowUp.next_at).limit(limit).with_for_update(skip_locked=True))).scalars().all()
            out = []
            for f in rows:
                if await s.get(OptOut, f.caller_number):
                    f.status, f.result, f.updated_at = "opted_out", "opted_out", now
                    continue
                f.status, f.attempts, f.next_at, f.updated_at = "dialing", f.attempts + 1, deadline, now
                out.append(row_to_dict(f))
            return out

    async def expire_dialing(self, now: datetime, retry_at: datetime, attempts: int) -> list[dict]:
        """Dialled but never finished (no answer, busy, hung up before any rating): retry or give up."""
        async with self.session.begin() as s:
            rows = (await s.execute(select(FollowUp).where(FollowUp.status == "dialing", FollowUp.next_at <= now)
                                    .with_for_update())).scalars().all()
            for f in rows:
                if f.attempts >= attempts:
                    f.status, f.result = "failed", f.result or "no_answer"
                else:
                    f.status, f.next_at = "pending", retry_at
                f.updated_at = now
            return [row_to_dict(f) for f in rows]

    async def score(self, follow_up_id: int, question: str, value: int) -> bool:
        if question not in SURVEY_QUESTIONS or not 1 <= value <= 5:
            return False
        async with self.session.begin() as s:
            res = await s.execute(update(FollowUp).where(FollowUp.id == follow_up_id)
                                  .values({question: value, "updated_at": _now()}))
            return res.rowcount > 0

    async def end(self, follow_up_id: int, result: str, callback: bool, retry_at: datetime, attempts: int) -> dict | None:
        """The survey call ended: done (some ratings), opted out, or a failed attempt (none)."""
        async with self.session.begin() as s:
            f = await s.get(FollowUp, follow_up_id, with_for_update=True)
            if f is None or f.status != "dialing":
                return None
            now = _now()
            rated = any(getattr(f, q) is not None for q in SURVEY_QUESTIONS)
            f.callback_requested = f.callback_requested or callback
            if result == "optout":
                f.status, f.result = "opted_out", "opted_out"
                if not await s.get(OptOut, f.caller_number):
                    s.add(OptOut(number=f.caller_number, source=f"follow_up:{f.id}", created_at=now))
            elif rated or callback:
                f.status, f.result = "done", "complete" if result == "done" else "partial"
            elif f.attempts >= attempts:
                f.status, f.result = "failed", "no_rating"
            else:
                f.status, f.next_at = "pending", retry_at
            f.updated_at = now
            return row_to_dict(f)

    async def search(self, *, ticket_id: int | None = None, city: str | None = None, status: str | None = None,
                     limit: int = 200) -> list[dict]:
        q = select(FollowUp).order_by(FollowUp.id.desc()).limit(limit)
        for col, v in ((FollowUp.ticket_id, ticket_id), (FollowUp.city, city), (FollowUp.status, status)):
            if v:
                q = q.where(col == v)
        async with self.session() as s:
            return [row_to_dict(f) for f in (await s.execute(q)).scalars().all()]


class ComplaintStore:
    def __init__(self, store: Store):
        self.session = store.session

    async def add(self, fields: dict, received_by: str, due_days: float) -> dict:
        import secrets as pysecrets
        async with self.session.begin() as s:
            now = _now()
            c = Complaint(ref="C" + pysecrets.token_hex(4).upper(), received_by=received_by, status="received",
                          assigned_to="", reply="", due_at=now + timedelta(days=due_days), created_at=now,
                          updated_at=now, **fields)
            s.add(c)
            await s.flush()
            return row_to_dict(c)

    async def get(self, complaint_id: int) -> dict | None:
        async with self.session() as s:
            c = await s.get(Complaint, complaint_id)
            return row_to_dict(c) if c else None

    async def move(self, complaint_id: int, expect_status: str, changes: dict, message=None) -> dict | None:
        """Conditional status change; a reply queues its text for the complainant in the same transaction."""
        async with self.session.begin() as s:
            c = await _change(s, Complaint, complaint_id, expect_status, changes)
            if c is None:
                return None
            if changes.get("status") == "replied":
                c.replied_at = c.updated_at
                if message and c.complainant_number:
                    s.add(OutboxMessage(channel="sms", kind="complaint_reply", to_number=c.complainant_number,
                                        language=c.language, body=message(c), related=f"complaint:{c.id}",
                                        status="pending", not_before=c.updated_at, created_at=c.updated_at))
            return row_to_dict(c)

    async def search(self, *, city: str | None = None, status: str | None = None, assigned_to: str | None = None,
                     overdue: bool = False, limit: int = 200) -> list[dict]:
        q = select(Complaint).order_by(Complaint.id.desc()).limit(limit)
        for col, v in ((Complaint.city, city), (Complaint.status, status), (Complaint.assigned_to, assigned_to)):
            if v:
                q = q.where(col == v)
        if overdue:
            q = q.where(Complaint.due_at < _now(), Complaint.status.in_(("received", "assigned")))
        async with self.session() as s:
            return [row_to_dict(c) for c in (await s.execute(q)).scalars().all()]
