"""Figures from the command line: statistics per city and period, and staffing advice (Erlang C)."""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from rich.table import Table

from hotline.common import _config, console, out


def cmd_stats(args) -> int:
    """Statistics straight from the database (the controller need not run)."""
    from datetime import date, datetime, time as dtime, timedelta
    from zoneinfo import ZoneInfo

    from backoffice import stats
    from core.kpi import Policy
    from store.engine import Database, migrate
    from store.reports import report_rows, text_rows

    cfg = _config(args)
    try:
        first, last = date.fromisoformat(args.date_from), date.fromisoformat(args.date_to or args.date_from)
    except ValueError as e:
        console.print(f"[red]dates must be YYYY-MM-DD: {e}[/red]")
        return 2
    if args.city and args.city not in {c.id for c in cfg.cities}:
        console.print(f"[red]unknown city {args.city!r}[/red]")
        return 2
    tz = ZoneInfo(cfg.routing.timezone)
    migrate(cfg.system.database.url, cfg.root)

    async def rows():
        db = Database(cfg.system.database.url, cfg.root)
        try:
            since = datetime.combine(first, dtime(0), tz)
            until = datetime.combine(last + timedelta(days=1), dtime(0), tz)
            return *(await report_rows(db, since, until, args.city)), await text_rows(db, since, until, args.city)
        finally:
            await db.close()
    calls, tickets, appts, complaints, surveys, texts = asyncio.run(rows())
    table = stats.aggregate(calls, tickets, appts, args.period, cfg.routing.timezone, complaints=complaints,
                            surveys=surveys, policy=Policy.of(cfg), texts=texts)
    if args.city:
        table = [r for r in table if r["city"] == args.city]
    cats = list(cfg.tickets.categories) + ["unclassified"]
    labels = stats.Labels.of(cfg, args.lang)
    if args.format == "csv":
        # the BOM makes Excel read the file as UTF-8 (a Chinese office's Excel assumes GBK otherwise)
        text = stats.to_csv(table, cats, labels)
        Path(args.out).write_text(text, encoding="utf-8-sig") if args.out else \
            sys.stdout.buffer.write(text.encode("utf-8-sig"))
    elif args.format == "xlsx":
        if not args.out:
            console.print("[red]--format xlsx needs --out FILE[/red]")
            return 2
        Path(args.out).write_bytes(stats.to_xlsx(table, cats, labels))
    else:
        t = Table(title=f"12348 statistics / 统计 {first}..{last} ({args.period})")
        for col in stats.COLUMNS:
            t.add_column(col)
        for r in table:
            t.add_row(*("-" if r[c] is None else str(r[c]) for c in stats.COLUMNS))
        out.print(t)
    return 0


def cmd_staffing(args) -> int:
    from datetime import datetime, timedelta, timezone

    from backoffice.staffing import advise, history as learned
    from core.kpi import Policy
    from store.calls import CallStore
    from store.engine import Database, migrate

    cfg = _config(args)
    if args.city and args.city not in cfg.queue_ids:
        console.print(f"[red]unknown city {args.city!r}[/red]")
        return 2
    migrate(cfg.system.database.url, cfg.root)

    async def load():
        db = Database(cfg.system.database.url, cfg.root)
        try:
            return await CallStore(db).calls_since(datetime.now(timezone.utc) - timedelta(days=args.days), None, args.city)
        finally:
            await db.close()

    history = asyncio.run(load())
    arrivals, aht = learned(history, args.days, cfg.routing.timezone, Policy.of(cfg))
    if not aht:
        aht = {h: args.default_aht for h in range(24)}
    plan = advise(arrivals, aht, args.target, args.within, minimum=args.minimum)
    if args.json:    # bare JSON on stdout, for scripts
        print(json.dumps([h.__dict__ for h in plan], indent=2))
        return 0
    t = Table("hour", "calls/h", "AHT s", "agents", "service level", "ASA s", "occupancy",
              title=f"staffing for {args.city or 'all cities'}: {len(history)} calls in {args.days} days, "
                    f"target {args.target:.0%} answered within {args.within:.0f} s (Erlang C)")
    for h in plan:
        t.add_row(f"{h.hour:02d}:00", f"{h.calls_per_hour:.2f}", f"{h.aht:.0f}", str(h.agents),
                  f"{h.service_level:.1%}", f"{h.asa:.1f}", f"{h.occupancy:.0%}")
    out.print(t)
    return 0


