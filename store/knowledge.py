"""The legal knowledge base (法律知识库): entries and their versions (draft -> published ->
superseded | expired), the search index of the published text (search_docs kind "knowledge", the
same FTS5 / PostgreSQL engines and jieba tokens as transcripts), the entries used on tickets (attached,
texted to the caller through the SMS outbox) and the searches that found nothing."""
from __future__ import annotations

import json
from datetime import date, datetime
from typing import Callable

from sqlalchemy import delete, func, or_, select, text
from sqlalchemy.exc import IntegrityError

from core.knowledge import in_force, telling_words
from store.engine import Database, iso, row_to_dict, utcnow
from store.followups import opted_out
from store.transcripts import upsert_doc
from store.models import KnowledgeEntry, KnowledgeMiss, KnowledgeUse, KnowledgeVersion, SearchDoc
from store.sms import text_row

KIND = "knowledge"
FIELDS = ("title", "question", "answer", "summary", "laws", "keywords", "effective_from", "effective_to",
          "needs_lawyer_review")


class KnowledgeError(Exception):
    """A change the entry's state does not allow (the API answers 409)."""


class OptedOut(KnowledgeError):
    pass


def version_to_dict(v: KnowledgeVersion) -> dict:
    d = row_to_dict(v)
    d["laws"] = [{"law": law, "article": art} for law, art in json.loads(v.laws or "[]")]
    d["keywords"] = [w for w in (v.keywords or "").split(" ") if w]
    d["effective_to"] = v.effective_to or None
    d.pop("id", None)
    return d


def _columns(fields: dict) -> dict:
    """EntryFields (as a dict) -> the version's columns."""
    out = {k: fields[k] for k in FIELDS if k in fields}
    if "laws" in out:
        out["laws"] = json.dumps([[x["law"], x["article"]] for x in out["laws"]], ensure_ascii=False)
    if "keywords" in out:
        out["keywords"] = " ".join(w.strip() for w in out["keywords"])
    for k in ("effective_from", "effective_to"):
        if k in out:
            out[k] = out[k].isoformat() if isinstance(out[k], date) else (out[k] or "")
    return out


def _indexed_text(v: KnowledgeVersion) -> str:
    laws = " ".join(f"{law}{art}" for law, art in json.loads(v.laws or "[]"))
    return "\n".join((v.title, v.question, v.answer, v.keywords or "", laws))


