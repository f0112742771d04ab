"""Recordings, transcripts, search and alerts. Every view of a recording or a transcript names its
reason and is written to the audit log (who, when, why)."""
from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, Field

from core import access
from dashboard.common import audit, bad_request, call_record, date_param, json_error, me, ok, refuse, services
from dashboard.schemas import (JOB_STATUSES, REASON_MAX, TRACKS, Alert, AnyCity, Binary, Date, Transcript,
                               TranscriptJob, Unset, Vocab, WholeNumber, one_of, one_of_or_empty)
from dashboard.spec import op
from store.models import ID_MAX
from transcription.segment import query_tokens
from transcription.service import recording_tracks

routes = web.RouteTableDef()
Reason = Field(min_length=1, max_length=REASON_MAX, description="why you open it (audited)")


class TranscriptQuery(BaseModel):
    reason: str = Reason


class RecordingQuery(BaseModel):
    track: one_of(TRACKS) = Field(None, description="default mixed")
    reason: str = Reason


class JobsQuery(BaseModel):
    status: one_of_or_empty(JOB_STATUSES) = Unset


class SearchQuery(BaseModel):
    q: str = Field(min_length=1, max_length=200, pattern=r"\S", description="the words to find")
    city: AnyCity = Unset
    category: Annotated[str, Vocab("categories", empty=True)] = Unset
    from_: Date | Literal[""] = Field(None, alias="from")
    to: Date | Literal[""] = Unset
    limit: WholeNumber = Field(None, description="1 to 200, default 50")


class Hit(BaseModel):
    kind: str
    ref: str
    call_id: str
    city: str
    agent: str
    at: datetime
    snippet: str


class Found(BaseModel):
    query: str
    words: list[str]
    results: list[Hit]


class AlertsQuery(BaseModel):
    call_id: str = Unset
    open: str = Field(None, description="1, true or yes: not acknowledged")
    current: str = Field(None, description="1, true or yes: still needing someone")
    kind: str = Unset


def _reason(request) -> str:
    reason = (request.query.get("reason") or "").strip()
    if not reason or len(reason) > REASON_MAX:
        raise bad_request(f"say why you open it: reason=... (1 to {REASON_MAX} characters); every access is logged")
    return reason


@routes.get("/api/calls/{call_id}/transcript")
@op("call_transcript", "a call's transcript (access is audited)", tag="transcripts", errors=("400", "403", "404"),
    query=TranscriptQuery, ok=Transcript)
async def transcript(request):
    rec = await call_record(request)
    reason = _reason(request)
    t = await services(request).transcripts.get(rec["call_id"])
    await audit(request, "transcript_view", rec["call_id"], detail=reason)
    if t is None:
        return json_error(404, "this call has no transcript (not answered, not recorded, or transcription is off)")
    return ok(t)


@routes.get("/api/calls/{call_id}/recording")
@op("call_recording", "a call's recording, WAV (access is audited)", tag="transcripts",
    errors=("400", "403", "404", "410"), query=RecordingQuery, content={"audio/wav": Binary})
async def recording(request):
    rec, svc = await call_record(request), services(request)
    track = request.query.get("track", "mixed")
    if track not in TRACKS:
        raise bad_request(f"track must be one of {', '.join(TRACKS)}")
    reason = _reason(request)
    if not rec["recording_path"]:
        return json_error(404, "this call was not recorded")
    t = await svc.transcripts.get(rec["call_id"])
    if t and t.get("recording_purged_at"):
        return json_error(410, f"the recording was deleted at the end of its retention period ({t['recording_purged_at']})")
    path = recording_tracks(svc.paths, rec["recording_path"]).get(track)   # None: not a recording name
    if path is None or not await asyncio.to_thread(path.exists):
        return json_error(404, f"no {track} recording on disk for this call")
    await audit(request, "recording_play", rec["call_id"], track, detail=reason)
    return web.FileResponse(path, headers={"Content-Type": "audio/wav", "Cache-Control": "no-store"})


