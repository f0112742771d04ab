"""Follow-up visits (satisfaction surveys): scheduled when a ticket closes (store/tickets.py),
claimed and dialled by agents/followups.py, scored by the survey IVR, ended once."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from core.numbering import to_e164
from store.engine import Database, row_to_dict, same_caller, utcnow
from store.models import FollowUp, OptOut

SURVEY_QUESTIONS = ("attitude", "efficiency", "professionalism")


async def opted_out(s, number: str) -> bool:
    """Whether this caller asked not to be called, in whatever form either number was written (an
    opt-out is kept in E.164; older ones as the number was dialled)."""
    return (await s.execute(select(OptOut.number).where(same_caller(OptOut.number, number)).limit(1))).first() \
        is not None


class FollowUpStore:
    """Follow-up visits: scheduled when a ticket closes, dialled by agents/followups.py, scored by
    the survey IVR's events. Every state change is a conditional update: a restart never dials twice."""

    def __init__(self, db: Database, node: str = ""):
        self.session = db.session
        self.node = node     # several nodes: who dialled it last (its lease is ``next_at`` while dialing)

    async def due(self, now: datetime, deadline: datetime, limit: int = 10) -> list[dict]:
        """Claim pending follow-ups whose time has come (pending -> dialing, attempts + 1)."""
        async with self.session.begin() as s:
            rows = (await s.execute(select(FollowUp).where(FollowUp.status == "pending", FollowUp.next_at <= now)
                                    .order_by(FollowUp.next_at).limit(limit).with_for_update(skip_locked=True))).scalars().all()
            out = []
            for f in rows:
                if await opted_out(s, f.caller_number):
                    f.status, f.result, f.updated_at = "opted_out", "opted_out", now
                    continue
                # a compare-and-set as well: SQLite has no FOR UPDATE, and two nodes must not both dial it
                attempts = f.attempts + 1
                claimed = await s.execute(update(FollowUp).where(FollowUp.id == f.id, FollowUp.status == "pending")
                                          .values(status="dialing", attempts=attempts, next_at=deadline,
                                                  updated_at=now, node=self.node))
                if claimed.rowcount == 1:
                    out.append({**row_to_dict(f), "status": "dialing", "attempts": attempts,
                                "next_at": deadline, "updated_at": now, "node": self.node})
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

    async def refused(self, follow_up_id: int) -> bool:
        """Claimed, but its number is outside the numbering plan: failed for good, never dialled."""
        async with self.session.begin() as s:
            res = await s.execute(update(FollowUp).where(FollowUp.id == follow_up_id, FollowUp.status == "dialing")
                                  .values(status="failed", result="refused", updated_at=utcnow()))
            return res.rowcount > 0

    async def score(self, follow_up_id: int, question: str, value: int) -> bool:
        if question not in SURVEY_QUESTIONS or not 1 <= value <= 5:
            return False
        async with self.session.begin() as s:
            res = await s.execute(update(FollowUp).where(FollowUp.id == follow_up_id)
                                  .values({question: value, "updated_at": utcnow()}))
            return res.rowcount > 0

    async def end(self, follow_up_id: int, result: str, callback: bool, retry_at: datetime, attempts: int) -> dict | None:
        """The survey call ended: done (some ratings), opted out, or a failed attempt (none)."""
        async with self.session.begin() as s:
            f = await s.get(FollowUp, follow_up_id, with_for_update=True)
            if f is None or f.status != "dialing":
                return None
            now = utcnow()
            rated = any(getattr(f, q) is not None for q in SURVEY_QUESTIONS)
            f.callback_requested = f.callback_requested or callback
            if result == "optout":
                f.status, f.result = "opted_out", "opted_out"
                if not await opted_out(s, f.caller_number):
                    s.add(OptOut(number=to_e164(f.caller_number) or f.caller_number, source=f"follow_up:{f.id}",
                                 created_at=now))
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
