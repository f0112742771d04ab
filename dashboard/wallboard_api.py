"""The wallboard: every city the viewer may see (command center: all 21; a city supervisor: their
own), drill-down to one city. Caller numbers are masked here; opening a city's live calls is a view
of personal data and is audited."""
from __future__ import annotations

import time

from aiohttp import web

from callcenter import access, kpi


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

    app.router.add_get("/wallboard", page("wallboard.html"))
    app.router.add_get("/api/wallboard", board)
    app.router.add_get("/api/wallboard/{city}", city)
