from fractions import Fraction
from math import factorial

import pytest

from backoffice.staffing import advise, agents_needed, asa, erlang_c, service_level


def erlang_c_reference(n: int, a: int) -> float:
    """The textbook formula with exact fractions, to check the overflow-free version."""
    a = Fraction(a)
    top = a ** n / factorial(n) * Fraction(n, n - a)
    return float(top / (sum(a ** k / factorial(k) for k in range(n)) + top))


@pytest.mark.parametrize("n,a", [(11, 10), (14, 10), (3, 1), (60, 50), (120, 100)])
def test_erlang_c_matches_the_textbook(n, a):
    assert erlang_c(n, a) == pytest.approx(erlang_c_reference(n, a), rel=1e-9)


def test_classic_example():
    # 200 calls an hour, 3-minute calls: 10 erlangs; 80 % in 20 s needs 14 agents
    assert agents_needed(200, 180, 0.8, 20) == 14
    assert service_level(13, 10, 180, 20) < 0.8 <= service_level(14, 10, 180, 20)
    assert asa(14, 10, 180) < asa(13, 10, 180)


def test_night_volumes_stay_sane():
    assert agents_needed(0, 300) == 1            # nobody calls, still one lawyer on duty
    assert agents_needed(0.5, 300) == 1
    assert agents_needed(0.5, 300, minimum=2) == 2
    assert erlang_c(1, 0) == 0.0 and service_level(1, 0, 300, 20) == 1.0


def test_advise_covers_every_hour():
    plan = advise({9: 30, 10: 45, 3: 0.2}, {9: 400, 10: 380})
    assert len(plan) == 24 and plan[10].agents >= plan[9].agents >= plan[3].agents == 1
    assert all(0 <= h.occupancy <= 1 for h in plan)


def test_staffing_command_reads_history(tmp_path):
    """`hotline staffing` on a real SQLite database with a day of Leshan calls."""
    import asyncio
    import json
    import os
    import subprocess
    import sys
    import time

    from core.calls import CallState
    from store.calls import CallStore
    from store.engine import Database, migrate
    from tests.helpers import ROOT

    url = f"sqlite:///{tmp_path}/h.db"
    migrate(url, ROOT)

    async def seed():
        db = Database(url, ROOT)
        store = CallStore(db)
        now = time.time()
        for i in range(48):  # 48 calls over the last day, 5 minutes each
            start = now - 86400 + 120 + i * 1790
            await store.save_call(CallState(call_id=f"c{i}", city="leshan", status="ended", started_at=start,
                                            answered_at=start + 10, ended_at=start + 310))
        await db.close()
    asyncio.run(seed())
    env = {**os.environ, "HOTLINE_CONFIG_OVERRIDES": json.dumps({"database": {"url": url}})}
    res = subprocess.run([sys.executable, "-m", "hotline.cli", "staffing", "--city", "leshan", "--days", "1",
                          "--json"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    plan = json.loads(res.stdout[res.stdout.index("["):])
    assert len(plan) == 24 and sum(h["calls_per_hour"] for h in plan) == 48
    assert all(h["agents"] >= 1 for h in plan)
