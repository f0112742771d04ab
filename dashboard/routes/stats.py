"""Statistics per city and province by day, month or year (JSON, CSV, XLSX; backoffice/stats.py),
and the follow-up visits (回访) with their survey scores."""
from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, Field

from backoffice import stats
from core import access
from dashboard.common import city_param, json_error, me, ok, parse_date, refuse, services
from dashboard.schemas import AnyCity, Binary, Date, FollowUp, Id, StatsRow, Unset
from dashboard.spec import JSON, op
from store.reports import report_rows
from store.models import ID_MAX

routes = web.RouteTableDef()
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class StatsQuery(BaseModel):
    city: AnyCity = Field(None, description="one city (default: the province, or a supervisor's only city)")
    period: Literal["day", "month", "year"] = Field(None, description="default day")
    from_: Date = Field(alias="from")
    to: Date = Field(description="inclusive; at most three years after from")
    format: Literal["json", "csv", "xlsx"] = Field(None, description="default json")
    lang: Literal["zh", "en"] = Field(None, description="csv/xlsx headers and city names: zh (default) or en")


class FollowUpsQuery(BaseModel):
    ticket_id: Id | Literal[""] = Unset
    city: str = Unset
    status: str = Unset



@routes.get("/api/stats")
@op("stats", "statistics per city and province by day, month or year", tag="reports", errors=("400", "403"),
    query=StatsQuery, content={JSON: list[StatsRow], "text/csv": str, XLSX: Binary})
async def statistics(request):
    p, q, svc = me(request), request.query, services(request)
    if p.role == "agent":
        await refuse(request, "view_stats", why="statistics are for supervisors and the command center")
    # the city names the CSV/XLSX file (Content-Disposition): control characters there made
    # aiohttp drop the connection without an answer, so only our city ids are taken
    city = await city_param(request, "view_stats")
    if not city and not p.all_cities:
        if len(p.cities) != 1:
            return json_error(400, "give city= (one of yours)")
        city = next(iter(p.cities))
    period = q.get("period", "day")
    if period not in ("day", "month", "year"):
        return json_error(400, "period must be day, month or year")
    first, last = parse_date(q.get("from", "")), parse_date(q.get("to", ""))
    if last < first or (last - first).days > 3 * 366:
        return json_error(400, "to must not be before from, and the range at most three years")
    fmt = q.get("format", "json")
    if fmt not in ("json", "csv", "xlsx"):
        return json_error(400, "format must be json, csv or xlsx")
    lang = q.get("lang", "zh")
    if lang not in ("zh", "en"):
        return json_error(400, "lang must be zh or en")
    tz = ZoneInfo(svc.cfg.routing.timezone)
    since, until = datetime.combine(first, time(0), tz), datetime.combine(last + timedelta(days=1), time(0), tz)
    calls, tickets_, appts, complaints_, surveys = await report_rows(svc.db, since, until, city)
    # a year of a province's calls is seconds of CPU: off the event loop that follows the calls
    rows = await asyncio.to_thread(stats.aggregate, calls, tickets_, appts, period, svc.cfg.routing.timezone,
                                   complaints=complaints_, surveys=surveys, policy=svc.wallboard.policy)
    if city:
        rows = [r for r in rows if r["city"] == city]
    return await _answer(rows, fmt, list(svc.ticket_rules.categories) + ["unclassified"],
                         f"12348-{city or 'province'}-{first}-{last}-{period}", stats.Labels.of(svc.cfg, lang))


async def _answer(rows: list[dict], fmt: str, cats: list[str], name: str, labels: stats.Labels) -> web.Response:
    if fmt == "csv":
        # with a BOM: Excel in a Chinese office reads a CSV without one as GBK
        return web.Response(body=stats.to_csv(rows, cats, labels).encode("utf-8-sig"),
                            headers={"Content-Type": "text/csv; charset=utf-8",
                                     "Content-Disposition": f'attachment; filename="{name}.csv"'})
    if fmt == "xlsx":
        return web.Response(body=await asyncio.to_thread(stats.to_xlsx, rows, cats, labels), headers={
            "Content-Type": XLSX, "Content-Disposition": f'attachment; filename="{name}.xlsx"'})
    return ok(rows)


@routes.get("/api/follow-ups")
@op("follow_ups", "follow-up visits (回访) and their survey scores", tag="reports", errors=("400", "403"),
    query=FollowUpsQuery, ok=list[FollowUp])
async def follow_ups(request):
    p, q = me(request), request.query
    if p.role == "agent":
        await refuse(request, "view_follow_ups", why="follow-up results are for supervisors")
    try:
        ticket_id = int(q["ticket_id"]) if q.get("ticket_id") else None
    except ValueError:
        return json_error(400, "ticket_id must be a number")
    if ticket_id is not None and not 0 < ticket_id <= ID_MAX:   # the database refused to bind it: a 500
        return json_error(400, "ticket_id is out of range")
    rows = await services(request).followups.search(ticket_id=ticket_id, city=q.get("city") or None,
                                                    status=q.get("status") or None)
    return ok([f for f in rows if access.sees_city(p, f["city"])])
