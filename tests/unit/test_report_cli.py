"""`hotline report breakdown|targets`: the provincial report of GET /api/stats/breakdown and /api/stats/targets
on the command line, through the real CLI on a fresh SQLite database with stored calls and tickets."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from core.calls import CallState
from core.config import load_config
from store.calls import CallStore
from store.engine import Database, migrate
from store.tickets import TicketStore
from tests.helpers import ROOT


def hotline(tmp_path, *args: str) -> subprocess.CompletedProcess:
    overrides = {"state_dir": str(tmp_path), "database": {"url": f"sqlite:///{tmp_path}/r.db"}}
    return subprocess.run([sys.executable, "-m", "hotline.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HOTLINE_CONFIG_OVERRIDES": json.dumps(overrides),
                                            "COLUMNS": "200"})


async def _seed(url: str) -> None:
    db = Database(url, ROOT)
    try:
        calls, tickets = CallStore(db), TicketStore(db)
        now = time.time()
        for i, (cid, city, green, lang, county) in enumerate([("r1", "leshan", "elderly", "zh", "511123"),
                                                              ("r2", "ganzi", "", "bo", "513301"),
                                                              ("r3", "leshan", "", "zh", "")]):
            c = CallState(call_id=cid, city=city, caller_number=f"1390000{i:04d}", language=lang, green=green,
                          agent="agent1001", status="ended", outcome="answered", started_at=now - 600 + i,
                          queued_at=now - 595 + i, answered_at=now - 590 + i, ended_at=now - 500 + i)
            await calls.save_call(c)
            await tickets.ensure_for_call(c, "call", 72)
            t = next(t for t in await tickets.search(limit=10) if t["call_id"] == cid)
            changes = {"county": county} if county else {}
            if cid == "r1":
                changes["outcome"] = "referred_legal_aid"    # a legal-aid case toward the target
            if changes:
                await tickets.update(t["id"], changes)
    finally:
        await db.close()


def test_report_breakdown_and_targets(tmp_path):
    url = f"sqlite:///{tmp_path}/r.db"
    migrate(url, ROOT)
    asyncio.run(_seed(url))
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()

    r = hotline(tmp_path, "report", "breakdown", "--from", today, "--to", today, "--json")
    assert r.returncode == 0, r.stderr
    b = json.loads(r.stdout)
    assert b["city"] == "province" and b["from"] == b["to"] == today
    assert b["by_green"] == {"elderly": {"calls": 1, "answered": 1}, "none": {"calls": 2, "answered": 2}}
    assert b["by_language"]["bo"] == {"calls": 1, "answered": 1}
    assert b["by_county"]["511123"] == {"tickets": 1, "name": "四川省乐山市犍为县"}
    assert b["by_county"]["none"]["tickets"] == 1 and b["by_partner"] == {}
    one = json.loads(hotline(tmp_path, "report", "breakdown", "--from", today, "--to", today, "--city", "ganzi",
                             "--json").stdout)
    assert set(one["by_language"]) == {"bo"} and set(one["by_county"]) == {"513301"}

    table = hotline(tmp_path, "report", "breakdown", "--from", today, "--to", today)
    assert table.returncode == 0, table.stderr
    assert "四川省乐山市犍为县" in table.stdout and "elderly" in table.stdout and "区县" in table.stdout

    year = datetime.now(ZoneInfo("Asia/Shanghai")).year
    rules = load_config(None).legal_aid
    r = hotline(tmp_path, "report", "targets", "--json")
    if str(year) in rules.targets:
        assert r.returncode == 0, r.stderr
        t = json.loads(r.stdout)
        got = {m["measure"]: m["achieved"] for m in t["measures"]}
        assert t["year"] == year and got == {"consultations": 3, "cases": 1}
        assert "民生实事" in hotline(tmp_path, "report", "targets").stdout
    else:
        assert r.returncode == 1 and str(year) in r.stderr
    # a year without targets, and bad input: a message and a non-zero exit, no traceback
    r = hotline(tmp_path, "report", "targets", "--year", "2001")
    assert r.returncode == 1 and "2001" in r.stderr and "Traceback" not in r.stderr
    for bad in (["breakdown", "--from", "2026-13-01"], ["breakdown", "--city", "atlantis"],
                ["breakdown", "--from", "2026-02-02", "--to", "2026-02-01"], ["targets", "--year", "1999"]):
        r = hotline(tmp_path, "report", *bad)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (bad, r.stderr)
