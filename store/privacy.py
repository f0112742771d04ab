"""Personal data over time (PIPL): caller numbers past their retention period replaced by their keyed
hash (core/privacy.py), and one person's data exported on request, audited.

Where caller numbers are kept, and what happens to each once its row is settled and older than the
period: call_records, tickets, follow_ups, callback_tasks, appointments (caller_number), complaints
(complainant_number), SMS outbox messages (to_number) and partner messages' JSON payloads
(caller_number; caller_name emptied) get the pseudonym. opt_outs keep the clear number: the list exists
to honour a request never to be called, which needs the number for as long as we may call anyone.
Transcripts and the search index have no number column (their free text, and recordings, have their
own retention: config/hotline.yaml transcription.retention). The audit log names the numbers the
numbering plan refused (mostly not callers': toll-fraud attempts); its retention is its own.
"""
from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import and_, or_, select, update

from core.numbering import to_e164
from core.privacy import PREFIX, clear_forms, cutoff, is_pseudonym, pseudonym
from store.engine import Database, iso, row_to_dict, utcnow
from store.models import (Appointment, AuditEntry, CallbackTask, CallRecord, Complaint, FollowUp, Handoff,
                          OptOut, OutboxMessage, Ticket, Transcript)

BATCH = 500
_UNSETTLED_OUTBOX = ("pending", "sending", "submitted")   # submitted: a text waiting for its receipt


def _number_columns(cut: datetime) -> list[tuple[str, type, object, object]]:
    """(name, table, number column, when a row is settled and older than ``cut``): a row still in use
    (a call in progress, an open ticket, a survey or callback not yet made) keeps its number."""
    return [
        ("calls", CallRecord, CallRecord.caller_number, and_(CallRecord.status == "ended", CallRecord.started_at < cut)),
        ("tickets", Ticket, Ticket.caller_number,
         and_(Ticket.status.not_in(("open", "in_progress")), Ticket.updated_at < cut)),
        ("follow_ups", FollowUp, FollowUp.caller_number,
         and_(FollowUp.status.in_(("done", "failed", "opted_out")), FollowUp.updated_at < cut)),
        ("callbacks", CallbackTask, CallbackTask.caller_number,
         and_(CallbackTask.status.in_(("done", "failed", "cancelled")), CallbackTask.updated_at < cut)),
        ("appointments", Appointment, Appointment.caller_number,
         and_(Appointment.created_at < cut, Appointment.day < cut.date().isoformat())),
        ("complaints", Complaint, Complaint.complainant_number,
         and_(Complaint.status.in_(("replied", "closed")), Complaint.updated_at < cut)),
        ("messages", OutboxMessage, OutboxMessage.to_number,
         and_(OutboxMessage.channel == "sms", OutboxMessage.status.not_in(_UNSETTLED_OUTBOX),
              OutboxMessage.created_at < cut)),
    ]


