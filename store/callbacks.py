"""Callback tasks: calls to return (queue callbacks, voicemail, partner referrals), created once per
call or message and claimed by agents/callbacks.py with a compare-and-set."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select, update

from core.calls import CallState
from store.engine import Database, row_to_dict, utcnow
from store.models import CallbackTask


class CallbackStore:
    def __init__(self, db: Database):
        self.session = db.session

    async def add_callback(self, call: CallState, reason: str, voicemail: str = "") -> bool:
        """Create the callback task for a call once; False if it already exists (idempotent)."""
        now = utcnow()
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
            now = utcnow()
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
            row.status, row.attempts, row.updated_at = status, max(row.attempts, attempts), utcnow()

    async def due_voicemail_callbacks(self, limit: int = 20) -> list[CallbackTask]:
        async with self.session() as s:
            # voicemail, and questions partners handed over with the caller's consent (interop)
            q = (select(CallbackTask).where(CallbackTask.status == "pending",
                                            CallbackTask.reason.in_(("voicemail", "partner_referral")))
                 .order_by(CallbackTask.id).limit(limit))
            return list((await s.execute(q)).scalars().all())

    async def mark_callback(self, task_id: int, status: str, was: str = "pending") -> bool:
        """pending -> dialing, at most once (a compare-and-set, safe with several controllers); a refused
        number: dialing -> failed."""
        async with self.session.begin() as s:
            res = await s.execute(update(CallbackTask).where(CallbackTask.id == task_id, CallbackTask.status == was)
                                  .values(status=status, updated_at=utcnow()))
            return res.rowcount == 1

    async def callbacks(self, status: str | None = None, limit: int = 100) -> list[dict]:
        q = select(CallbackTask).order_by(CallbackTask.id.desc()).limit(limit)
        if status:
            q = q.where(CallbackTask.status == status)
        async with self.session() as s:
            return [row_to_dict(r) for r in (await s.execute(q)).scalars().all()]

    async def callbacks_since(self, since: datetime) -> dict[str, int]:
        """Tasks created since ``since``, per city (the wallboard's callbacks figure)."""
        async with self.session() as s:
            rows = (await s.execute(select(CallbackTask.city, func.count()).where(
                CallbackTask.created_at >= since.astimezone(timezone.utc)).group_by(CallbackTask.city))).all()
        return {city: n for city, n in rows}
