"""Transcripts (and their jobs), retention and the full-text search index. Alerts raised from a
transcript are kept by store/alerts.py (in the same transaction as the transcript)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from store.alerts import add_alert_in
from store.engine import Database, from_epoch, iso, row_to_dict, utcnow
from store.models import SearchDoc, Ticket, Transcript

SNIPPET = 160


def transcript_to_dict(t: Transcript, with_segments: bool = True) -> dict:
    d = row_to_dict(t)
    d["segments"] = json.loads(t.segments or "[]") if with_segments else None
    d["suggested_categories"] = [c for c in (t.suggested_categories or "").split(",") if c]
    d.pop("worker", None)
    return d


def job_to_dict(t: Transcript) -> dict:
    """A job in the transcription queue: status and metadata, never the words (the text is only
    given out by ``get``, behind the audited GET /api/calls/{id}/transcript?reason=...)."""
    d = transcript_to_dict(t, with_segments=False)
    for key in ("text", "segments"):
        d.pop(key, None)
    return d


async def upsert_doc(s, *, kind: str, ref: str, call_id: str, city: str, agent: str, at: datetime,
                     raw: str, tokens: str) -> None:
    """Index (or re-index) one document inside the caller's transaction."""
    doc = (await s.execute(select(SearchDoc).where(SearchDoc.kind == kind, SearchDoc.ref == ref))).scalar_one_or_none()
    if not tokens.strip():
        if doc is not None:
            await s.delete(doc)
        return
    if doc is None:
        s.add(SearchDoc(kind=kind, ref=ref, call_id=call_id, city=city, agent=agent, at=at, text=raw, tokens=tokens))
    else:
        doc.call_id, doc.city, doc.agent, doc.text, doc.tokens = call_id, city, agent, raw, tokens


