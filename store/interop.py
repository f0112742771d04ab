"""Handoffs to and from partners, the partner outbox (claims with leases, retries, dead letters),
inbound request records (replays, idempotency) and the command center's view of city nodes."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from store.engine import Database, row_to_dict
from store.models import (CallbackTask, CityNode, FederatedEvent, FederationNonce, Handoff, InboundRequest,
                          NodeSequence, OutboxMessage, Ticket)
from store.models import ID_MAX


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Replay(Exception):
    """This nonce was used before."""


def outbox_row(*, partner: str, kind: str, payload: dict, key: str, related: str, language: str = "",
               city: str = "") -> OutboxMessage:
    now = _now()
    return OutboxMessage(channel="http", kind=kind, to_number=city, language=language,
                         body="", related=related, status="pending", not_before=now, created_at=now, updated_at=now,
                         partner=partner, payload=json.dumps(payload, ensure_ascii=False, default=str),
                         idempotency_key=key, attempts=0, last_error="", worker="")


class InteropStore:
    def __init__(self, db: Database, node: str):
        self.session = db.session
        self.node = node

    # ---- 12348 -> partner
    async def hand_off(self, ticket_id: int, partner: str, consent: bool, by: str, payload_for, outcome: str,
                       expect_status: str) -> dict | None:
        """Hand a ticket to a partner: the handoff, its outbox message and the ticket's move to
        'referred' in one transaction (None if the ticket moved meanwhile)."""
        now = _now()
        async with self.session.begin() as s:
            t = await s.get(Ticket, ticket_id, with_for_update=True)
            if t is None or t.status != expect_status:
                return None
            h = Handoff(direction="out", partner=partner, ticket_id=t.id, city=t.city, consent=consent,
                        consent_by=by if consent else "", status="pending", partner_ticket_id="", status_seq=0,
                        note="", created_at=now, updated_at=now)
            s.add(h)
            await s.flush()
            t.status, t.outcome, t.updated_at = "referred", outcome, now
            body = payload_for({"handoff_id": f"{self.node}-h{h.id}", "ticket_id": t.id, "city": t.city,
                                "category": t.category, "summary": t.summary, "language": t.language,
                                "caller_number": t.caller_number, "caller_name": "",
                                "created_at": now.isoformat()})
            s.add(outbox_row(partner=partner, kind="handoff", payload=body, key=f"{self.node}-h{h.id}",
                             related=f"ticket:{t.id}", language=t.language, city=t.city))
            return row_to_dict(h)

    async def handoffs(self, *, ticket_id: int | None = None, partner: str | None = None,
                       cities: set[str] | None = None, limit: int = 200) -> list[dict]:
        q = select(Handoff).order_by(Handoff.id.desc()).limit(limit)
        if ticket_id is not None:
            q = q.where(Handoff.ticket_id == ticket_id)
        if partner:
            q = q.where(Handoff.partner == partner)
        if cities is not None:
            q = q.where(Handoff.city.in_(cities))
        async with self.session() as s:
            return [row_to_dict(h) for h in (await s.execute(q)).scalars().all()]

    # ---- the outbox
    async def claim(self, worker: str, lease_seconds: float, limit: int = 20) -> list[dict]:
        now = _now()
        due = and_(OutboxMessage.channel == "http",
                   or_(and_(OutboxMessage.status == "pending", OutboxMessage.not_before <= now),
                       and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now)))
        out = []
        async with self.session.begin() as s:
            ids = (await s.execute(select(OutboxMessage.id).where(due).order_by(OutboxMessage.not_before,
                                                                                   OutboxMessage.id).limit(limit))).scalars().all()
            for mid in ids:
                res = await s.execute(update(OutboxMessage).where(OutboxMessage.id == mid, due).values(
                    status="sending", worker=worker, lease_until=now + timedelta(seconds=lease_seconds),
                    attempts=OutboxMessage.attempts + 1, updated_at=now))
                if res.rowcount == 1:
                    out.append(mid)
            rows = (await s.execute(select(OutboxMessage).where(OutboxMessage.id.in_(out)))).scalars().all() if out else []
            return [row_to_dict(m) for m in sorted(rows, key=lambda m: m.id)]

    async def settle(self, message_id: int, worker: str, *, status: str, error: str = "",
                     retry_at: datetime | None = None, on_delivered=None) -> bool:
        """Record a delivery attempt's end: sent, dead, or pending again at ``retry_at``. Only the
        worker holding the message may; ``on_delivered(session, message)`` runs in the same
        transaction (e.g. the handoff learns the partner's ticket id)."""
        now = _now()
        async with self.session.begin() as s:
            m = await s.get(OutboxMessage, message_id, with_for_update=True)
            if m is None or m.worker != worker or m.status != "sending":
                return False
            m.status, m.last_error, m.updated_at, m.lease_until = status, error[:2000], now, None
            if status == "pending":
                m.not_before = retry_at or now
            if status == "sent":
                m.delivered_at = now
                if on_delivered is not None:
                    await on_delivered(s, m)
            return True

    async def outbox(self, *, status: str | None = None, partner: str | None = None, limit: int = 200) -> list[dict]:
        q = select(OutboxMessage).order_by(OutboxMessage.id).limit(limit)
        if status:
            q = q.where(OutboxMessage.status == status)
        if partner:
            q = q.where(OutboxMessage.partner == partner)
        async with self.session() as s:
            return [row_to_dict(m) for m in (await s.execute(q)).scalars().all()]

    async def counts(self) -> dict[str, dict[str, int]]:
        async with self.session() as s:
            rows = (await s.execute(select(OutboxMessage.partner, OutboxMessage.status, func.count())
                                    .where(OutboxMessage.channel == "http")
                                    .group_by(OutboxMessage.partner, OutboxMessage.status))).all()
        out: dict[str, dict[str, int]] = {}
        for partner, status, n in rows:
            out.setdefault(partner, {})[status] = n
        return out

    async def requeue(self, message_id: int, *, replay: bool = False) -> dict | None:
        """Operator actions: retry a dead message now, or replay a sent one (the receiver's
        idempotency makes a replay harmless: same key, same effect)."""
        allowed = ("sent",) if replay else ("dead", "pending")
        async with self.session.begin() as s:
            m = await s.get(OutboxMessage, message_id, with_for_update=True)
            if m is None or m.channel != "http" or m.status not in allowed:
                return None
            m.status, m.not_before, m.updated_at, m.last_error = "pending", _now(), _now(), ""
            if not replay:
                m.attempts = 0
            return row_to_dict(m)

    # ---- partner -> 12348
    async def seen_request(self, partner: str, nonce: str, idempotency_key: str | None) -> dict | None:
        """The stored answer for a retried Idempotency-Key; Replay if this nonce was used."""
        async with self.session() as s:
            if idempotency_key:
                r = (await s.execute(select(InboundRequest).where(InboundRequest.partner == partner,
                                                                  InboundRequest.idempotency_key == idempotency_key))
                     ).scalar_one_or_none()
                if r is not None:
                    return {"status": r.status_code, "body": json.loads(r.response or "{}")}
            if (await s.execute(select(InboundRequest.id).where(InboundRequest.partner == partner,
                                                                 InboundRequest.nonce == nonce))).first():
                raise Replay(nonce)
        return None

    async def record_request(self, s, partner: str, nonce: str, idempotency_key: str | None, path: str,
                             status: int, body: dict) -> None:
        s.add(InboundRequest(partner=partner, nonce=nonce, idempotency_key=idempotency_key or None, path=path,
                             status_code=status, response=json.dumps(body, ensure_ascii=False, default=str),
                             received_at=_now()))
        await s.flush()   # a concurrent replay fails here, before anything else is committed

    async def receive_ticket(self, partner: str, nonce: str, idempotency_key: str | None, path: str, doc,
                             deadline_hours: float) -> dict:
        """A partner's legal question: a ticket, a callback task in the city's queue and the handoff
        record, with the request record, in one transaction. Replay/IntegrityError if seen."""
        now = _now()
        try:
            async with self.session.begin() as s:
                known = (await s.execute(select(Handoff).where(
                    Handoff.direction == "in", Handoff.partner == partner,
                    Handoff.partner_ticket_id == doc.partner_ticket_id))).scalar_one_or_none()
                if known is not None:   # the same ticket sent again under another key: same answer
                    body = {"ticket_id": known.ticket_id, "handoff_ref": f"{self.node}-h{known.id}", "duplicate": True}
                    await self.record_request(s, partner, nonce, idempotency_key, path, 200, body)
                    return {"status": 200, "body": body}
                t = Ticket(call_id=None, source="partner", city=doc.city, caller_number=doc.caller_number,
                           language=doc.language, agent="", green="", category="", answer="", outcome="",
                           summary=f"[{partner} {doc.partner_ticket_id}] {doc.question}", follow_up=False,
                           status="open", due_at=now + timedelta(hours=deadline_hours), created_at=now, updated_at=now)
                s.add(t)
                await s.flush()
                h = Handoff(direction="in", partner=partner, ticket_id=t.id, city=doc.city, consent=doc.consent,
                            consent_by=partner if doc.consent else "", status="received",
                            partner_ticket_id=doc.partner_ticket_id, status_seq=0, note="", created_at=now, updated_at=now)
                s.add(h)
                await s.flush()
                if doc.consent:
                    s.add(CallbackTask(call_id=f"handoff:{h.id}", caller_number=doc.caller_number, city=doc.city,
                                       language=doc.language, reason="partner_referral", status="pending",
                                       attempts=0, voicemail="", created_at=now, updated_at=now))
                body = {"ticket_id": t.id, "handoff_ref": f"{self.node}-h{h.id}", "callback": doc.consent}
                await self.record_request(s, partner, nonce, idempotency_key, path, 201, body)
                return {"status": 201, "body": body}
        except IntegrityError:
            raise Replay(nonce) from None

    async def receive_status(self, partner: str, nonce: str, idempotency_key: str | None, path: str, doc) -> dict:
        """A status update on a handoff: applied if newer than what we have (duplicates and late,
        out-of-order updates change nothing but are acknowledged)."""
        ref = doc.handoff_ref
        prefix = f"{self.node}-h"
        try:
            async with self.session.begin() as s:
                h = None
                hid = ref[len(prefix):] if ref.startswith(prefix) else ""
                # ASCII digits within the id column's range: "²" passed isdigit() but not int(), and a
                # 60-digit id could not be bound (each was a 500 to the partner)
                if hid.isascii() and hid.isdigit() and 0 < int(hid) <= ID_MAX:
                    h = await s.get(Handoff, int(hid), with_for_update=True)
                if h is None or h.partner != partner or h.direction != "out":
                    body = {"error": f"no handoff {ref!r} to {partner}"}
                    await self.record_request(s, partner, nonce, idempotency_key, path, 404, body)
                    return {"status": 404, "body": body}
                applied = doc.seq > h.status_seq
                if applied:
                    h.status, h.status_seq, h.status_at, h.updated_at = doc.status, doc.seq, doc.at, _now()
                    h.partner_ticket_id = doc.partner_ticket_id or h.partner_ticket_id
                    h.note = doc.note
                body = {"applied": applied, "status": h.status, "seq": h.status_seq}
                await self.record_request(s, partner, nonce, idempotency_key, path, 200, body)
                return {"status": 200, "body": body}
        except IntegrityError:
            raise Replay(nonce) from None



async def status_to_partner(s, ticket: Ticket, node: str) -> None:
    """Inside a ticket change's transaction: tell the partner that handed us this ticket (our
    StatusUpdate document, as published in the interop OpenAPI)."""
    h = (await s.execute(select(Handoff).where(Handoff.direction == "in", Handoff.ticket_id == ticket.id))
         ).scalar_one_or_none()
    if h is None:
        return
    status = {"in_progress": "in_progress", "resolved": "resolved", "referred": "in_progress",
              "closed": "closed"}.get(ticket.status, "accepted")
    if status == h.status and h.status_seq:
        return       # an edit that does not change the state is not news to the partner
    h.status_seq += 1
    h.status, h.updated_at = status, _now()
    doc = {"schema_version": 1, "handoff_ref": h.partner_ticket_id, "partner_ticket_id": f"{node}-t{ticket.id}",
           "status": h.status, "seq": h.status_seq, "at": _now().isoformat(), "note": ticket.answer[:2000]}
    s.add(outbox_row(partner=h.partner, kind="status", payload=doc, key=f"{node}-h{h.id}-s{h.status_seq}",
                     related=f"ticket:{ticket.id}", city=h.city))


async def next_seq(s, name: str) -> int:
    """The next number of a gap-free counter, inside the caller's transaction."""
    row = await s.get(NodeSequence, name, with_for_update=True)
    if row is None:
        row = NodeSequence(name=name, value=0)
        s.add(row)
    row.value += 1
    await s.flush()
    return row.value


async def ticket_event(s, ticket: Ticket, kind: str, node: str) -> None:
    """Inside a ticket's transaction on a city node: the event for the command center, numbered
    without gaps so the command center can tell what it has not received yet."""
    seq = await next_seq(s, "ticket_events")
    doc = {"schema_version": 1, "node": node, "seq": seq, "kind": kind,
           "ticket": {k: v for k, v in row_to_dict(ticket).items() if k != "caller_number"}}
    s.add(outbox_row(partner="command_center", kind="ticket_event", payload=doc, key=f"{node}-e{seq}",
                     related=f"ticket:{ticket.id}", city=ticket.city))


class FederationStore:
    """Command-center node: what each city node last reported, and its ticket events (once each)."""

    def __init__(self, db: Database):
        self.session = db.session

    async def use_nonce(self, node: str, nonce: str, keep_seconds: float) -> None:
        """Record a city node's nonce; Replay if it was used before (by any process, before any
        restart). Nonces older than ``keep_seconds`` are dropped: their timestamps no longer pass."""
        now = _now()
        try:
            async with self.session.begin() as s:
                await s.execute(delete(FederationNonce).where(FederationNonce.seen_at < now - timedelta(seconds=keep_seconds)))
                s.add(FederationNonce(node=node, nonce=nonce, seen_at=now))
        except IntegrityError:      # the unique (node, nonce): also a concurrent replay
            raise Replay(nonce) from None

    async def report(self, doc) -> None:
        now = _now()
        async with self.session.begin() as s:
            n = await s.get(CityNode, doc.node, with_for_update=True)
            if n is None:
                n = CityNode(node=doc.node, ticket_seq=0)
                s.add(n)
            n.cities, n.last_seen = ",".join(doc.cities), now
            n.report = doc.model_dump_json()

    async def event(self, doc) -> bool:
        """Store a ticket event once; True if it was new. Advances the node's contiguous mark."""
        try:
            async with self.session.begin() as s:
                if (await s.execute(select(FederatedEvent.id).where(FederatedEvent.node == doc.node,
                                                                    FederatedEvent.seq == doc.seq))).first():
                    return False
                s.add(FederatedEvent(node=doc.node, seq=doc.seq, kind=doc.kind, city=str(doc.ticket.get("city", ""))[:32],
                                     ticket_id=int(doc.ticket.get("id") or 0),
                                     ticket=json.dumps(doc.ticket, ensure_ascii=False, default=str), received_at=_now()))
                n = await s.get(CityNode, doc.node, with_for_update=True)
                if n is None:
                    n = CityNode(node=doc.node, cities="", report="", ticket_seq=0)
                    s.add(n)
                await s.flush()
                seqs = (await s.execute(select(FederatedEvent.seq).where(
                    FederatedEvent.node == doc.node, FederatedEvent.seq > n.ticket_seq).order_by(FederatedEvent.seq))).scalars()
                for seq in seqs:
                    if seq != n.ticket_seq + 1:
                        break
                    n.ticket_seq = seq
                return True
        except IntegrityError:      # the same event delivered concurrently
            return False

    async def nodes(self) -> list[dict]:
        async with self.session() as s:
            rows = (await s.execute(select(CityNode).order_by(CityNode.node))).scalars().all()
            counts = dict((await s.execute(select(FederatedEvent.node, func.count()).group_by(FederatedEvent.node))).all())
        out = []
        for n in rows:
            report = json.loads(n.report) if n.report else {}
            out.append({"node": n.node, "cities": [c for c in n.cities.split(",") if c], "report": report,
                        "last_seen": n.last_seen, "events_contiguous": n.ticket_seq,
                        "events_received": counts.get(n.node, 0), "events_sent": report.get("ticket_seq", 0)})
        return out

    async def events(self, node: str | None = None, limit: int = 500) -> list[dict]:
        q = select(FederatedEvent).order_by(FederatedEvent.id.desc()).limit(limit)
        if node:
            q = q.where(FederatedEvent.node == node)
        async with self.session() as s:
            return [{**row_to_dict(e), "ticket": json.loads(e.ticket)} for e in (await s.execute(q)).scalars().all()]


async def sequence_value(db: Database, name: str) -> int:
    async with db.session() as s:
        row = await s.get(NodeSequence, name)
        return row.value if row else 0