def cmd_report(args) -> int:
    """The provincial report (docs/legal-aid.md) from the database, the same figures as
    GET /api/stats/breakdown and /api/stats/targets: by green-channel category, language, county and
    referral partner; the year's 民生实事 targets with the share achieved so far."""
    from datetime import date, datetime, time as dtime, timedelta
    from zoneinfo import ZoneInfo

    from backoffice.provincial import TargetsMissing, breakdown, targets_progress
    from store.engine import Database, migrate
    from store.reports import breakdown_rows

    cfg = _config(args)
    tz = ZoneInfo(cfg.routing.timezone)
    today = datetime.now(tz).date()
    if args.what == "breakdown":
        try:
            first = date.fromisoformat(args.date_from) if args.date_from else today.replace(day=1)
            last = date.fromisoformat(args.date_to) if args.date_to else today
        except ValueError as e:
            console.print(f"[red]dates must be YYYY-MM-DD: {e}[/red]")
            return 2
        if last < first:
            console.print("[red]--to must not be before --from[/red]")
            return 2
        if args.city and args.city not in {c.id for c in cfg.cities}:
            console.print(f"[red]unknown city {args.city!r}[/red]")
            return 2
    else:
        year = args.year or today.year
        if not 2000 <= year <= 2100:
            console.print("[red]--year must be between 2000 and 2100[/red]")
            return 2
        first, last = date(year, 1, 1), date(year, 12, 31)
    migrate(cfg.system.database.url, cfg.root)

    async def rows():
        db = Database(cfg.system.database.url, cfg.root)
        try:
            return await breakdown_rows(db, datetime.combine(first, dtime(0), tz),
                                        datetime.combine(last + timedelta(days=1), dtime(0), tz),
                                        args.city if args.what == "breakdown" else None)
        finally:
            await db.close()
    calls, tickets, handoffs = asyncio.run(rows())
    if args.what == "targets":
        try:
            result = targets_progress(cfg.legal_aid, first.year, today, calls, tickets)
        except TargetsMissing as e:
            console.print(f"[red]{e}[/red]")
            return 1
        if args.json:
            print(json.dumps(result, ensure_ascii=False, indent=2))
            return 0
        t = Table("measure / 指标", "target / 目标", "achieved / 完成", "share / 完成率",
                  title=f"民生实事 {result['year']}: {result['year_elapsed']:.0%} of the year elapsed / 时间进度 "
                        f"({result['source']}{'' if result['verified'] else ', unverified / 未核实'})")
        names = {"consultations": "consultations / 免费咨询", "cases": "cases / 法律援助案件"}
        for m in result["measures"]:
            t.add_row(names.get(m["measure"], m["measure"]), str(m["target"]), str(m["achieved"]), f"{m['share']:.2%}")
        out.print(t)
        return 0
    result = {"city": args.city or "province", "from": first.isoformat(), "to": last.isoformat(),
              **breakdown(calls, tickets, handoffs)}
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    span = f"{result['city']} {first}..{last}"
    for key, title, cols in (("by_green", "green-channel category / 绿色通道类别", ("calls", "answered")),
                             ("by_language", "language / 语言", ("calls", "answered")),
                             ("by_county", "county / 区县", ("name", "tickets")),
                             ("by_partner", "referral partner / 转办单位", None)):
        table = result[key]
        cols = cols or tuple(sorted({c for row in table.values() for c in row}, key=lambda c: (c != "handoffs", c)))
        t = Table(key.split("_", 1)[1], *cols, title=f"{title} · {span}")
        for k, row in table.items():
            t.add_row(k, *(str(row.get(c, 0)) for c in cols))
        out.print(t)
    return 0


def register(sub) -> None:
    s = sub.add_parser("report", help="the provincial report: breakdown by green channel, language, county, "
                                      "partner; the year's 民生实事 targets")
    s.add_argument("what", choices=["breakdown", "targets"])
    s.add_argument("--from", dest="date_from", help="breakdown: first local date (default: this month's first)")
    s.add_argument("--to", dest="date_to", help="breakdown: last local date (default: today)")
    s.add_argument("--city", help="breakdown: one city (default: the province)")
    s.add_argument("--year", type=int, help="targets: the year (default: this year)")
    s.add_argument("--json", action="store_true", help="bare JSON on stdout, as the API returns it")
    s.set_defaults(func=cmd_report)
    s = sub.add_parser("stats", help="calls, answers, consultations by category, referrals, appointments per city")
    s.add_argument("--period", choices=["day", "month", "year"], default="day")
    s.add_argument("--from", dest="date_from", required=True, help="first local date, YYYY-MM-DD")
    s.add_argument("--to", dest="date_to", help="last local date (default: --from)")
    s.add_argument("--city")
    s.add_argument("--format", choices=["table", "csv", "xlsx"], default="table")
    s.add_argument("--out", help="file for csv/xlsx")
    s.add_argument("--lang", choices=["zh", "en"], default="zh",
                   help="csv/xlsx column headers and city names: Chinese (default) or English")
    s.set_defaults(func=cmd_stats)
    s = sub.add_parser("staffing", help="agents needed per hour for a service-level target (Erlang C)")
    s.add_argument("--city", help="city id (default: all)")
    s.add_argument("--days", type=int, default=28, help="history to learn arrivals and handle times from")
    s.add_argument("--target", type=float, default=0.8, help="share answered within --within seconds")
    s.add_argument("--within", type=float, default=20)
    s.add_argument("--minimum", type=int, default=1, help="agents on duty however quiet the hour")
    s.add_argument("--default-aht", type=float, default=420, help="handle time when there is no history")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_staffing)
