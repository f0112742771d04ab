"""The wallboard: every city the viewer may see (command center: all 21; a city supervisor: their
own), drill-down to one city. Caller numbers are masked here; opening a city's live calls is a view
of personal data and is audited."""
from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

from aiohttp import web

from core import access, kpi
from backoffice.stats import FIRST_DAY, LAST_DAY, parse_day


VENDOR = Path(__file__).resolve().parent / "node_modules"


def add_routes(app: web.Application, ctl, *, me, refuse, audit, ok, page) -> None:
    w = ctl.cfg.system.wallboard

    def definitions() -> dict:
        return {"service_level_seconds": w.service_level_seconds, "short_abandon_seconds": w.short_abandon_seconds,
                "exclude_short_abandons": w.exclude_short_abandons, "doc": kpi.__doc__.strip()}

    async def board(request):
        p = me(request)
        if p.role == "agent":
            await refuse(request, "view_wallboard", why="the wallboard is for supervisors and the command center")
        tiles = await ctl.wallboard.tiles(None if p.all_cities else set(p.cities))
        return ok({"generated_at": time.time(), "definitions": definitions(), "cities": tiles})

    async def city(request):
        p = me(request)
        cid = request.match_info["city"]
        if cid not in {c.id for c in ctl.cfg.cities}:
            raise web.HTTPNotFound(text='{"error": "no such city"}', content_type="application/json")
        if not access.may_supervise_call(p, cid):
            await refuse(request, "view_wallboard", target=cid, why=f"{cid} is outside your cities")
        [tile] = await ctl.wallboard.tiles({cid})
        calls = []
        for c in ctl.tracker.live():
            if c.city != cid:
                continue
            d = c.as_dict()
            calls.append({"call_id": c.call_id, "caller": access.mask_number(c.caller_number), "language": c.language,
                          "status": c.status, "queue": c.queue, "agent": c.agent, "green": c.green,
                          "waited_seconds": round(time.time() - c.queued_at, 1) if c.queued_at and c.status == "queued" else None,
                          "talk_since": d.get("answered_at")})
        homes = {a.id: set(a.queues) for a in ctl.cfg.agents}
        agents = [a.as_dict() for a in ctl.agents.agents.values() if cid in homes.get(a.id, set())]
        await audit(request, "view_city", target=cid, detail=f"{len(calls)} live calls (numbers masked)")
        return ok({"tile": tile, "calls": calls, "agents": agents,
                   "thresholds": ctl.wallboard.thresholds(cid).model_dump()})

    def _date(value: str, name: str) -> date:
        try:
            return parse_day(value)
        except ValueError:
            raise web.HTTPBadRequest(text=json.dumps({"error": f"{name} must be a date YYYY-MM-DD "
                                                               f"({FIRST_DAY} to {LAST_DAY})"}),
                                     content_type="application/json")

    async def reports(request):
        """KPIs over a date range for the report charts: per day, per hour of day, per agent."""
        p = me(request)
        if p.role == "agent":
            await refuse(request, "view_reports", why="reports are for supervisors and the command center")
        q = request.query
        city = q.get("city") or None
        if city and city not in {c.id for c in ctl.cfg.cities}:
            raise web.HTTPBadRequest(text=json.dumps({"error": f"unknown city {city!r}"}), content_type="application/json")
        if city and not access.sees_city(p, city):
            await refuse(request, "view_reports", target=city, why=f"{city} is outside your cities")
        if not city and not p.all_cities:
            city = sorted(p.cities)[0]
        first, last = _date(q.get("from", ""), "from"), _date(q.get("to", ""), "to")
        if last < first or (last - first).days > 366:
            raise web.HTTPBadRequest(text=json.dumps({"error": "to must not be before from; at most a year"}),
                                     content_type="application/json")
        out = await ctl.wallboard.report(first, last, city)
        return ok({"city": city, "from": first.isoformat(), "to": last.isoformat(), "definitions": definitions(), **out})

    async def echarts(request):
        """The chart library, installed locally by setup (npm; never from a CDN)."""
        path = VENDOR / "echarts" / "dist" / "echarts.min.js"
        if not path.exists():
            return web.Response(status=404, text="// echarts is not installed: run `make demo` or scripts/bootstrap.sh",
                                content_type="application/javascript")
        return web.FileResponse(path, headers={"Cache-Control": "max-age=86400"})

    app.router.add_get("/reports", page("reports.html"))
    app.router.add_get("/api/reports", reports)
    app.router.add_get("/vendor/echarts.min.js", echarts)
    app.router.add_get("/wallboard", page("wallboard.html"))
    app.router.add_get("/api/wallboard", board)
    app.router.add_get("/api/wallboard/{city}", city)
