"""Callback tasks: calls to return (queue callbacks, voicemail, partner referrals), created once per
call or message and claimed by agents/callbacks.py with a compare-and-set.

Several nodes (docs/scale-out.md "Shared state across nodes"): a task a node's Asterisk holds (a "press 5" placeholder, a
callback it placed) carries that node and a lease its controller renews. When a node is lost (no
heartbeat, its Asterisk gone) the others may claim its tasks once the lease has lapsed: one claimer
wins (a compare-and-set; on PostgreSQL SELECT … FOR UPDATE SKIP LOCKED first, so claimers never wait on
each other), and the task keeps its id, so its place in line. One node: no node, no lease, as before."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, func, or_, select, update

from core.calls import CallState
from store.engine import Database, row_to_dict, utcnow
from store.models import CallbackTask


SCHEDULED = ("voicemail", "partner_referral")    # the reasons the scheduler places (the others: the dialplan)


def _rid_filter(rid: str):
    """A callback request id in astdb (``t<task id>`` or the asking call's id) -> its task."""
    return (CallbackTask.id == int(rid[1:])) if rid[:1] == "t" and rid[1:].isdigit() else (CallbackTask.call_id == rid)


class CallbackStore:
    def __init__(self, db: Database, node: str = "", lease_seconds: float = 15.0):
        self.session = db.session
        self.node = node                  # "" = one node: no leases
        self.lease = timedelta(seconds=lease_seconds)
        self.lost: set[str] = set()       # nodes found dead (callcenter/cluster.py): their lapsed tasks are free
        self._skip_locked = db.dialect == "postgresql"

    def _held(self, now: datetime) -> dict:
        return {"node": self.node, "lease_until": now + self.lease} if self.node else {}

    def _claimable(self, now: datetime):
        """Due for the scheduler: pending voicemail/referral tasks no node holds, and any task a lost node
        held whose lease has lapsed."""
        free = and_(CallbackTask.status == "pending", CallbackTask.reason.in_(SCHEDULED),
                    CallbackTask.lease_until.is_(None))
        if not self.lost:
            return free
        taken_over = and_(CallbackTask.status.in_(("pending", "dialing")), CallbackTask.lease_until < now,
                          CallbackTask.node.in_(sorted(self.lost)))
        return or_(free, taken_over)

    async def add_callback(self, call: CallState, reason: str, voicemail: str = "") -> bool:
        """Create the callback task for a call once; False if it already exists (idempotent)."""
        now = utcnow()
        async with self.session.begin() as s:
            same = CallbackTask.call_id == call.call_id
            if voicemail:  # the spool reconciliation may have found this message first
                same = same | (CallbackTask.voicemail == voicemail)
            if (await s.execute(select(CallbackTask.id).where(same))).first():
                return False
            # a "press 5" request waits in this node's Asterisk: held by this node
            held = self._held(now) if reason == "queue_callback" else {}
            s.add(CallbackTask(call_id=call.call_id, caller_number=call.caller_number, city=call.city,
                               language=call.language, reason=reason, status="pending", attempts=0,
                               voicemail=voicemail, created_at=now, updated_at=now, **held))
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
        where = _rid_filter(call_id)
        async with self.session.begin() as s:
            row = (await s.execute(select(CallbackTask).where(where))).scalar_one_or_none()
            if row is None:
                return  # requested while no controller ran: nothing to update (the call is in Asterisk's CDR)
            row.status, row.attempts, row.updated_at = status, max(row.attempts, attempts), utcnow()
            if status in ("done", "failed"):
                row.lease_until = None          # nothing left to hold
            elif self.node and row.node == self.node:
                row.lease_until = row.updated_at + self.lease

    async def due_voicemail_callbacks(self, limit: int = 20) -> list[CallbackTask]:
        """Voicemail, questions partners handed over with the caller's consent (interop), and what a lost
        node held, oldest first (the id is the place in line)."""
        async with self.session() as s:
            q = select(CallbackTask).where(self._claimable(utcnow())).order_by(CallbackTask.id).limit(limit)
            return list((await s.execute(q)).scalars().all())

    async def mark_callback(self, task_id: int, status: str, was: str = "pending") -> bool:
        """Claim a due task (-> dialing, held by this node) at most once: a compare-and-set, safe with
        several controllers; a refused number: dialing -> failed."""
        now = utcnow()
        async with self.session.begin() as s:
            if status == "dialing":
                cond = and_(CallbackTask.id == task_id, self._claimable(now))
                if self._skip_locked:    # another node claiming the same row: skip it, do not wait
                    if (await s.execute(select(CallbackTask.id).where(cond)
                                        .with_for_update(skip_locked=True))).first() is None:
                        return False
                res = await s.execute(update(CallbackTask).where(cond).values(
                    status="dialing", updated_at=now, **self._held(now)))
            else:
                res = await s.execute(update(CallbackTask).where(CallbackTask.id == task_id, CallbackTask.status == was)
                                      .values(status=status, updated_at=now, lease_until=None))
            return res.rowcount == 1

    async def renew(self) -> int:
        """This node still holds its tasks: push their leases on (every heartbeat)."""
        if not self.node:
            return 0
        now = utcnow()
        async with self.session.begin() as s:
            res = await s.execute(update(CallbackTask).where(
                CallbackTask.node == self.node, CallbackTask.status.in_(("pending", "dialing")),
                CallbackTask.lease_until.is_not(None)).values(lease_until=now + self.lease))
            return res.rowcount

    async def held_elsewhere(self, rids: list[str]) -> set[str]:
        """Of these astdb request ids, those whose task another node has taken over meanwhile (a node
        back from the dead must not place them again)."""
        if not self.node or not rids:
            return set()
        out = set()
        async with self.session() as s:
            for rid in rids:
                row = (await s.execute(select(CallbackTask.node, CallbackTask.status).where(_rid_filter(rid)))).first()
                if row is not None and row.node not in ("", self.node):
                    out.add(rid)
        return out

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
