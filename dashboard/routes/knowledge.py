"""The legal knowledge base (法律知识库): search, one entry, suggestions for a call's screen-pop, an
entry attached to a ticket and its summary texted to the caller (queued in the SMS outbox), the
supervisors' maintenance (a new version per edit, publish, expire) and the report of what was used
and what found nothing. Store: store/knowledge.py; rules: core/knowledge.py."""
from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from core import access
from core.knowledge import (SLUG, STATUSES, SUMMARY_MAX, EntryFields, LawRef, service_of, sms_body,
                            telling_words)
from core.numbering import may_text
from dashboard.common import (audit, bad_request, by_id, json_error, limit, me, not_found, ok, refuse, services,
                              ticket_row)
from dashboard.common import body as read_body
from dashboard.schemas import Strict, Unset, Vocab, WholeNumber, one_of_or_empty
from dashboard.spec import op
from store.knowledge import KnowledgeError, OptedOut
from store.models import ID_MAX
from transcription.segment import query_tokens

routes = web.RouteTableDef()
QUERY_MAX = 200
TEXT_MAX = 600      # the recent transcript lines a desk sends for suggestions


# ---- bodies and answers (the OpenAPI document is generated from these)
class KbLaw(BaseModel):
    law: str
    article: str


class KbSuggestion(BaseModel):
    id: int
    slug: str
    category: str
    version: int
    title: str
    question: str
    summary: str
    laws: list[KbLaw]
    needs_lawyer_review: bool
    why: str = Field(description="words (it shares words with the query or the call) or category")
    matched: list[str]


class KbFound(BaseModel):
    query: str
    words: list[str]
    results: list[KbSuggestion]


class KbSuggestions(BaseModel):
    call_id: str
    service: str
    categories: list[str]
    words: list[str]
    suggestions: list[KbSuggestion]


class KbVersion(BaseModel):
    entry_id: int
    version: int
    status: str
    title: str
    question: str
    answer: str
    summary: str
    laws: list[KbLaw]
    keywords: list[str]
    effective_from: str
    effective_to: str | None
    needs_lawyer_review: bool
    created_by: str
    created_at: str
    reviewed_by: str
    published_at: str | None


class KbVersionLine(BaseModel):
    version: int
    status: str
    title: str
    created_by: str
    created_at: str
    reviewed_by: str
    published_at: str | None


class KbEntry(BaseModel):
    id: int
    slug: str
    category: str
    status: str
    latest_version: int
    published_version: int | None
    created_at: str
    updated_at: str
    latest: KbVersion | None
    published: KbVersion | None
    versions: list[KbVersionLine] = Unset


class KbSearchQuery(BaseModel):
    q: str = Field(min_length=1, max_length=QUERY_MAX, description="the question, in Chinese or other words")
    category: Annotated[str, Vocab("categories", empty=True)] = Unset
    limit: WholeNumber = Field(None, description="1 to 50, default 10")


class KbEntriesQuery(BaseModel):
    status: one_of_or_empty(STATUSES) = Unset
    category: Annotated[str, Vocab("categories", empty=True)] = Unset


class KbSuggestQuery(BaseModel):
    text: str = Field(None, max_length=TEXT_MAX, description="recent words of the call's live transcript")


class KbReportQuery(BaseModel):
    days: WholeNumber = Field(None, description="the last 1 to 366 days, default 30")


class KbNewEntry(Strict):
    slug: str = Field(pattern=SLUG, description="a stable key: lower-case letters, digits, - and _")
    category: Annotated[str, Vocab("categories")]
    title: str = Field(min_length=2, max_length=200)
    question: str = Field(min_length=2, max_length=2000)
    answer: str = Field(min_length=2, max_length=8000)
    summary: str = Field(min_length=2, max_length=SUMMARY_MAX)
    laws: list[LawRef] = Field(min_length=1, max_length=20)
    keywords: list[str] = Field(None, max_length=30)
    effective_from: str = Field(description="YYYY-MM-DD")
    effective_to: str | None = Field(None, description="YYYY-MM-DD, the first day it is no longer in force")
    needs_lawyer_review: bool = True


class KbEditEntry(Strict):
    """Any of the fields; the rest are taken from the latest version."""
    expect_version: int = Field(None, ge=1, le=ID_MAX,
                                description="the latest version the editor saw (409 if it changed since)")
    category: Annotated[str, Vocab("categories")] = Unset
    title: str = Field(None, min_length=2, max_length=200)
    question: str = Field(None, min_length=2, max_length=2000)
    answer: str = Field(None, min_length=2, max_length=8000)
    summary: str = Field(None, min_length=2, max_length=SUMMARY_MAX)
    laws: list[LawRef] = Field(None, min_length=1, max_length=20)
    keywords: list[str] = Field(None, max_length=30)
    effective_from: str = Unset
    effective_to: str | None = Unset
    needs_lawyer_review: bool = Unset


