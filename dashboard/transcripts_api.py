"""HTTP resources for recordings, transcripts, search and alerts. Every view of a recording or a
transcript names its reason and is written to the audit log (who, when, why)."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from core import access
from backoffice.stats import FIRST_DAY, LAST_DAY, parse_day
from store.models import ID_MAX
from transcription.segment import query_tokens
from transcription.service import recording_tracks

REASON_MAX = 200
TRACKS = ("mixed", "caller", "agent")
JOB_STATUSES = ("pending", "running", "done", "failed", "no_model", "purged")


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


def _reason(request) -> str:
    reason = (request.query.get("reason") or "").strip()
    if not reason or len(reason) > REASON_MAX:
        raise _bad(f"say why you open it: reason=... (1 to {REASON_MAX} characters); every access is logged")
    return reason


def add_routes(app: web.Application, ctl, *, me, refuse, audit, record, ok, json_error) -> None:
    tz = ZoneInfo(ctl.cfg.routing.timezone)
    paths = None

    def instance_paths():
        nonlocal paths
        if paths is None:
            from core.paths import InstancePaths
            paths = InstancePaths(ctl.cfg.resolve(ctl.cfg.system.asterisk.rootfs), ctl.cfg.system.asterisk.instance)
        return paths

    async def transcript(request):
        rec = await record(request)
        reason = _reason(request)
        t = await ctl.transcripts.get(rec["call_id"])
        await audit(request, "transcript_view", rec["call_id"], detail=reason)
        if t is None:
            return json_error(404, "this call has no transcript (not answered, not recorded, or transcription is off)")
        return ok(t)

    async def recording(request):
        rec = await record(request)
        track = request.query.get("track", "mixed")
        if track not in TRACKS:
            raise _bad(f"track must be one of {', '.join(TRACKS)}")
        reason = _reason(request)
        if not rec["recording_path"]:
            return json_error(404, "this call was not recorded")
        t = await ctl.transcripts.get(rec["call_id"])
        if t and t.get("recording_purged_at"):
            return json_error(410, f"the recording was deleted at the end of its retention period ({t['recording_purged_at']})")
        path = recording_tracks(instance_paths(), rec["recording_path"])[track]
        if not await asyncio.to_thread(path.exists):
            return json_error(404, f"no {track} recording on disk for this call")
        await audit(request, "recording_play", rec["call_id"], track, detail=reason)
        return web.FileResponse(path, headers={"Content-Type": "audio/wav", "Cache-Control": "no-store"})

    async def jobs(request):
        p = me(request)
        if p.role == "agent":
            await refuse(request, "view_transcripts", why="the transcription queue is for supervisors")
        status = request.query.get("status") or None
        if status and status not in JOB_STATUSES:
            raise _bad("status must be pending, running, done, failed, no_model or purged")
        return ok(await ctl.transcripts.search_jobs(status=status, cities=None if p.all_cities else set(p.cities)))

    def _day(value: str | None, name: str) -> datetime | None:
        if not value:
            return None
        try:
            return datetime.combine(parse_day(value), time(0), tz)
        except ValueError:
            raise _bad(f"{name} must be a date YYYY-MM-DD ({FIRST_DAY} to {LAST_DAY})")

    async def search(request):
        p = me(request)
        q = (request.query.get("q") or "").strip()
        if not q or len(q) > 200:
            raise _bad("q (the words to find, at most 200 characters) is required")
        cities, agent = access.search_scope(p)
        city = request.query.get("city") or None
        if city:
            if city not in {c.id for c in ctl.cfg.cities}:
                raise _bad(f"unknown city {city!r}")
            if cities is not None and city not in cities:
                await refuse(request, "search", target=city, why=f"{city} is outside your cities")
            cities = {city}
        category = request.query.get("category") or None
        if category and category not in ctl.ticket_rules.categories:
            raise _bad(f"unknown category {category!r} (known: {', '.join(ctl.ticket_rules.categories)})")
        since = _day(request.query.get("from"), "from")
        until = _day(request.query.get("to"), "to")
        if until:
            until += timedelta(days=1)   # "to" is inclusive
        try:
            limit = min(max(int(request.query.get("limit", "50")), 1), 200)
        except ValueError:
            raise _bad("limit must be an integer")
        words = await asyncio.to_thread(query_tokens, q)
        rows = await ctl.transcripts.search(words, cities=cities, agent=agent, since=since, until=until,
                                            category=category, limit=limit)
        await audit(request, "search", target=city or "", detail=q[:200])
        return ok({"query": q, "words": words, "results": rows})

    async def alerts(request):
        p = me(request)
        if p.role == "agent":
            await refuse(request, "view_alerts", why="alerts are for supervisors and the command center")
        call_id = request.query.get("call_id") or None
        open_only = request.query.get("open") in ("1", "true", "yes")
        current = request.query.get("current") in ("1", "true", "yes")
        rows = await ctl.alerts.alerts(cities=None if p.all_cities else set(p.cities), call_id=call_id,
                                            open_only=open_only, current=current, kind=request.query.get("kind") or None)
        return ok(rows)

    async def acknowledge(request):
        try:
            alert_id = int(request.match_info["alert_id"])
        except ValueError:
            raise _bad("alert id must be a number")
        a = await ctl.alerts.alert(alert_id) if 0 < alert_id <= ID_MAX else None   # out of range: was a 500
        if a is None:
            return json_error(404, "no such alert")
        p = me(request)
        if not access.may_see_alerts(p, a["city"]):
            await refuse(request, "ack_alert", a.get("call_id") or "", str(alert_id), "not your city's alert")
        done = await ctl.alerts.acknowledge(alert_id, p.user_id)
        if done is None:
            return json_error(409, "already acknowledged")
        await audit(request, "ack_alert", a.get("call_id") or "", str(alert_id), a["topic"])
        ctl._on_transcription({"type": "alert_acknowledged", "alert": done})
        return ok(done)

    app.router.add_get("/api/calls/{call_id}/transcript", transcript)
    app.router.add_get("/api/calls/{call_id}/recording", recording)
    app.router.add_get("/api/transcripts", jobs)
    app.router.add_get("/api/search", search)
    app.router.add_get("/api/alerts", alerts)
    app.router.add_post("/api/alerts/{alert_id}/ack", acknowledge)
