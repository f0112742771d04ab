"""The wallboard: every city the viewer may see (command center: all 21; a city supervisor: their
own), drill-down to one city, and the KPI reports behind the charts. Caller numbers are masked
here; opening a city's live calls is a view of personal data and is audited."""
from __future__ import annotations

import time

from aiohttp import web
from pydantic import BaseModel, Field

from core import access, kpi
from dashboard.common import audit, bad_request, city_param, date_param, me, not_found, ok, refuse, services
from dashboard.schemas import Agent, AnyCity, Date, NodeView, Tile, Unset
from dashboard.spec import op

routes = web.RouteTableDef()


class Board(BaseModel):
    generated_at: float
    definitions: dict
    cities: list[Tile]
    nodes: list[NodeView] = []     # the cluster's nodes (one for a single node)


class CityView(BaseModel):
    tile: Tile
    calls: list[dict]
    agents: list[Agent]
    thresholds: dict


class ReportsQuery(BaseModel):
    city: AnyCity = Unset
    from_: Date = Field(alias="from")
    to: Date = Field(description="inclusive; at most a year after from")


class Report(BaseModel):
    city: str | None
    from_: Date = Field(alias="from")
    to: Date
    definitions: dict
    days: list[dict]
    hours: list[int] = Field(min_length=24, max_length=24)
    agents: list[dict]
    total: dict


def definitions(request) -> dict:
    w = services(request).cfg.system.wallboard
    return {"service_level_seconds": w.service_level_seconds, "short_abandon_seconds": w.short_abandon_seconds,
            "exclude_short_abandons": w.exclude_short_abandons, "doc": kpi.__doc__.strip()}


@routes.get("/api/wallboard")
@op("wallboard", "every city tile the viewer may see", tag="reports", errors=("403",), ok=Board)
async def board(request):
    p = me(request)
    if p.role == "agent":
        await refuse(request, "view_wallboard", why="the wallboard is for supervisors and the command center")
    tiles = await services(request).wallboard.tiles(None if p.all_cities else set(p.cities))
    return ok({"generated_at": time.time(), "definitions": definitions(request), "cities": tiles,
               "nodes": services(request).nodes()})


@routes.get("/api/wallboard/{city}")
@op("wallboard_city", "one city: tile, live calls (numbers masked), agents", tag="reports", errors=("403", "404"),
    ok=CityView)
async def city(request):
    p, svc = me(request), services(request)
    cid = request.match_info["city"]
    if cid not in svc.city_ids:
        raise not_found("no such city")
    if not access.may_supervise_call(p, cid):
        await refuse(request, "view_wallboard", target=cid, why=f"{cid} is outside your cities")
    [tile] = await svc.wallboard.tiles({cid})
    calls = []
    for c in svc.tracker.live():
        if c.city != cid:
            continue
        d = c.as_dict()
        calls.append({"call_id": c.call_id, "caller": access.mask_number(c.caller_number), "language": c.language,
                      "status": c.status, "queue": c.queue, "agent": c.agent, "green": c.green,
                      "waited_seconds": round(time.time() - c.queued_at, 1) if c.queued_at and c.status == "queued"
                      else None,
                      "talk_since": d.get("answered_at")})
    agents = [a.as_dict() for a in svc.agents.agents.values() if cid in svc.agent_cities.get(a.id, set())]
    await audit(request, "view_city", target=cid, detail=f"{len(calls)} live calls (numbers masked)")
    return ok({"tile": tile, "calls": calls, "agents": agents, "thresholds": svc.wallboard.thresholds(cid).model_dump()})


@routes.get("/api/reports")
@op("reports", "KPIs over a date range: per day, hour of day, agent", tag="reports", errors=("400", "403"),
    query=ReportsQuery, ok=Report)
async def reports(request):
    """KPIs over a date range for the report charts: per day, per hour of day, per agent."""
    p, svc = me(request), services(request)
    if p.role == "agent":
        await refuse(request, "view_reports", why="reports are for supervisors and the command center")
    city = await city_param(request, "view_reports")
    if not city and not p.all_cities:
        city = sorted(p.cities)[0]
    first, last = date_param(request, "from"), date_param(request, "to")
    if last < first or (last - first).days > 366:
        raise bad_request("to must not be before from; at most a year")
    out = await svc.wallboard.report(first, last, city)
    return ok({"city": city, "from": first.isoformat(), "to": last.isoformat(), "definitions": definitions(request),
               **out})