class KbPublish(Strict):
    version: int = Field(None, ge=1, le=ID_MAX, description="the draft version to publish (default: the latest)")


class KbAttach(Strict):
    entry_id: int = Field(ge=1, le=ID_MAX)


class KbUse(BaseModel):
    id: int
    entry_id: int
    version: int
    ticket_id: int
    call_id: str
    city: str
    action: str
    by: str
    at: str
    title: str


class KbTexted(BaseModel):
    id: int
    kind: str
    to_number: str
    language: str
    body: str
    related: str
    status: str


class KbUsedLine(BaseModel):
    id: int
    title: str
    attached: int
    texted: int
    total: int


class KbUnanswered(BaseModel):
    query: str
    count: int
    last_at: str | None


class KbReport(BaseModel):
    days: int
    most_used: list[KbUsedLine]
    unanswered: list[KbUnanswered]


# ---- helpers
def _today(request):
    return datetime.now(ZoneInfo(services(request).cfg.routing.timezone)).date()


async def _maintainer(request, action: str) -> None:
    """Entries are written and reviewed by supervisors and the command center, never by agents."""
    if me(request).role not in ("supervisor", "command"):
        await refuse(request, action, why="the knowledge base is maintained by supervisors")


def _errors(e: ValidationError) -> web.HTTPBadRequest:
    return bad_request("; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'body'}: "
                                 f"{err['msg'].removeprefix('Value error, ')}" for err in e.errors()))


def _typed(model: type[BaseModel], data: dict) -> None:
    """The body as documented, strictly: no number for a date, no "yes" for a flag (400 naming the field)."""
    try:
        model.model_validate(data, strict=True)
    except ValidationError as e:
        raise _errors(e)


def _fields(data: dict) -> dict:
    """EntryFields from a body, or a 400 naming each bad field."""
    try:
        return EntryFields.model_validate(data).model_dump()
    except ValidationError as e:
        raise _errors(e)


def _category(request, category) -> str:
    cats = services(request).ticket_rules.categories
    if not isinstance(category, str) or category not in cats:
        raise bad_request(f"category must be one of {', '.join(cats)}")
    return category


async def _entry(request) -> dict:
    return await by_id(request, "entry_id", "knowledge entry", services(request).knowledge.get)


# ---- reading: every desk user
@routes.get("/api/knowledge")
@op("knowledge_search", "search the knowledge base (published entries in force), in Chinese", tag="knowledge",
    errors=("400",), query=KbSearchQuery, ok=KbFound,
    description="A search that finds nothing is kept for the report of unanswered questions.")
async def search(request):
    svc, q = services(request), request.query
    text = (q.get("q") or "").strip()
    if not text or len(text) > QUERY_MAX:
        raise bad_request(f"q (the question, at most {QUERY_MAX} characters) is required")
    category = q.get("category") or ""
    if category:
        _category(request, category)
    n = limit(request, 10, 50)
    words = await asyncio.to_thread(query_tokens, text)
    today = _today(request)
    rows = await svc.knowledge.search(words, today=today, categories=[category] if category else None, limit=n)
    if not rows:    # every word is too strict for a spoken question: any of its telling words
        rows = await svc.knowledge.search(telling_words(words), today=today, any_word=True,
                                          categories=[category] if category else None, limit=n)
    if not rows:
        p = me(request)
        await svc.knowledge.missed(query=text, category=category, city=next(iter(sorted(p.cities)), "")
                                   if p.role != "command" else "", by=p.user_id)
    return ok({"query": text, "words": words, "results": rows})


@routes.get("/api/knowledge/entries")
@op("knowledge_entries", "every entry with its latest and published version (supervisors)", tag="knowledge",
    errors=("400", "403"), query=KbEntriesQuery, ok=list[KbEntry])
async def entries(request):
    await _maintainer(request, "kb_list")
    q = request.query
    status, category = q.get("status") or None, q.get("category") or None
    if status and status not in STATUSES:
        raise bad_request(f"status must be one of {', '.join(STATUSES)}")
    if category:
        _category(request, category)
    return ok(await services(request).knowledge.entries(status=status, category=category))


@routes.get("/api/knowledge/report")
@op("knowledge_report", "the entries used most and the questions that found none (supervisors)",
    tag="knowledge", errors=("400", "403"), query=KbReportQuery, ok=KbReport)
async def report(request):
    await _maintainer(request, "kb_report")
    p = me(request)
    try:
        days = min(max(int(request.query.get("days", "30")), 1), 366)
    except ValueError:
        raise bad_request("days must be a whole number")
    since = datetime.now(ZoneInfo("UTC")) - timedelta(days=days)
    r = await services(request).knowledge.report(since=since, cities=None if p.all_cities else set(p.cities))
    return ok({"days": days, **r})


