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


def register(sub) -> None:
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
