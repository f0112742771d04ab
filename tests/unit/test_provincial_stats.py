"""The provincial report over the real HTTP app, on SQLite and PostgreSQL: calls by green-channel category
and language, tickets by county, handoffs by referral partner, and the year's 民生实事 targets (seed 001)
with the share achieved so far."""
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from backoffice.provincial import TargetsMissing, breakdown, targets_progress
from core.calls import CallState
from core.config import load_config
from tests.helpers import http_app

AUTH = {"Authorization": "Bearer t"}
RULES = load_config(None).legal_aid


@pytest.fixture
async def api(db_url, tmp_path):
    async with http_app(db_url, tmp_path) as c:
        yield c


async def _calls(ctl):
    now = time.time()
    calls = [  # (id, city, green, language, answered)
        ("s1", "leshan", "elderly", "zh", True), ("s2", "leshan", "elderly", "zh", False),
        ("s3", "ganzi", "disabled", "bo", True), ("s4", "ganzi", "", "bo", True),
        ("s5", "chengdu", "", "en", True), ("s6", "chengdu", "migrant_wages", "zh", True)]
    for i, (cid, city, green, lang, answered) in enumerate(calls):
        start = now - 600 + i
        c = CallState(call_id=cid, city=city, caller_number=f"1390000{i:04d}", language=lang, green=green,
                      agent="agent1001" if answered else "", status="ended",
                      outcome="answered" if answered else "abandoned", started_at=start, queued_at=start + 5,
                      answered_at=start + 10 if answered else None, ended_at=start + 60)
        await ctl.call_records.save_call(c)
        if answered:
            await ctl.tickets.ensure_for_call(c, "call", 72)


async def test_breakdown_by_green_language_county_and_partner(api):
    client, ctl = api, api.ctl
    await _calls(ctl)
    tickets = {t["call_id"]: t["id"] for t in await ctl.tickets.search(limit=50)}
    edits = {"s1": {"county": "511123", "category": "labour_wages", "outcome": "referred_legal_aid"},
             "s3": {"county": "513301", "category": "labour_wages", "outcome": "appointment"},
             "s6": {"county": "511123", "category": "labour_wages", "summary": "重庆务工欠薪"}}
    for call_id, body in edits.items():
        r = await client.patch(f"/api/tickets/{tickets[call_id]}", json=body, headers=AUTH)
        assert r.status == 200, await r.text()
    r = await client.patch(f"/api/tickets/{tickets['s5']}", json={"county": "999999"}, headers=AUTH)
    assert r.status == 400 and "county" in (await r.json())["error"]
    r = await client.post(f"/api/tickets/{tickets['s6']}/handoff", json={"partner": "cq12348", "consent": False},
                          headers=AUTH)
    assert r.status == 200, await r.text()

    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    r = await client.get(f"/api/stats/breakdown?from={today}&to={today}", headers=AUTH)
    assert r.status == 200, await r.text()
    b = await r.json()
    assert b["by_green"]["elderly"] == {"calls": 2, "answered": 1}
    assert b["by_green"]["disabled"] == {"calls": 1, "answered": 1} and b["by_green"]["none"]["calls"] == 2
    assert b["by_language"]["bo"] == {"calls": 2, "answered": 2} and b["by_language"]["zh"]["calls"] == 3
    assert b["by_county"]["511123"] == {"tickets": 2, "name": "四川省乐山市犍为县"}
    assert b["by_county"]["513301"]["name"] == "四川省甘孜藏族自治州康定市" and b["by_county"]["none"]["tickets"] == 2
    assert b["by_partner"] == {"cq12348": {"handoffs": 1, "pending": 1}}
    # one city only
    r = await client.get(f"/api/stats/breakdown?from={today}&to={today}&city=ganzi", headers=AUTH)
    g = await r.json()
    assert g["city"] == "ganzi" and set(g["by_language"]) == {"bo"} and g["by_partner"] == {}
    for bad in ("from=2026-01-02&to=2026-01-01", f"from={today}", f"from={today}&to={today}&city=atlantis"):
        r = await client.get(f"/api/stats/breakdown?{bad}", headers=AUTH)
        assert r.status == 400, bad

    # the year's targets: consultations = answered calls, cases = the case outcomes
    year = datetime.now(ZoneInfo("Asia/Shanghai")).year
    if str(year) in RULES.targets:
        r = await client.get("/api/stats/targets", headers=AUTH)
        assert r.status == 200, await r.text()
        t = await r.json()
        got = {m["measure"]: (m["achieved"], m["target"]) for m in t["measures"]}
        assert got["consultations"] == (5, RULES.targets[str(year)].consultations)
        assert got["cases"][0] == 2 and 0 < t["year_elapsed"] <= 1 and t["source"]
    r = await client.get("/api/stats/targets?year=2031", headers=AUTH)
    assert r.status == 404 and "no 民生实事 targets for 2031" in (await r.json())["error"]
    r = await client.get("/api/stats/targets?year=twenty", headers=AUTH)
    assert r.status == 400


def test_targets_progress_shares_and_the_seed_2024_figures():
    t = RULES.targets["2024"]
    assert (t.consultations, t.cases, t.verified) == (500000, 50000, True) and "民生实事" in t.source
    calls = [{"outcome": "answered", "answered_at": 1.0}] * 3 + [{"outcome": "abandoned", "answered_at": None},
                                                               {"outcome": "unknown_number", "answered_at": None}]
    tickets = [{"outcome": "referred_legal_aid"}, {"outcome": "answered"}, {"outcome": "referred_cq12348"}]
    p = targets_progress(RULES, 2024, date(2024, 7, 1), calls, tickets)
    m = {x["measure"]: x for x in p["measures"]}
    assert (m["consultations"]["achieved"], m["cases"]["achieved"]) == (3, 1)   # Chongqing's case is not ours
    assert m["cases"]["share"] == 1 / 50000 and p["year_elapsed"] == round(183 / 366, 4)
    with pytest.raises(TargetsMissing, match="2031"):
        targets_progress(RULES, 2031, date(2031, 1, 1), calls, tickets)
    assert breakdown([], [], []) == {"by_green": {}, "by_language": {}, "by_county": {}, "by_partner": {}}