@routes.get("/api/knowledge/{entry_id}")
@op("knowledge_entry", "one entry: agents see its published text, supervisors every version",
    tag="knowledge", errors=("400", "404"), ok=KbEntry)
async def entry(request):
    e = await _entry(request)
    if me(request).role not in ("supervisor", "command"):
        if e["published"] is None:
            return json_error(404, "no such knowledge entry")
        e = {**e, "latest": e["published"], "versions": [v for v in e["versions"] if v["status"] == "published"]}
    return ok(e)


@routes.get("/api/calls/{call_id}/knowledge")
@op("call_knowledge", "suggestions for a call's screen-pop: from its IVR service, its ticket's category and "
    "the words of its live transcript", tag="knowledge", errors=("400", "403", "404"), query=KbSuggestQuery,
    ok=KbSuggestions)
async def for_call(request):
    svc, p = services(request), me(request)
    call_id = request.match_info["call_id"]
    live = svc.tracker.calls.get(call_id)
    if live is not None:
        agent, city, ivr_path, service = live.agent or live.ringing, live.city, live.ivr_path, live.service
    else:
        rec = await svc.call_records.call(call_id)
        if rec is None:
            return json_error(404, "no such call")
        agent, city, ivr_path, service = rec["agent"], rec["city"], rec["ivr_path"], rec["service"]
    if not access.may_view_call(p, agent, city):
        await refuse(request, "view_call", call_id, why="not your call")
    text = request.query.get("text") or ""
    if len(text) > TEXT_MAX:
        raise bad_request(f"text: at most {TEXT_MAX} characters")
    service = service or service_of(ivr_path)
    categories = list(svc.knowledge_rules.services.get(service, []))
    t = await svc.tickets.for_call(call_id)
    if t and t["category"] and t["category"] not in categories:
        categories.insert(0, t["category"])
    words = telling_words(await asyncio.to_thread(query_tokens, text)) if text else []
    rows = await svc.knowledge.suggest(categories=categories, words=words, today=_today(request))
    return ok({"call_id": call_id, "service": service, "categories": categories, "words": words,
               "suggestions": rows})


# ---- use on a ticket: the ticket's agent (or their supervisors)
async def _published_entry(request, entry_id) -> dict:
    if not isinstance(entry_id, int) or isinstance(entry_id, bool) or entry_id < 1:
        raise bad_request("entry_id must be a positive whole number")
    e = await services(request).knowledge.get(entry_id, with_versions=False) if entry_id <= ID_MAX else None
    if e is None or e["published"] is None:
        raise not_found("no such published knowledge entry")
    return e


@routes.get("/api/tickets/{ticket_id}/knowledge")
@op("ticket_knowledge", "the knowledge entries used on a ticket (attached, texted)", tag="knowledge",
    errors=("403", "404"), ok=list[KbUse])
async def ticket_uses(request):
    t = await ticket_row(request)
    return ok(await services(request).knowledge.uses(t["id"]))


@routes.post("/api/tickets/{ticket_id}/knowledge")
@op("ticket_attach_knowledge", "attach a published entry to a ticket", tag="knowledge",
    errors=("403", "404", "409"), body=KbAttach, ok=list[KbUse])
async def attach(request):
    t, svc = await ticket_row(request), services(request)
    body = await read_body(request)
    _typed(KbAttach, body)
    e = await _published_entry(request, body.get("entry_id"))
    if t["status"] == "closed":
        return json_error(409, "the ticket is closed")
    added = await svc.knowledge.attach(entry_id=e["id"], version=e["published_version"], ticket=t,
                                       by=me(request).user_id)
    if added:
        await audit(request, "kb_attach", t["call_id"] or "", f"ticket:{t['id']}", f"kb:{e['id']}v{e['published_version']}")
    return ok(await svc.knowledge.uses(t["id"]))


@routes.post("/api/tickets/{ticket_id}/knowledge/{entry_id}/sms")
@op("ticket_text_knowledge", "text an entry's summary to the ticket's caller (queued in the SMS outbox)",
    tag="knowledge", errors=("403", "404", "409"), ok=KbTexted, status=201,
    description="409 when the caller's number cannot take a text (not a mobile of the numbering plan), the "
                "caller opted out, or this summary was sent for this ticket already. Nothing is queued then.")
