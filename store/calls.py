"""Call records: the record writer's batched upsert, what the controller reloads after a restart,
the desk's views and notes, and the facts the figures are computed from (core/kpi.py)."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.calls import CallState
from core.routing import identifies_caller
from store.engine import Database, fitted, from_epoch, row_to_dict, same_caller, to_epoch, utcnow
from store.models import CallRecord

# what core/kpi.py reads of a call record: every query feeding the figures selects these
KPI_FACTS = (CallRecord.call_id, CallRecord.city, CallRecord.agent, CallRecord.status, CallRecord.outcome,
             CallRecord.green, CallRecord.started_at, CallRecord.queued_at, CallRecord.answered_at,
             CallRecord.ended_at, CallRecord.talk_seconds)

record_to_dict = row_to_dict


def _call_upsert(dialect: str):
    """Insert a call record, or update every column but the agent's notes: a Core statement built once,
    so SQLAlchemy compiles it once and runs a batch as one executemany."""
    table = CallRecord.__table__
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    # notes and the browser phone's quality figures come from the desk, not from Asterisk's events
    keep = {"id", "call_id", "notes", "quality_jitter_ms", "quality_loss_pct", "quality_rtt_ms"}
    return stmt.on_conflict_do_update(index_elements=[table.c.call_id],
                                      set_={c.name: stmt.excluded[c.name] for c in table.c if c.name not in keep})


def _record_values(c: CallState, now: datetime, node: str = "") -> dict:
    return fitted(CallRecord, {"node": node,
        "call_id": c.call_id, "channel": c.channel, "dialed_number": c.dialed_number,
        "caller_number": c.caller_number, "city": c.city, "area_code": c.area_code, "language": c.language,
        "ivr_path": c.ivr_path, "service": c.service, "queue": c.queue, "overflow": c.overflow,
        "green": c.green, "after_hours": c.after_hours, "agent": c.agent, "recording_path": c.recording,
        "transfers": c.transfers, "status": c.status, "outcome": c.outcome, "hangup_cause": c.hangup_cause,
        "hangup_cause_text": c.hangup_cause_text, "started_at": from_epoch(c.started_at),
        "queued_at": from_epoch(c.queued_at), "answered_at": from_epoch(c.answered_at),
        "ended_at": from_epoch(c.ended_at), "wait_seconds": c.wait_seconds, "talk_seconds": c.talk_seconds,
        "updated_at": now})


def _record_state(r: CallRecord) -> CallState:
    return CallState(
        call_id=r.call_id, channel=r.channel, dialed_number=r.dialed_number, caller_number=r.caller_number,
        city=r.city, area_code=r.area_code, language=r.language, ivr_path=r.ivr_path, service=r.service,
        queue=r.queue, overflow=r.overflow, green=r.green, after_hours=r.after_hours, agent=r.agent,
        recording=r.recording_path, transfers=r.transfers, status=r.status,
        outcome=r.outcome, hangup_cause=r.hangup_cause, hangup_cause_text=r.hangup_cause_text,
        started_at=to_epoch(r.started_at), queued_at=to_epoch(r.queued_at),
        answered_at=to_epoch(r.answered_at), ended_at=to_epoch(r.ended_at))


class CallStore:
    def __init__(self, db: Database, node: str = ""):
        self.session = db.session
        self.engine = db.engine
        self.node = node          # the cluster node whose calls this writer records ("" = the one node)
        self._upsert_call = _call_upsert(db.dialect)

    async def save_call(self, call: CallState) -> None:
        await self.save_calls([call])

    async def save_calls(self, calls: list[CallState]) -> None:
        """Write the newest state of several calls in one statement (insert, or update all but the agent's
        notes): the record writer's batch under load, one round trip instead of a select and an update
        per call."""
        if not calls:
            return
        now = utcnow()
        rows = [_record_values(c, now, self.node) for c in calls]
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
        """Calls the store still believes are in progress on this node (to merge with Asterisk after a
        restart); another node's calls are that node's."""
        async with self.session() as s:
            rows = (await s.execute(select(CallRecord).where(CallRecord.status != "ended",
                                                             CallRecord.node == self.node))).scalars().all()
        return [_record_state(r) for r in rows]

    async def close_lost_node(self, node: str, reason: str, outcome: str = "node_lost") -> list[str]:
        """Every call still in progress on a node that died: ended, failed with ``reason`` (their media
        was there: they cannot be saved, but each keeps its record). Returns their ids."""
        now = utcnow()
        async with self.session.begin() as s:
            rows = (await s.execute(select(CallRecord).where(CallRecord.status != "ended", CallRecord.node == node)
                                    .with_for_update())).scalars().all()
            for r in rows:
                r.status, r.outcome, r.hangup_cause_text = "ended", outcome, reason[:64]
                r.ended_at, r.updated_at = r.ended_at or now, now
                if r.answered_at is not None and r.talk_seconds is None:
                    r.talk_seconds = round(now.timestamp() - to_epoch(r.answered_at), 3)
            return [r.call_id for r in rows]

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

    async def set_notes(self, call_id: str, notes: str) -> bool:
        """The desk's notes on a call; the row exists from the call's first event."""
        async with self.session.begin() as s:
            res = await s.execute(update(CallRecord).where(CallRecord.call_id == call_id).values(notes=notes))
            return res.rowcount > 0

    async def set_quality(self, call_id: str, jitter_ms: float, loss_pct: float, rtt_ms: float | None) -> bool:
        """The browser phone's quality figures for its call (each report replaces the last: the desk
        sends the call's figures so far)."""
        async with self.session.begin() as s:
            res = await s.execute(update(CallRecord).where(CallRecord.call_id == call_id).values(
                quality_jitter_ms=jitter_ms, quality_loss_pct=loss_pct, quality_rtt_ms=rtt_ms))
            return res.rowcount > 0

    async def caller_history(self, number: str, exclude_call: str = "", limit: int = 10, alias: str = "") -> list[dict]:
        """Earlier calls from this number, newest first (the screen-pop's 'previous calls'); none for
        an empty or withheld number (those calls are not one caller's). ``alias``, the number's
        pseudonym (store/privacy.py), also finds the calls past their retention period."""
        if not identifies_caller(number):
            return []
        q = (select(CallRecord).where(same_caller(CallRecord.caller_number, number, alias),
                                      CallRecord.call_id != exclude_call)
             .order_by(CallRecord.id.desc()).limit(limit))
        async with self.session() as s:
            return [record_to_dict(r) for r in (await s.execute(q)).scalars().all()]

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
                d[k] = to_epoch(d[k])
            out.append(d)
        return out
