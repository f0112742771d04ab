"""The statistics' rows (backoffice/stats.py: /api/stats, hotline stats): call records, tickets,
appointments, complaints, survey scores and texts to callers of a period, in one read."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import and_, select

from store.calls import KPI_FACTS
from store.engine import Database
from store.models import ID_MAX, Appointment, CallRecord, Complaint, FollowUp, Handoff, OutboxMessage, SmsPart, Ticket


async def report_rows(db: Database, since: datetime, until: datetime, city: str | None = None
                      ) -> tuple[list[dict], list[dict], list[dict], list[dict], list[dict]]:
    """Call records and tickets in [since, until) and appointments on the local dates in between,
    for backoffice/stats.py. ``since`` and ``until`` carry the hotline's timezone."""
    day_from, day_until = since.date().isoformat(), until.date().isoformat()
    # timestamps are stored in UTC, and SQLite compares the text as written: compare in UTC
    since, until = since.astimezone(timezone.utc), until.astimezone(timezone.utc)
    async with db.session() as s:
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


# what a text's ``related`` names, and so whose city it counts in (store/sms.py SmsStore.city_of)
ABOUT = {"appointment": Appointment, "ticket": Ticket, "complaint": Complaint}


async def text_rows(db: Database, since: datetime, until: datetime, city: str | None = None) -> list[dict]:
    """Texts to callers queued in [since, until): when, their state, ``sent`` (the SMSC acknowledged
    every part: parts go one after the other, so the last part's acknowledgement says it) and the city of
    the appointment, ticket or complaint they are about ('' for none)."""
    since, until = since.astimezone(timezone.utc), until.astimezone(timezone.utc)
    sent = select(SmsPart.id).where(and_(SmsPart.message_id == OutboxMessage.id,
                                         SmsPart.part == SmsPart.parts)).exists()
    q = select(OutboxMessage.created_at, OutboxMessage.related, OutboxMessage.status, sent.label("sent")).where(
        OutboxMessage.channel == "sms", OutboxMessage.created_at >= since, OutboxMessage.created_at < until)
    cities: dict[str, str] = {}
    async with db.session() as s:
        rows = [dict(r._mapping) for r in await s.execute(q)]
        refs: dict[str, set[int]] = {k: set() for k in ABOUT}
        for r in rows:
            kind, _, ref = r["related"].partition(":")
            if kind in refs and ref.isdigit() and 0 < int(ref) <= ID_MAX:
                refs[kind].add(int(ref))
        for kind, model in ABOUT.items():     # by primary key, a few hundred at a time
            ids = sorted(refs[kind])
            for i in range(0, len(ids), 500):
                for id_, c in await s.execute(select(model.id, model.city).where(model.id.in_(ids[i:i + 500]))):
                    cities[f"{kind}:{id_}"] = c or ""
    out = []
    for r in rows:
        c = cities.get(r["related"], "")
        if not city or c == city:
            out.append({"created_at": r["created_at"], "status": r["status"], "sent": bool(r["sent"]), "city": c})
    return out


async def breakdown_rows(db: Database, since: datetime, until: datetime, city: str | None = None
                         ) -> tuple[list[dict], list[dict], list[dict]]:
    """What the provincial report breaks down (backoffice/provincial.py): calls (green category,
    language, status), tickets (county, outcome) and handoffs to partners (partner, status) in
    [since, until)."""
    since, until = since.astimezone(timezone.utc), until.astimezone(timezone.utc)
    async with db.session() as s:
        cq = select(CallRecord.city, CallRecord.green, CallRecord.language, CallRecord.status, CallRecord.outcome,
                    CallRecord.answered_at).where(CallRecord.started_at >= since, CallRecord.started_at < until)
        tq = select(Ticket.city, Ticket.county, Ticket.outcome, Ticket.green, Ticket.language).where(
            Ticket.created_at >= since, Ticket.created_at < until)
        hq = select(Handoff.city, Handoff.partner, Handoff.status).where(
            Handoff.direction == "out", Handoff.created_at >= since, Handoff.created_at < until)
        if city:
            cq, tq, hq = cq.where(CallRecord.city == city), tq.where(Ticket.city == city), hq.where(Handoff.city == city)
        out = []
        for q in (cq, tq, hq):
            out.append([dict(r._mapping) for r in await s.execute(q)])
    return tuple(out)