@routes.get("/api/transcripts")
@op("transcripts", "transcription jobs: status and metadata, not the text (that is behind call_transcript, "
    "with a reason)", tag="transcripts", errors=("400", "403"), query=JobsQuery, ok=list[TranscriptJob])
async def jobs(request):
    p = me(request)
    if p.role == "agent":
        await refuse(request, "view_transcripts", why="the transcription queue is for supervisors")
    status = request.query.get("status") or None
    if status and status not in JOB_STATUSES:
        raise bad_request("status must be pending, running, done, failed, no_model or purged")
    return ok(await services(request).transcripts.search_jobs(status=status,
                                                              cities=None if p.all_cities else set(p.cities)))


def _day(request, name: str) -> datetime | None:
    """Midnight (local) of an optional date parameter."""
    day = date_param(request, name, required=False)
    return datetime.combine(day, time(0), ZoneInfo(services(request).cfg.routing.timezone)) if day else None


@routes.get("/api/search")
@op("search", "full-text search over transcripts, ticket texts and notes", tag="transcripts", errors=("400", "403"),
    query=SearchQuery, ok=Found)
async def search(request):
    p, svc = me(request), services(request)
    q = (request.query.get("q") or "").strip()
    if not q or len(q) > 200:
        raise bad_request("q (the words to find, at most 200 characters) is required")
    cities, agent = access.search_scope(p)
    city = request.query.get("city") or None
    if city:
        if city not in svc.city_ids:
            raise bad_request(f"unknown city {city!r}")
        if cities is not None and city not in cities:
            await refuse(request, "search", target=city, why=f"{city} is outside your cities")
        cities = {city}
    category = request.query.get("category") or None
    if category and category not in svc.ticket_rules.categories:
        raise bad_request(f"unknown category {category!r} (known: {', '.join(svc.ticket_rules.categories)})")
    since, until = _day(request, "from"), _day(request, "to")
    if until:
        until += timedelta(days=1)   # "to" is inclusive
    try:
        n = min(max(int(request.query.get("limit", "50")), 1), 200)
    except ValueError:
        raise bad_request("limit must be an integer")
    words = await asyncio.to_thread(query_tokens, q)
    rows = await svc.transcripts.search(words, cities=cities, agent=agent, since=since, until=until,
                                        category=category, limit=n)
    await audit(request, "search", target=city or "", detail=q[:200])
    return ok({"query": q, "words": words, "results": rows})


@routes.get("/api/alerts")
@op("alerts", "keyword alerts and wallboard alarms", tag="transcripts", errors=("403",), query=AlertsQuery,
    ok=list[Alert])
async def alerts(request):
    p, q = me(request), request.query
    if p.role == "agent":
        await refuse(request, "view_alerts", why="alerts are for supervisors and the command center")
    rows = await services(request).alerts.alerts(
        cities=None if p.all_cities else set(p.cities), call_id=q.get("call_id") or None,
        open_only=q.get("open") in ("1", "true", "yes"), current=q.get("current") in ("1", "true", "yes"),
        kind=q.get("kind") or None)
    return ok(rows)


@routes.post("/api/alerts/{alert_id}/ack")
@op("ack_alert", "acknowledge an alert (once)", tag="transcripts", errors=("400", "403", "404", "409"), ok=Alert)
async def acknowledge(request):
    svc = services(request)
    try:
        alert_id = int(request.match_info["alert_id"])
    except ValueError:
        raise bad_request("alert id must be a number")
    a = await svc.alerts.alert(alert_id) if 0 < alert_id <= ID_MAX else None   # out of range: was a 500
    if a is None:
        return json_error(404, "no such alert")
    p = me(request)
    if not access.may_see_alerts(p, a["city"]):
        await refuse(request, "ack_alert", a.get("call_id") or "", str(alert_id), "not your city's alert")
    done = await svc.alerts.acknowledge(alert_id, p.user_id)
    if done is None:
        return json_error(409, "already acknowledged")
    await audit(request, "ack_alert", a.get("call_id") or "", str(alert_id), a["topic"])
    svc.events.broadcast({"type": "alert_acknowledged", "alert": done})
    return ok(done)
