"""The soak's short form (issue 22 §3): one simulated day of the province in 5 minutes, through the same
code as bench/bench_soak.py (tests/soak.py): sipp callers on all 21 numbers in three languages, green
channel, callbacks and voicemail, agents on rotas, desk transfers, 12345 handoffs and surveys, 500
wallboard viewers. About 8 minutes with the stack's start and the drain; `make test-slow`."""
from __future__ import annotations

import pytest

from tests.soak import run_day

CALLS = 300          # the day's shape at a fifth of a real day's volume: the 2-core box also runs the rest
MINUTES = 5
VIEWERS = 500
# memory at the end over the highest up to the end of the afternoon peak: the working set fills with the
# first busy hours (the controller 137 -> ~210 MiB, whether 40 calls or 300), a leak goes on growing
MAX_GROWTH = 0.10


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_day_of_the_province_in_five_minutes(tmp_path):
    res = run_day(tmp_path, CALLS, MINUTES, VIEWERS, log=lambda *a: None)
    assert len(res.calls) == CALLS
    # every call has its record, ended: none lost
    assert not res.lost, f"calls without an ended record: {res.lost[:20]}"
    assert len(res.records) == CALLS
    # no caller's scenario failed (sipp counts unexpected messages, timeouts, errors)
    assert res.sipp_failed == 0 and res.sipp_ok == CALLS, res.sipp_failures[:5]
    # the mix happened: every city's number, three languages, green callers
    assert res.features["dids"] == 19 and res.features["cities"] == 21, res.features   # 028 serves three cities
    assert {"zh", "bo", "en"} <= set(res.features["languages"]), res.features
    assert res.features["green"] > 0
    # live == stored statistics, city by city
    assert res.stats_match, (res.stats_live, res.stats_wallboard, res.stats_stored)
    # memory bounded
    for name in ("controller", "transcriber", "interop"):
        g = res.growth_after_peak(name)
        assert g is not None and g <= MAX_GROWTH, (name, g, res.rss[name][:3], res.rss[name][-3:])
    # the wallboard viewers stayed connected
    assert res.wallboard["open_at_end"] == VIEWERS, res.wallboard