class TranscriptStore:
    """Transcription jobs (claimed with leases by transcription/service.py), their transcripts,
    retention, and the full-text search index (transcripts and other documents)."""

    def __init__(self, db: Database):
        self.session = db.session
        self.dialect = db.dialect

    # ---- jobs
    async def enqueue(self, *, call_id: str, city: str, language: str, agent: str, recording: str,
                      call_started_at: float | None, status: str = "pending", reason: str = "") -> bool:
        """One transcript per call; a second enqueue of the same call changes nothing."""
        now = utcnow()
        try:
            async with self.session.begin() as s:
                if (await s.execute(select(Transcript.id).where(Transcript.call_id == call_id))).first():
                    return False
                s.add(Transcript(call_id=call_id, city=city, language=language, agent=agent, recording=recording,
                                 status=status, reason=reason, attempts=0, worker="", next_try_at=now,
                                 segments="[]", text="", suggested_categories="",
                                 call_started_at=from_epoch(call_started_at), created_at=now, updated_at=now))
            return True
        except IntegrityError:   # enqueued concurrently
            return False

    async def claim(self, worker: str, lease_seconds: float, max_attempts: int) -> dict | None:
        """Take the oldest due job (or one whose worker stopped renewing its lease). Safe with many
        workers: the conditional UPDATE lets exactly one of them have it."""
        now = utcnow()
        due = or_(and_(Transcript.status == "pending", Transcript.next_try_at <= now),
                  and_(Transcript.status == "running", Transcript.lease_until < now))
        async with self.session.begin() as s:
            # a job that has killed its workers max_attempts times is not tried again
            await s.execute(update(Transcript).where(
                Transcript.status == "running", Transcript.lease_until < now, Transcript.attempts >= max_attempts)
                .values(status="failed", reason="the worker stopped during every attempt", updated_at=now))
        for _ in range(3):
            async with self.session.begin() as s:
                ids = (await s.execute(select(Transcript.id).where(due).order_by(Transcript.next_try_at, Transcript.id)
                                       .limit(5))).scalars().all()
                if not ids:
                    return None
                for job_id in ids:
                    res = await s.execute(update(Transcript).where(Transcript.id == job_id, due).values(
                        status="running", worker=worker, lease_until=now + timedelta(seconds=lease_seconds),
                        attempts=Transcript.attempts + 1, updated_at=now))
                    if res.rowcount == 1:
                        t = await s.get(Transcript, job_id)
                        await s.refresh(t)
                        return transcript_to_dict(t, with_segments=False)
        return None

    async def renew(self, job_id: int, worker: str, lease_seconds: float) -> bool:
        async with self.session.begin() as s:
            res = await s.execute(update(Transcript).where(
                Transcript.id == job_id, Transcript.worker == worker, Transcript.status == "running")
                .values(lease_until=utcnow() + timedelta(seconds=lease_seconds)))
            return res.rowcount == 1

    async def complete(self, job_id: int, worker: str, result: dict, tokens: str, categories: list[str],
                       alerts: list[dict]) -> tuple[bool, list[dict]]:
        """Store the transcript, index it and raise its alerts in one transaction, only if this
        worker still holds the job (a worker that lost its lease must not complete it twice).
        Returns (completed, alerts actually raised)."""
        now = utcnow()
        async with self.session.begin() as s:
            t = await s.get(Transcript, job_id, with_for_update=True)
            if t is None or t.worker != worker or t.status != "running":
                return False, []
            t.status, t.reason, t.done_at, t.updated_at = "done", "", now, now
            t.segments = json.dumps(result["segments"], ensure_ascii=False)
            t.text, t.audio_seconds = result["text"], result.get("audio_seconds")
            t.suggested_categories = ",".join(categories)
            await upsert_doc(s, kind="transcript", ref=t.call_id, call_id=t.call_id, city=t.city, agent=t.agent,
                             at=t.call_started_at or now, raw=t.text, tokens=tokens)
            raised = []
            for a in alerts:
                row = await add_alert_in(s, **a)
                if row is not None:
                    raised.append(row)
            return True, raised

    async def finish(self, job_id: int, worker: str, status: str, reason: str, retry_at: datetime | None = None) -> bool:
        """A job that ends without a transcript: no_model, failed, or back to pending for a retry."""
        async with self.session.begin() as s:
            res = await s.execute(update(Transcript).where(
                Transcript.id == job_id, Transcript.worker == worker, Transcript.status == "running").values(
                status="pending" if retry_at else status, reason=reason, next_try_at=retry_at or utcnow(),
                lease_until=None, updated_at=utcnow()))
            return res.rowcount == 1

    async def release(self, job_id: int, worker: str) -> None:
        """Give a job back without counting it (this worker is shutting down)."""
        async with self.session.begin() as s:
            await s.execute(update(Transcript).where(
                Transcript.id == job_id, Transcript.worker == worker, Transcript.status == "running").values(
                status="pending", lease_until=None, attempts=Transcript.attempts - 1, updated_at=utcnow()))

    async def backlog(self) -> tuple[dict[str, int], datetime | None]:
        """Jobs by status, and when the oldest job still waiting (pending or running) was queued."""
        async with self.session() as s:
            counts = dict((await s.execute(select(Transcript.status, func.count()).group_by(Transcript.status))).all())
            oldest = (await s.execute(select(func.min(Transcript.created_at))
                                      .where(Transcript.status.in_(("pending", "running"))))).scalar()
        if oldest is not None and oldest.tzinfo is None:    # SQLite hands naive UTC back
            oldest = oldest.replace(tzinfo=timezone.utc)
        return counts, oldest

    async def get(self, call_id: str) -> dict | None:
        async with self.session() as s:
            t = (await s.execute(select(Transcript).where(Transcript.call_id == call_id))).scalar_one_or_none()
            return transcript_to_dict(t) if t else None

    async def search_jobs(self, *, status: str | None = None, cities: set[str] | None = None, limit: int = 100) -> list[dict]:
        q = select(Transcript).order_by(Transcript.id.desc()).limit(limit)
        if status:
            q = q.where(Transcript.status == status)
        if cities is not None:
            q = q.where(Transcript.city.in_(cities))
        async with self.session() as s:
            return [job_to_dict(t) for t in (await s.execute(q)).scalars().all()]

    # ---- retention
    async def expired_recordings(self, recordings_days: float, limit: int = 500) -> list[dict]:
        cutoff = utcnow() - timedelta(days=recordings_days)
        async with self.session() as s:
            rows = (await s.execute(select(Transcript.id, Transcript.recording).where(
                Transcript.recording_purged_at.is_(None), Transcript.recording != "",
                Transcript.created_at < cutoff).limit(limit))).all()
        return [{"id": r.id, "recording": r.recording} for r in rows]

    async def mark_recording_purged(self, job_id: int) -> None:
        async with self.session.begin() as s:
            await s.execute(update(Transcript).where(Transcript.id == job_id).values(recording_purged_at=utcnow()))

    async def purge_transcripts(self, transcripts_days: float) -> int:
        """Transcripts past their retention lose their text and leave the search index."""
        cutoff = utcnow() - timedelta(days=transcripts_days)
        async with self.session.begin() as s:
            rows = (await s.execute(select(Transcript).where(
                Transcript.status == "done", Transcript.created_at < cutoff).with_for_update())).scalars().all()
            for t in rows:
                t.segments, t.text, t.status, t.reason, t.updated_at = "[]", "", "purged", "retention period over", utcnow()
                await s.execute(delete(SearchDoc).where(SearchDoc.kind == "transcript", SearchDoc.ref == t.call_id))
            return len(rows)

    # ---- search
    async def index(self, **doc) -> None:
        async with self.session.begin() as s:
            await upsert_doc(s, **doc)

    async def search(self, words: list[str], *, cities: set[str] | None = None, agent: str | None = None,
                     since: datetime | None = None, until: datetime | None = None, category: str | None = None,
                     limit: int = 50) -> list[dict]:
        """Documents containing every word, newest first, within the viewer's cities."""
        if not words:
            return []
        if self.dialect == "sqlite":
            match = " AND ".join('"' + w.replace('"', '""') + '"' for w in words)
            q = select(SearchDoc).where(SearchDoc.id.in_(
                select(text("rowid")).select_from(text("search_fts")).where(text("search_fts MATCH :m"))))
            params = {"m": match}
        else:
            q = select(SearchDoc).where(text("to_tsvector('simple', search_docs.tokens) @@ plainto_tsquery('simple', :m)"))
            params = {"m": " ".join(words)}
        q = q.where(SearchDoc.kind != "knowledge")   # the knowledge base has its own search (store/knowledge.py)
        if cities is not None:
            q = q.where(SearchDoc.city.in_(cities))
        if agent:
            q = q.where(SearchDoc.agent == agent)
        if since:
            q = q.where(SearchDoc.at >= since)
        if until:
            q = q.where(SearchDoc.at < until)
        if category:
            q = q.where(SearchDoc.call_id.in_(select(Ticket.call_id).where(Ticket.category == category)))
        q = q.order_by(SearchDoc.at.desc(), SearchDoc.id.desc()).limit(limit)
        async with self.session() as s:
            rows = (await s.execute(q, params)).scalars().all()
        out = []
        for d in rows:
            out.append({"kind": d.kind, "ref": d.ref, "call_id": d.call_id, "city": d.city, "agent": d.agent,
                        "at": iso(d.at),
                        "snippet": _snippet(d.text, words)})
        return out


def _snippet(raw: str, words: list[str]) -> str:
    """The text around the first word found (so the reader sees why it matched)."""
    low = raw.lower()
    pos = min((low.find(w.lower()) for w in words if low.find(w.lower()) >= 0), default=0)
    start = max(0, pos - SNIPPET // 3)
    return ("…" if start else "") + raw[start:start + SNIPPET] + ("…" if start + SNIPPET < len(raw) else "")
