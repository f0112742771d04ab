"""Complaints about the service: received, assigned, replied to (the reply texted to the
complainant in the same transaction), overdue past their deadline."""
from __future__ import annotations

import secrets as pysecrets
from datetime import timedelta

from sqlalchemy import select

from store.engine import Database, change_row, row_to_dict, same_caller, utcnow
from store.models import Complaint
from store.sms import text_row


class ComplaintStore:
    def __init__(self, db: Database):
        self.session = db.session

    async def add(self, fields: dict, received_by: str, due_days: float) -> dict:
        async with self.session.begin() as s:
            now = utcnow()
            c = Complaint(ref="C" + pysecrets.token_hex(4).upper(), received_by=received_by, status="received",
                          assigned_to="", reply="", due_at=now + timedelta(days=due_days), created_at=now,
                          updated_at=now, **fields)
            s.add(c)
            await s.flush()
            return row_to_dict(c)

    async def ensure_for_call(self, call_id: str, fields: dict, due_days: float) -> tuple[dict, bool]:
        """The complaint a call to the IVR's complaint option files (once per call): (row, created)."""
        async with self.session.begin() as s:
            found = (await s.execute(select(Complaint).where(Complaint.call_id == call_id)
                                     .order_by(Complaint.id).limit(1))).scalar_one_or_none()
            if found is not None:
                return row_to_dict(found), False
            now = utcnow()
            c = Complaint(ref="C" + pysecrets.token_hex(4).upper(), received_by="ivr", status="received",
                          assigned_to="", reply="", due_at=now + timedelta(days=due_days), created_at=now,
                          updated_at=now, call_id=call_id, **fields)
            s.add(c)
            await s.flush()
            return row_to_dict(c), True

    async def get(self, complaint_id: int) -> dict | None:
        async with self.session() as s:
            c = await s.get(Complaint, complaint_id)
            return row_to_dict(c) if c else None

    async def move(self, complaint_id: int, expect_status: str, changes: dict, message=None) -> dict | None:
        """Conditional status change; a reply queues its text for the complainant in the same transaction."""
        async with self.session.begin() as s:
            c = await change_row(s, Complaint, complaint_id, expect_status, changes)
            if c is None:
                return None
            if changes.get("status") == "replied":
                c.replied_at = c.updated_at
                if message and c.complainant_number:
                    s.add(text_row(to_number=c.complainant_number, body=message(c), kind="complaint_reply",
                                   language=c.language, related=f"complaint:{c.id}", not_before=c.updated_at))
            return row_to_dict(c)

    async def search(self, *, city: str | None = None, status: str | None = None, assigned_to: str | None = None,
                     caller: str | None = None, overdue: bool = False, limit: int = 200) -> list[dict]:
        q = select(Complaint).order_by(Complaint.id.desc()).limit(limit)
        for col, v in ((Complaint.city, city), (Complaint.status, status), (Complaint.assigned_to, assigned_to)):
            if v:
                q = q.where(col == v)
        if caller:      # one complainant's complaints, however each was written down
            q = q.where(same_caller(Complaint.complainant_number, caller))
        if overdue:
            q = q.where(Complaint.due_at < utcnow(), Complaint.status.in_(("received", "assigned")))
        async with self.session() as s:
            return [row_to_dict(c) for c in (await s.execute(q)).scalars().all()]