class KnowledgeStore:
    """``index_text`` segments text for the search index (transcription/segment.py index_text, handed
    in by the composition root: the store imports no tokeniser)."""

    def __init__(self, db: Database, index_text: Callable[[str], str]):
        self.session = db.session
        self.dialect = db.dialect
        self.index_text = index_text

    # ---- reading
    async def _entry_dict(self, s, e: KnowledgeEntry, with_versions: bool = False) -> dict:
        d = row_to_dict(e)
        vs = (await s.execute(select(KnowledgeVersion).where(KnowledgeVersion.entry_id == e.id)
                              .order_by(KnowledgeVersion.version))).scalars().all()
        by_no = {v.version: v for v in vs}
        d["latest"] = version_to_dict(by_no[e.latest_version]) if e.latest_version in by_no else None
        d["published"] = version_to_dict(by_no[e.published_version]) if e.published_version in by_no else None
        if with_versions:
            d["versions"] = [{"version": v.version, "status": v.status, "title": v.title, "created_by": v.created_by,
                              "created_at": iso(v.created_at), "reviewed_by": v.reviewed_by,
                              "published_at": iso(v.published_at) if v.published_at else None} for v in vs]
        return d

    async def get(self, entry_id: int, with_versions: bool = True) -> dict | None:
        async with self.session() as s:
            e = await s.get(KnowledgeEntry, entry_id)
            return await self._entry_dict(s, e, with_versions) if e else None

    async def by_slug(self, slug: str) -> dict | None:
        async with self.session() as s:
            e = (await s.execute(select(KnowledgeEntry).where(KnowledgeEntry.slug == slug))).scalar_one_or_none()
            return await self._entry_dict(s, e) if e else None

    async def entries(self, *, status: str | None = None, category: str | None = None, limit: int = 500) -> list[dict]:
        q = select(KnowledgeEntry).order_by(KnowledgeEntry.category, KnowledgeEntry.id).limit(limit)
        if status:
            q = q.where(KnowledgeEntry.status == status)
        if category:
            q = q.where(KnowledgeEntry.category == category)
        async with self.session() as s:
            return [await self._entry_dict(s, e) for e in (await s.execute(q)).scalars().all()]

    # ---- changes (each one transaction; the API audits them, the versions keep who and when)
    async def create(self, *, slug: str, category: str, fields: dict, by: str) -> dict:
        now = utcnow()
        try:
            async with self.session.begin() as s:
                e = KnowledgeEntry(slug=slug, category=category, status="draft", latest_version=1,
                                   published_version=None, created_at=now, updated_at=now)
                s.add(e)
                await s.flush()
                s.add(KnowledgeVersion(entry_id=e.id, version=1, status="draft", created_by=by, created_at=now,
                                       reviewed_by="", **_columns(fields)))
                await s.flush()
                return await self._entry_dict(s, e)
        except IntegrityError:
            raise KnowledgeError(f"an entry {slug!r} exists already") from None

    async def edit(self, entry_id: int, fields: dict, by: str, *, category: str | None = None,
                   expect_version: int | None = None) -> dict | None:
        """A new draft version: the latest one with ``fields`` changed. The published version stays
        suggested until the draft is published."""
        now = utcnow()
        async with self.session.begin() as s:
            e = await s.get(KnowledgeEntry, entry_id, with_for_update=True)
            if e is None:
                return None
            if expect_version is not None and expect_version != e.latest_version:
                raise KnowledgeError(f"the entry has changed meanwhile (version {e.latest_version} now); reload it")
            last = (await s.execute(select(KnowledgeVersion).where(
                KnowledgeVersion.entry_id == e.id, KnowledgeVersion.version == e.latest_version))).scalar_one()
            cols = {k: getattr(last, k) for k in FIELDS}
            cols.update(_columns(fields))
            e.latest_version += 1
            e.updated_at = now
            if category:
                e.category = category
            if e.status == "expired":
                e.status = "draft"
            s.add(KnowledgeVersion(entry_id=e.id, version=e.latest_version, status="draft", created_by=by,
                                   created_at=now, reviewed_by="", **cols))
            await s.flush()
            return await self._entry_dict(s, e)

    async def publish(self, entry_id: int, version: int, by: str) -> dict | None:
        """Publish a draft version: it becomes the suggested text (and the search index's)."""
        now = utcnow()
        async with self.session.begin() as s:
            e = await s.get(KnowledgeEntry, entry_id, with_for_update=True)
            if e is None:
                return None
            v = (await s.execute(select(KnowledgeVersion).where(
                KnowledgeVersion.entry_id == e.id, KnowledgeVersion.version == version))).scalar_one_or_none()
            if v is None:
                raise KnowledgeError(f"the entry has no version {version}")
            if v.status != "draft":
                raise KnowledgeError(f"version {version} is {v.status}; only a draft can be published")
            if e.published_version is not None:
                old = (await s.execute(select(KnowledgeVersion).where(
                    KnowledgeVersion.entry_id == e.id, KnowledgeVersion.version == e.published_version))).scalar_one()
                old.status = "superseded"
            v.status, v.reviewed_by, v.published_at = "published", by, now
            e.status, e.published_version, e.updated_at = "published", version, now
            await self._index(s, e, v)
            await s.flush()
            return await self._entry_dict(s, e)

    async def expire(self, entry_id: int, by: str) -> dict | None:
        """Withdraw the published version: no longer suggested, kept for the record."""
        now = utcnow()
        async with self.session.begin() as s:
            e = await s.get(KnowledgeEntry, entry_id, with_for_update=True)
            if e is None:
                return None
            if e.status != "published" or e.published_version is None:
                raise KnowledgeError(f"a {e.status} entry cannot be expired")
            v = (await s.execute(select(KnowledgeVersion).where(
                KnowledgeVersion.entry_id == e.id, KnowledgeVersion.version == e.published_version))).scalar_one()
            v.status = "expired"
            v.reviewed_by = v.reviewed_by or by
            e.status, e.published_version, e.updated_at = "expired", None, now
            await s.execute(delete(SearchDoc).where(SearchDoc.kind == KIND, SearchDoc.ref == str(e.id)))
            await s.flush()
            return await self._entry_dict(s, e)

    async def expire_lapsed(self, today: date) -> list[int]:
        """Expire the published entries whose end date has come (they are not suggested meanwhile)."""
        async with self.session() as s:
            ids = (await s.execute(select(KnowledgeEntry.id).join(KnowledgeVersion, (
                KnowledgeVersion.entry_id == KnowledgeEntry.id) & (
                KnowledgeVersion.version == KnowledgeEntry.published_version)).where(
                KnowledgeVersion.effective_to != "", KnowledgeVersion.effective_to <= today.isoformat()))).scalars().all()
        done = []
        for entry_id in ids:
            try:
                await self.expire(entry_id, "hotline-expiry")
                done.append(entry_id)
            except KnowledgeError:      # expired by someone meanwhile
                pass
        return done

    async def _index(self, s, e: KnowledgeEntry, v: KnowledgeVersion) -> None:
        raw = _indexed_text(v)
        await upsert_doc(s, kind=KIND, ref=str(e.id), call_id="", city="", agent="", at=v.published_at or utcnow(),
                         raw=raw, tokens=self.index_text(raw))

    async def load_seed(self, entries: list[dict], by: str) -> tuple[list[str], list[str]]:
        """Create and publish the seed file's entries that are not in the base yet; an entry already
        there is kept as its supervisors left it. Returns (added slugs, kept slugs)."""
        added, kept = [], []
        for x in entries:
            if await self.by_slug(x["slug"]) is not None:
                kept.append(x["slug"])
                continue
            try:
                e = await self.create(slug=x["slug"], category=x["category"], fields=x, by=by)
            except KnowledgeError:      # loaded concurrently
                kept.append(x["slug"])
                continue
            await self.publish(e["id"], 1, by)
            added.append(x["slug"])
        return added, kept

    # ---- search and suggestions (published and in force only)
    async def _matching(self, words: list[str], any_word: bool) -> dict[int, str]:
        """entry id -> its indexed tokens, for the published entries containing the words."""
        if not words:
            return {}
        q = select(SearchDoc.ref, SearchDoc.tokens).where(SearchDoc.kind == KIND)
        if self.dialect == "sqlite":
            joiner = " OR " if any_word else " AND "
            params = {"m": joiner.join('"' + w.replace('"', '""') + '"' for w in words)}
            q = q.where(SearchDoc.id.in_(select(text("rowid")).select_from(text("search_fts"))
                                         .where(text("search_fts MATCH :m"))))
        else:
            params = {f"w{i}": w for i, w in enumerate(words)}
            op = " || " if any_word else " && "
            tsq = op.join(f"plainto_tsquery('simple', :w{i})" for i in range(len(words)))
            q = q.where(text(f"to_tsvector('simple', search_docs.tokens) @@ ({tsq})"))
        async with self.session() as s:
            return {int(r.ref): r.tokens for r in (await s.execute(q, params)).all()}

    async def _published(self, ids: list[int] | None = None, categories: list[str] | None = None) -> list[tuple]:
        q = select(KnowledgeEntry, KnowledgeVersion).join(KnowledgeVersion, (
            KnowledgeVersion.entry_id == KnowledgeEntry.id) & (
            KnowledgeVersion.version == KnowledgeEntry.published_version)).where(KnowledgeEntry.status == "published")
        if ids is not None:
            q = q.where(KnowledgeEntry.id.in_(ids))
        if categories is not None:
            q = q.where(KnowledgeEntry.category.in_(categories))
        async with self.session() as s:
            return list((await s.execute(q)).all())

    async def search(self, words: list[str], *, today: date, categories: list[str] | None = None,
                     any_word: bool = False, limit: int = 10) -> list[dict]:
        """Published entries in force containing every word (or, ``any_word``, any of them), best
        first: the more of the words an entry has, and the more often, the higher; an entry of one of
        ``categories`` before others."""
        found = await self._matching(words, any_word)
        if not found:
            return []
        rows = await self._published(list(found))
        scored = []
        for e, v in rows:
            if not in_force(v.effective_from, v.effective_to, today):
                continue
            toks = found[e.id].split(" ")
            hits = [w for w in words if w in toks]
            score = 100 * len(hits) + sum(toks.count(w) for w in hits) + (50 if categories and e.category in categories else 0)
            scored.append((score, e, v, hits))
        scored.sort(key=lambda x: (-x[0], x[1].id))
        return [self._suggestion(e, v, "words", hits) for _, e, v, hits in scored[:limit]]

    async def suggest(self, *, categories: list[str], words: list[str], today: date, limit: int = 8) -> list[dict]:
        """For a call: entries sharing its telling words first, then its categories' entries."""
        words = telling_words(words)
        # words lead, but the categories keep a few places (a chatty transcript must not crowd them out)
        by_words = limit - min(3, limit // 2) if categories else limit
        out = await self.search(words, today=today, categories=categories, any_word=True, limit=by_words) if words else []
        seen = {x["id"] for x in out}
        if categories and len(out) < limit:
            # the first category (the ticket's) first, then the IVR service's
            rank = {c: i for i, c in enumerate(categories)}
            for e, v in sorted(await self._published(categories=categories), key=lambda r: (rank[r[0].category], r[0].id)):
                if e.id not in seen and in_force(v.effective_from, v.effective_to, today):
                    out.append(self._suggestion(e, v, "category", []))
                    if len(out) >= limit:
                        break
        return out

    @staticmethod
    def _suggestion(e: KnowledgeEntry, v: KnowledgeVersion, why: str, words: list[str]) -> dict:
        d = version_to_dict(v)
        return {"id": e.id, "slug": e.slug, "category": e.category, "version": v.version, "title": v.title,
                "question": v.question, "summary": v.summary, "laws": d["laws"],
                "needs_lawyer_review": v.needs_lawyer_review, "why": why, "matched": words}

    # ---- use on tickets
    async def attach(self, *, entry_id: int, version: int, ticket: dict, by: str) -> bool:
        """False when this entry was attached to the ticket already."""
        try:
            async with self.session.begin() as s:
                s.add(KnowledgeUse(entry_id=entry_id, version=version, ticket_id=ticket["id"],
                                   call_id=ticket.get("call_id") or "", city=ticket.get("city") or "",
                                   action="attach", by=by, at=utcnow()))
            return True
        except IntegrityError:
            return False

    async def text_summary(self, *, entry_id: int, version: int, ticket: dict, to_number: str, language: str,
                           body: str, by: str) -> dict:
        """Queue the summary for the caller in the SMS outbox (delivered by the SMS worker) and count
        the use, in one transaction. Refused for a number that opted out, and a second time for the
        same ticket and entry."""
        now = utcnow()
        try:
            async with self.session.begin() as s:
                if await opted_out(s, to_number):
                    raise OptedOut("the caller asked not to be contacted (opt-out)")
                s.add(KnowledgeUse(entry_id=entry_id, version=version, ticket_id=ticket["id"],
                                   call_id=ticket.get("call_id") or "", city=ticket.get("city") or "",
                                   action="sms", by=by, at=now))
                # the one shape of a text (store/sms.py): the sender claims it like a booking's confirmation
                m = text_row(to_number=to_number, body=body, kind="kb_summary", language=language,
                             related=f"ticket:{ticket['id']}", not_before=now)
                s.add(m)
                await s.flush()
                return row_to_dict(m)
        except IntegrityError:
            raise KnowledgeError("this entry's summary was sent for this ticket already") from None

    async def uses(self, ticket_id: int) -> list[dict]:
        q = (select(KnowledgeUse, KnowledgeVersion.title).join(KnowledgeVersion, (
            KnowledgeVersion.entry_id == KnowledgeUse.entry_id) & (KnowledgeVersion.version == KnowledgeUse.version))
            .where(KnowledgeUse.ticket_id == ticket_id).order_by(KnowledgeUse.id))
        async with self.session() as s:
            return [{**row_to_dict(u), "title": title} for u, title in (await s.execute(q)).all()]

    # ---- growing the base
    async def missed(self, *, query: str, category: str, city: str, by: str) -> None:
        async with self.session.begin() as s:
            s.add(KnowledgeMiss(query=query[:200], category=category or "", city=city or "", by=by, at=utcnow()))

    async def report(self, *, since: datetime | None = None, cities: set[str] | None = None,
                     limit: int = 20) -> dict:
        """Entries used most (attached, texted) and the questions that found nothing."""
        uq = select(KnowledgeUse.entry_id, KnowledgeUse.action, func.count()).group_by(
            KnowledgeUse.entry_id, KnowledgeUse.action)
        mq = select(KnowledgeMiss.query, func.count(), func.max(KnowledgeMiss.at)).group_by(KnowledgeMiss.query)
        if since:
            uq, mq = uq.where(KnowledgeUse.at >= since), mq.where(KnowledgeMiss.at >= since)
        if cities is not None:
            uq = uq.where(KnowledgeUse.city.in_(cities))
            mq = mq.where(or_(KnowledgeMiss.city.in_(cities), KnowledgeMiss.city == ""))
        async with self.session() as s:
            counts: dict[int, dict] = {}
            for entry_id, action, n in (await s.execute(uq)).all():
                counts.setdefault(entry_id, {"attach": 0, "sms": 0})[action] = n
            titles = dict((await s.execute(select(KnowledgeEntry.id, KnowledgeVersion.title).join(
                KnowledgeVersion, (KnowledgeVersion.entry_id == KnowledgeEntry.id)
                & (KnowledgeVersion.version == KnowledgeEntry.latest_version))
                .where(KnowledgeEntry.id.in_(list(counts) or [0])))).all())
            misses = (await s.execute(mq.order_by(func.count().desc(), func.max(KnowledgeMiss.at).desc())
                                      .limit(limit))).all()
        used = sorted(({"id": k, "title": titles.get(k, ""), "attached": c["attach"], "texted": c["sms"],
                        "total": c["attach"] + c["sms"]} for k, c in counts.items()),
                      key=lambda x: (-x["total"], x["id"]))[:limit]
        return {"most_used": used,
                "unanswered": [{"query": q, "count": n, "last_at": iso(at) if at else None} for q, n, at in misses]}
