"""Desk and back-office costs: a login's Argon2id verification (the deliberate cost), pre-screen
decisions, booking under contention (SQLite and PostgreSQL, how many bookings/s when every desk
races for the same slot vs. spread slots), statistics aggregation over a province-month of calls.
Ratios are against a baseline measured in the same run.

    .venv/bin/python bench/bench_backoffice.py [--calls 100000] [--bookings 200] [--no-postgres]
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from core.config import load_config  # noqa: E402
from backoffice.legal_aid import Facts, screen  # noqa: E402
from backoffice.stats import aggregate  # noqa: E402
from store.appointments import AppointmentStore, SlotFull  # noqa: E402
from store.engine import Database, migrate  # noqa: E402
from dashboard.auth import hasher  # noqa: E402


def timed(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


async def bookings(url: str, n: int, same_slot: bool) -> tuple[float, int]:
    migrate(url, ROOT)
    db = Database(url, ROOT)
    appts = AppointmentStore(db)
    slots = [f"{h:02d}:{m:02d}" for h in range(8, 18) for m in (0, 30)]
    try:
        async def one(i):
            slot = "09:00" if same_slot else slots[i % len(slots)]
            day = "2030-02-04" if same_slot else f"2030-01-{7 + (i // len(slots)) % 20:02d}"
            try:
                await appts.book(center_id="bench", city="leshan", day=day, slot=slot, capacity=n if same_slot else 50,
                                 caller_number=f"139{i:08d}", language="zh", ticket_id=None, booked_by="bench",
                                 messages=lambda code: [("appointment_confirmation", f"ref {code}", None)])
                return 1
            except SlotFull:
                return 0
        t0 = time.perf_counter()
        done = sum(await asyncio.gather(*[one(i) for i in range(n)]))
        return n / (time.perf_counter() - t0), done
    finally:
        await db.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--bookings", type=int, default=200)
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    console = Console()
    cfg = load_config(ROOT)
    t = Table(title="desk and back office")
    t.add_column("what")
    t.add_column("figure", justify="right")
    t.add_column("note")

    stored = hasher.hash("a desk password 12348")
    verify = timed(lambda: hasher.verify(stored, "a desk password 12348"), 10)
    t.add_row("login: Argon2id verify", f"{verify * 1000:.1f} ms", "deliberately slow; run in a thread")

    rules = load_config(ROOT).legal_aid
    facts = [Facts(random.choice(["leshan", "chengdu", "meishan"]), "maintenance", household_size=3,
                   household_monthly_income=random.uniform(0, 9000)) for _ in range(2000)]
    t0 = time.perf_counter()
    for f in facts:
        screen(f, rules)
    per = (time.perf_counter() - t0) / len(facts)
    t.add_row("pre-screen decision", f"{per * 1e6:.1f} µs", f"{1 / per:,.0f}/s; ratio to a login: 1:{verify / per:,.0f}")

    with tempfile.TemporaryDirectory() as tmp:
        urls = [("SQLite", f"sqlite:///{tmp}/b.db")]
        pg = None
        if not args.no_postgres:
            from tests.helpers import postgres_database
            pg = postgres_database()
            urls.append(("PostgreSQL", pg.__enter__()))
        try:
            for name, url in urls:
                spread, ok1 = asyncio.run(bookings(url, args.bookings, same_slot=False))
                race, ok2 = asyncio.run(bookings(url, args.bookings, same_slot=True))
                t.add_row(f"bookings/s, {name}: spread slots", f"{spread:,.0f}", f"{ok1} booked")
                t.add_row(f"bookings/s, {name}: all race one slot", f"{race:,.0f}",
                          f"{ok2} booked of {args.bookings} seats; {race / spread:.2f}× the spread rate")
        finally:
            if pg:
                pg.__exit__(None, None, None)

    base = datetime(2026, 11, 1, tzinfo=timezone.utc)
    cities = [c.id for c in cfg.cities]
    def call() -> dict:
        # a record as report_rows gives it (core/kpi.py computes the figures from these columns)
        start = base + timedelta(seconds=random.randrange(30 * 86400))
        queued, wait = start + timedelta(seconds=20), timedelta(seconds=random.randrange(120))
        outcome = random.choice(["answered", "answered", "abandoned", "voicemail"])
        answered = queued + wait if outcome == "answered" else None
        ended = answered + timedelta(seconds=300) if answered else queued + wait
        return {"started_at": start, "city": random.choice(cities), "outcome": outcome, "status": "ended",
                "queued_at": queued, "answered_at": answered, "ended_at": ended,
                "talk_seconds": 300.0 if answered else None, "green": random.choice(["", "", "", "migrant_wages"])}
    calls = [call() for _ in range(args.calls)]
    t0 = time.perf_counter()
    rows = aggregate(calls, [], [], "day", cfg.routing.timezone)
    el = time.perf_counter() - t0
    t.add_row(f"statistics over {args.calls:,} calls", f"{el:.2f} s", f"{args.calls / el:,.0f} calls/s, {len(rows)} rows")
    console.print(t)


if __name__ == "__main__":
    main()
