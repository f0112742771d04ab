"""One definition of each figure: a day of calls in a real database, and every output that shows
abandonment, service level, ASA, AHT or green share gives the same numbers, the ones core/kpi.py and
docs/kpis.md define.

The outputs, through the code their HTTP handlers and CLI commands call, on the real Store:
the wallboard's today KPIs (Wallboard.today, GET /api/wallboard), /api/reports (Wallboard.report),
/api/stats (report_rows + stats.aggregate with the configured policy, as the handler does),
`hotline stats --format csv` and `hotline staffing --json` (the CLI itself, in-process)."""
import asyncio
import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from backoffice import stats
from callcenter.wallboard import Wallboard
from core import kpi
from core.calls import CallState
from core.config import load_config
from hotline import cli
from hotline.common import OVERRIDES_ENV
from store.callbacks import CallbackStore
from store.calls import CallStore
from store.engine import Database, migrate
from store.reports import report_rows

ROOT = Path(__file__).resolve().parents[2]
CITY = "leshan"
FIGURES = ("calls", "queued", "answered", "abandoned", "short_abandons", "service_level", "asa_seconds",
           "abandonment_rate", "aht_seconds", "green_share")

# (what happens, outcome, seconds in the queue or None, talk seconds or None, green channel)
DAY = [
    ("answered within the SL threshold", "answered", 10, 100, ""),
    ("answered past it", "answered", 30, 200, "elderly"),
    ("short abandon", "abandoned", 3, None, ""),
    ("long abandon", "abandoned", 40, None, ""),
    ("voicemail exit", "voicemail", 60, None, ""),
    ("callback exit, within the threshold", "callback_requested", 15, None, ""),
    ("unknown number", "unknown_number", None, None, ""),
]


def expected(wrapup: float) -> dict:
    """The definitions, worked by hand for DAY with SL 20 s, short abandons (< 5 s) excluded."""
    return {
        "calls": 6,                       # unknown numbers are not calls into the hotline
        "queued": 5,                      # 2 answered + long abandon + voicemail + callback; short abandon out
        "answered": 2,
        "abandoned": 3,                   # left the queue unanswered: hung up (long), voicemail, callback
        "short_abandons": 1,
        "service_level": round(2 / 5, 4),  # left the queue within 20 s: answered at 10 s, callback at 15 s
        "asa_seconds": 20.0,              # (10 + 30) / 2
        "abandonment_rate": round(3 / 5, 4),
        "aht_seconds": round((100 + wrapup + 200 + wrapup) / 2, 2),
        "green_share": round(1 / 6, 4),
    }


def _seed_calls(midnight: datetime) -> list[CallState]:
    out = []
    for i, (_, outcome, wait, talk, green) in enumerate(DAY):
        start = midnight.timestamp() + 60 + 120 * i          # all in the first local hour of today
        queued = start + 5 if wait is not None else None
        answered = queued + wait if outcome == "answered" else None
        ended = (answered + talk) if answered else (queued + wait) if queued else start + 8
        out.append(CallState(call_id=f"fig.{i}", caller_number=f"1380000000{i}", city=CITY, status="ended",
                             outcome=outcome, green=green, agent="agent1001" if answered else "",
                             started_at=start, queued_at=queued, answered_at=answered, ended_at=ended))
    return out


def _pick(row: dict) -> dict:
    return {k: row[k] for k in FIGURES}


def _number(text: str):
    if text == "":
        return None
    return float(text) if "." in text else int(text)


def test_every_output_gives_the_same_figures(db_url, monkeypatch, capsys):
    migrate(db_url, ROOT)
    cfg = load_config(ROOT, {"database": {"url": db_url}})
    policy = kpi.Policy.of(cfg)
    assert (policy.service_level_seconds, policy.short_abandon_seconds, policy.exclude_short_abandons) == (20, 5, True)
    want = expected(policy.wrapup_seconds)
    tz = ZoneInfo(cfg.routing.timezone)
    today = datetime.now(tz).date()
    midnight = datetime.combine(today, datetime.min.time(), tz)

    async def server_side() -> tuple[dict, dict, list[dict]]:
        db = Database(db_url, ROOT)
        calls = CallStore(db)
        try:
            for c in _seed_calls(midnight):
                await calls.save_call(c)
            board = Wallboard(SimpleNamespace(cfg=cfg, call_records=calls, callback_tasks=CallbackStore(db)))
            wallboard = (await board.today())[CITY]                               # GET /api/wallboard
            report = await board.report(today, today, CITY)                       # GET /api/reports
            rows = await report_rows(db, midnight, midnight + timedelta(days=1), CITY)   # GET /api/stats
            table = stats.aggregate(*rows[:3], "day", cfg.routing.timezone, complaints=rows[3], surveys=rows[4],
                                    policy=board.policy)
            return wallboard, report, table
        finally:
            await db.close()

    wallboard, report, table = asyncio.run(server_side())

    # the definitions themselves
    assert _pick(wallboard) == want
    assert sum(1 for _, outcome, *_ in DAY if outcome == "abandoned") == 2   # the old outcome count said 2

    # /api/reports: the total, the one day, the one agent
    assert _pick(report["total"]) == want
    [day] = report["days"]
    assert day["date"] == today.isoformat() and _pick(day) == want
    [agent] = report["agents"]
    assert (agent["answered"], agent["asa_seconds"], agent["aht_seconds"]) == \
        (want["answered"], want["asa_seconds"], want["aht_seconds"])
    assert sum(report["hours"]) == want["calls"]

    # /api/stats: the city's row for the day, and the province's (the same calls)
    by = {(r["period"], r["city"]): r for r in table}
    for city in (CITY, stats.PROVINCE):
        assert _pick(by[(today.isoformat(), city)]) == want

    # `hotline stats`: the same figures in its CSV
    monkeypatch.setenv(OVERRIDES_ENV, json.dumps({"database": {"url": db_url}}))
    capsys.readouterr()
    assert cli.main(["--root", str(ROOT), "stats", "--from", today.isoformat(), "--city", CITY,
                     "--format", "csv", "--lang", "en"]) == 0
    [line] = list(csv.DictReader(io.StringIO(capsys.readouterr().out.removeprefix("\ufeff"))))
    assert {k: _number(line[k]) for k in FIGURES} == pytest.approx(want)

    # `hotline staffing`: its AHT for the hour the calls came in is the same AHT, its arrivals the same calls
    assert cli.main(["--root", str(ROOT), "staffing", "--city", CITY, "--days", "1", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)     # bare JSON: no table before it
    hour = datetime.fromtimestamp(midnight.timestamp() + 60, tz).hour
    assert plan[hour]["aht"] == want["aht_seconds"]
    assert plan[hour]["calls_per_hour"] == want["calls"]
    assert sum(h["calls_per_hour"] for h in plan) == want["calls"]
