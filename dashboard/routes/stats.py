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
from store.reports import report_rows, text_rows
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



async def _scope(request):
    """Who may see which statistics, and for which dates: (city or "" for all, first, last), or the
    refusal to answer with."""
    p, q = me(request), request.query
    if p.role == "agent":
        await refuse(request, "view_stats", why="statistics are for supervisors and the command center")
    # the city names the CSV/XLSX file (Content-Disposition): control characters there made
    # aiohttp drop the connection without an answer, so only our city ids are taken
    city = await city_param(request, "view_stats")
    if not city and not p.all_cities:
        if len(p.cities) != 1:
            return json_error(400, "give city= (one of yours)")
        city = next(iter(p.cities))
    first, last = parse_date(q.get("from", "")), parse_date(q.get("to", ""))
    if last < first or (last - first).days > 3 * 366:
        return json_error(400, "to must not be before from, and the range at most three years")
    return city, first, last


@routes.get("/api/stats")
@op("stats", "statistics per city and province by day, month or year", tag="reports", errors=("400", "403"),
    query=StatsQuery, content={JSON: list[StatsRow], "text/csv": str, XLSX: Binary})
async def statistics(request):
    q, svc = request.query, services(request)
    scope = await _scope(request)
    if isinstance(scope, web.Response):
        return scope
    city, first, last = scope
    period = q.get("period", "day")
    if period not in ("day", "month", "year"):
        return json_error(400, "period must be day, month or year")
    fmt = q.get("format", "json")
    if fmt not in ("json", "csv", "xlsx"):
        return json_error(400, "format must be json, csv or xlsx")
    lang = q.get("lang", "zh")
    if lang not in ("zh", "en"):
        return json_error(400, "lang must be zh or en")
    tz = ZoneInfo(svc.cfg.routing.timezone)
    since, until = datetime.combine(first, time(0), tz), datetime.combine(last + timedelta(days=1), time(0), tz)
    calls, tickets_, appts, complaints_, surveys = await report_rows(svc.db, since, until, city)
    texts = await text_rows(svc.db, since, until, city)
    # a year of a province's calls is seconds of CPU: off the event loop that follows the calls
    rows = await asyncio.to_thread(stats.aggregate, calls, tickets_, appts, period, svc.cfg.routing.timezone,
                                   complaints=complaints_, surveys=surveys, policy=svc.wallboard.policy, texts=texts)
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


# ---- the provincial report: breakdowns and the year's 民生实事 targets (backoffice/provincial.py)

class BreakdownQuery(BaseModel):
    city: AnyCity = Field(None, description="one city (default: the province, or a supervisor's only city)")
    from_: Date = Field(alias="from")
    to: Date = Field(description="inclusive; at most three years after from")


class TargetsQuery(BaseModel):
    year: int = Field(None, ge=2000, le=2100, description="default: the current year")


class Breakdown(BaseModel):
    city: str
    from_: str = Field(alias="from")
    to: str
    by_green: dict[str, dict[str, int]]
    by_language: dict[str, dict[str, int]]
    by_county: dict[str, dict[str, int | str]]
    by_partner: dict[str, dict[str, int]]


class Measure(BaseModel):
    measure: Literal["consultations", "cases"]
    target: int
    achieved: int
    share: float


class TargetProgress(BaseModel):
    year: int
    source: str
    verified: bool
    as_of: str
    year_elapsed: float
    measures: list[Measure]


@routes.get("/api/stats/breakdown")
@op("stats_breakdown", "calls by green-channel category and language, tickets by county, handoffs by partner",
    tag="reports", errors=("400", "403"), query=BreakdownQuery, ok=Breakdown)
async def stats_breakdown(request):
    from backoffice.provincial import breakdown
    from store.reports import breakdown_rows
    svc = services(request)
    scope = await _scope(request)
    if isinstance(scope, web.Response):
        return scope
    city, first, last = scope
    tz = ZoneInfo(svc.cfg.routing.timezone)
    since, until = datetime.combine(first, time(0), tz), datetime.combine(last + timedelta(days=1), time(0), tz)
    calls, tickets_, handoffs_ = await breakdown_rows(svc.db, since, until, city)
    out = await asyncio.to_thread(breakdown, calls, tickets_, handoffs_)
    return ok({"city": city or "province", "from": first.isoformat(), "to": last.isoformat(), **out})


@routes.get("/api/stats/targets")
@op("stats_targets", "the province's 民生实事 targets of a year and the share the hotline achieved so far",
    tag="reports", errors=("400", "403", "404"), query=TargetsQuery, ok=TargetProgress)
async def stats_targets(request):
    from backoffice.provincial import TargetsMissing, targets_progress
    from store.reports import breakdown_rows
    p, svc = me(request), services(request)
    if not p.all_cities:
        await refuse(request, "view_targets", why="the province's targets are for the command center")
    tz = ZoneInfo(svc.cfg.routing.timezone)
    today = datetime.now(tz).date()
    raw = request.query.get("year", str(today.year))
    if not (raw.isascii() and raw.isdigit() and 2000 <= int(raw) <= 2100):
        return json_error(400, "year must be a year between 2000 and 2100")
    year = int(raw)
    since = datetime.combine(datetime(year, 1, 1).date(), time(0), tz)
    until = datetime.combine(datetime(year + 1, 1, 1).date(), time(0), tz)
    calls, tickets_, _ = await breakdown_rows(svc.db, since, until, None)
    try:
        out = await asyncio.to_thread(targets_progress, svc.legal_aid_rules, year, today, calls, tickets_)
    except TargetsMissing as e:
        return json_error(404, str(e))
    return ok(out)