class PrivacyStore:
    def __init__(self, db: Database, key: str):
        if not key:
            raise ValueError("the privacy key (secrets file) is missing")
        self.session = db.session
        self.key = key

    def pseudonym(self, number: str) -> str:
        return pseudonym(self.key, number)

    # ---- retention
    async def purge_older_than(self, days: int, user_id: str, role: str) -> dict[str, int]:
        """``purge`` with the configured period, audited when it changed anything (counts only)."""
        cut = cutoff(utcnow(), days)
        counts = await self.purge(cut)
        if any(counts.values()):
            async with self.session.begin() as s:
                s.add(AuditEntry(at=utcnow(), user_id=user_id, role=role, action="privacy_purge", call_id="",
                                 target=f"before {iso(cut)}", allowed=True, detail=_counts(counts)))
        return counts

    async def purge(self, cut: datetime) -> dict[str, int]:
        """Replace the clear caller numbers of rows settled before ``cut`` by their pseudonyms; how many
        rows changed per table. Idempotent, in batches (a long backlog does not hold one transaction)."""
        counts = {}
        for name, model, col, settled in _number_columns(cut):
            counts[name] = await self._hash_column(model, col, settled)
        counts["partner_messages"] = await self._hash_payloads(cut)
        return counts

    async def _hash_column(self, model, col, settled) -> int:
        done, after = 0, 0
        while True:
            async with self.session.begin() as s:
                rows = (await s.execute(
                    select(model.id, col).where(settled, model.id > after, col != "", col.not_like(PREFIX + "%"))
                    .order_by(model.id).limit(BATCH))).all()
                if not rows:
                    return done
                # a withheld or non-numeric value has no pseudonym: it becomes '' (nothing kept)
                await s.execute(update(model), [{"id": i, col.key: self.pseudonym(v)} for i, v in rows])
            done, after = done + len(rows), rows[-1][0]

    async def _hash_payloads(self, cut: datetime) -> int:
        """Partner messages (handoffs) carry the number in their JSON body when the caller consented."""
        done, after = 0, 0
        settled = and_(OutboxMessage.channel == "http", OutboxMessage.status.not_in(_UNSETTLED_OUTBOX),
                       OutboxMessage.created_at < cut, OutboxMessage.payload.like('%"caller_number"%'))
        while True:
            async with self.session.begin() as s:
                rows = (await s.execute(select(OutboxMessage.id, OutboxMessage.payload)
                                        .where(settled, OutboxMessage.id > after)
                                        .order_by(OutboxMessage.id).limit(BATCH))).all()
                if not rows:
                    return done
                changes = []
                for i, text in rows:
                    try:
                        body = json.loads(text)
                    except ValueError:
                        continue
                    number = body.get("caller_number") if isinstance(body, dict) else None
                    if not isinstance(number, str) or not number or is_pseudonym(number):
                        continue
                    body["caller_number"], body["caller_name"] = self.pseudonym(number), ""
                    changes.append({"id": i, "payload": json.dumps(body, ensure_ascii=False)})
                if changes:
                    await s.execute(update(OutboxMessage), changes)
            done, after = done + len(changes), rows[-1][0]

    # ---- one person's data
    async def export(self, number: str, *, user_id: str, role: str, reason: str) -> dict:
        """Every row held about this number, in any stored form (as typed, E.164, national, or already
        replaced by its pseudonym), and the audit row of the export: who, why, and the pseudonym (the
        audit log never holds the clear number)."""
        forms = clear_forms(number)
        if not forms:
            raise ValueError("not a phone number")
        alias = self.pseudonym(number)
        match = sorted(forms | {alias})
        async with self.session.begin() as s:
            async def rows(q) -> list:
                return list((await s.execute(q)).scalars().all())
            calls = await rows(select(CallRecord).where(CallRecord.caller_number.in_(match)).order_by(CallRecord.id))
            tickets = await rows(select(Ticket).where(Ticket.caller_number.in_(match)).order_by(Ticket.id))
            call_ids = [c.call_id for c in calls] + [t.call_id for t in tickets if t.call_id]
            ticket_ids = [t.id for t in tickets]
            appointments = await rows(select(Appointment).where(Appointment.caller_number.in_(match))
                                      .order_by(Appointment.id))
            complaints = await rows(select(Complaint).where(Complaint.complainant_number.in_(match))
                                    .order_by(Complaint.id))
            related = ([f"ticket:{i}" for i in ticket_ids] + [f"appointment:{a.id}" for a in appointments]
                       + [f"complaint:{c.id}" for c in complaints])
            out = {
                "number": to_e164(number), "pseudonym": alias,
                "generated_at": iso(utcnow()),
                "calls": calls, "tickets": tickets,
                "follow_ups": await rows(select(FollowUp).where(or_(FollowUp.caller_number.in_(match),
                                                                    FollowUp.ticket_id.in_(ticket_ids)))
                                         .order_by(FollowUp.id)),
                "callbacks": await rows(select(CallbackTask).where(CallbackTask.caller_number.in_(match))
                                        .order_by(CallbackTask.id)),
                "appointments": appointments, "complaints": complaints,
                "messages": await rows(select(OutboxMessage).where(or_(
                    and_(OutboxMessage.channel == "sms", OutboxMessage.to_number.in_(match)),
                    OutboxMessage.related.in_(related))).order_by(OutboxMessage.id)),
                "handoffs": await rows(select(Handoff).where(Handoff.ticket_id.in_(ticket_ids)).order_by(Handoff.id)),
                "transcripts": await rows(select(Transcript).where(Transcript.call_id.in_(call_ids))
                                          .order_by(Transcript.id)),
                "opt_outs": await rows(select(OptOut).where(OptOut.number.in_(match))),
            }
            for k, v in out.items():
                if isinstance(v, list):
                    out[k] = [_exported(r) for r in v]
            counts = {k: len(v) for k, v in out.items() if isinstance(v, list)}
            s.add(AuditEntry(at=utcnow(), user_id=user_id, role=role, action="privacy_export", call_id="",
                             target=alias, allowed=True,
                             detail=f"reason: {reason}; rows: {_counts(counts)}"))
        return out


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in counts.items() if n) or "none"


def _exported(row) -> dict:
    d = row_to_dict(row)
    if isinstance(row, Transcript):      # the words are in text; segments repeat them with timings
        d.pop("segments", None)
        d.pop("worker", None)
    return d