async def text_summary(request):
    t, svc = await ticket_row(request), services(request)
    try:
        entry_id = int(request.match_info["entry_id"])
    except ValueError:
        raise bad_request("entry id must be a number")
    e = await _published_entry(request, entry_id)
    v = e["published"]
    number = t.get("caller_number") or ""
    why = may_text(number, svc.cfg) if number else "the caller's number is unknown"
    if why:
        await audit(request, "kb_sms_refused", t["call_id"] or "", f"ticket:{t['id']}", why[:200])
        return json_error(409, f"no text to this number: {why}")
    language = t.get("language") or "zh"
    body = sms_body(svc.knowledge_rules.sms_text, language, v["summary"])
    try:
        msg = await svc.knowledge.text_summary(entry_id=e["id"], version=v["version"], ticket=t, to_number=number,
                                               language=language, body=body, by=me(request).user_id)
    except OptedOut as x:
        return json_error(409, str(x))
    except KnowledgeError as x:
        return json_error(409, str(x))
    await audit(request, "kb_sms", t["call_id"] or "", f"ticket:{t['id']}", f"kb:{e['id']}v{v['version']} outbox:{msg['id']}")
    return ok({k: msg[k] for k in ("id", "kind", "to_number", "language", "body", "related", "status")}, status=201)


# ---- maintenance: supervisors and the command center; every change audited
@routes.post("/api/knowledge/entries")
@op("knowledge_create", "a new entry (its version 1, a draft)", tag="knowledge", errors=("403", "409"),
    body=KbNewEntry, ok=KbEntry, status=201)
async def create(request):
    await _maintainer(request, "kb_create")
    body = await read_body(request)
    _typed(KbNewEntry, body)
    slug = body.pop("slug", None)
    if not isinstance(slug, str) or not re.match(SLUG, slug):
        raise bad_request("slug: lower-case letters, digits, - and _ (1 to 64, starting with a letter or digit)")
    category = _category(request, body.pop("category", None))
    fields = _fields(body)
    try:
        e = await services(request).knowledge.create(slug=slug, category=category, fields=fields,
                                                     by=me(request).user_id)
    except KnowledgeError as x:
        return json_error(409, str(x))
    await audit(request, "kb_create", target=f"kb:{e['id']}", detail=slug)
    return ok(e, status=201)


@routes.patch("/api/knowledge/{entry_id}")
@op("knowledge_edit", "edit an entry: a new draft version (the published one stays until it is published)",
    tag="knowledge", errors=("403", "404", "409"), body=KbEditEntry, ok=KbEntry)
async def edit(request):
    await _maintainer(request, "kb_edit")
    e, svc = await _entry(request), services(request)
    if not request.can_read_body:
        raise bad_request("a body is required: the fields to change")
    body = await read_body(request)
    _typed(KbEditEntry, body)
    expect = body.pop("expect_version", None)
    if expect is not None and (not isinstance(expect, int) or isinstance(expect, bool) or not 1 <= expect <= ID_MAX):
        raise bad_request("expect_version must be a whole number")
    category = _category(request, body.pop("category")) if "category" in body else None
    latest = {k: v for k, v in e["latest"].items() if k in EntryFields.model_fields}
    unknown = set(body) - set(EntryFields.model_fields)
    if unknown:
        raise bad_request(f"unknown fields: {', '.join(sorted(unknown))}")
    fields = _fields({**latest, **body})
    try:
        new = await svc.knowledge.edit(e["id"], fields, me(request).user_id, category=category, expect_version=expect)
    except KnowledgeError as x:
        return json_error(409, str(x))
    await audit(request, "kb_edit", target=f"kb:{e['id']}", detail=f"v{new['latest_version']} {','.join(sorted(body))}"[:200])
    return ok(new)


@routes.post("/api/knowledge/{entry_id}/publish")
@op("knowledge_publish", "publish a draft version (reviewed): it becomes the suggested text", tag="knowledge",
    errors=("403", "404", "409"), body=KbPublish, body_required=False, ok=KbEntry,
    description="Without a body: the latest version.")
async def publish(request):
    await _maintainer(request, "kb_publish")
    e, svc = await _entry(request), services(request)
    body = await read_body(request)
    if body:
        _typed(KbPublish, body)
    version = body.get("version", e["latest_version"])
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= ID_MAX:
        raise bad_request("version must be a positive whole number")
    try:
        new = await svc.knowledge.publish(e["id"], version, me(request).user_id)
    except KnowledgeError as x:
        return json_error(409, str(x))
    await audit(request, "kb_publish", target=f"kb:{e['id']}", detail=f"v{version}")
    return ok(new)


@routes.post("/api/knowledge/{entry_id}/expire")
@op("knowledge_expire", "withdraw the published version (kept, no longer suggested)", tag="knowledge",
    errors=("403", "404", "409"), ok=KbEntry)
async def expire(request):
    await _maintainer(request, "kb_expire")
    e, svc = await _entry(request), services(request)
    try:
        new = await svc.knowledge.expire(e["id"], me(request).user_id)
    except KnowledgeError as x:
        return json_error(409, str(x))
    await audit(request, "kb_expire", target=f"kb:{e['id']}", detail=f"v{e['published_version']}")
    return ok(new)
