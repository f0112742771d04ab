"""The pre-screen over the real HTTP app (no Asterisk), on SQLite and PostgreSQL: the answer carries the
article, the source and whether it is verified; the standards year is the current one; a year without
figures is a 409 naming what to add, and one operator alarm."""
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from core.config import load_config
from tests.config_tree import copy_tree, edit
from tests.helpers import http_app

AUTH = {"Authorization": "Bearer t"}


def this_year() -> int:
    return datetime.now(ZoneInfo(load_config(None).routing.timezone)).year


@pytest.fixture
async def client(db_url, tmp_path):
    async with http_app(db_url, tmp_path) as c:
        yield c


async def test_the_answer_cites_article_source_and_verification(client):
    r = await client.post("/api/legal-aid/prescreen", json={"city": "leshan", "matter": "domestic_violence"},
                          headers=AUTH)
    assert r.status == 200
    body = await r.json()
    assert (body["eligibility"], body["rule"], body["article"], body["verified"]) == \
        ("likely", "art32_abuse_victim", "第32条第4项", True)
    assert body["source"].startswith("中华人民共和国法律援助法")
    r = await client.post("/api/legal-aid/prescreen", headers=AUTH, json={
        "city": "leshan", "matter": "criminal_defence", "age": 40, "ordinary_procedure": True,
        "household_size": 1, "household_monthly_income": 9000, "limitation_days_left": 3})
    body = await r.json()
    assert (body["eligibility"], body["rule"], body["verified"]) == ("likely", "sc_court_shall_notify", False)
    assert body["provide_first"] and {"art30_duty_lawyer", "art44_provide_first"} <= {n["rule"] for n in body["notes"]}
    # summary procedure above the line: the duty lawyer (art. 30), its explanation apart from the article's text
    r = await client.post("/api/legal-aid/prescreen", headers=AUTH, json={
        "city": "leshan", "matter": "criminal_defence", "age": 40, "ordinary_procedure": False,
        "household_size": 1, "household_monthly_income": 9000})
    body = await r.json()
    assert (body["eligibility"], body["rule"], body["article"], body["verified"]) == \
        ("needs_review", "art30_duty_lawyer", "第30条", False)
    assert "值班律师" in body["explanation"] and "派驻" in body["note"] and "verified" in body["jurisdiction"]
    assert all("note" in n for n in body["notes"])
    for bad, message in (({"residence": "suburb"}, "residence"), ({"limitation_days_left": -1}, "limitation_days_left"),
                         ({"ordinary_procedure": "yes"}, "ordinary_procedure"), ({"groups": ["military"]}, "unknown groups")):
        r = await client.post("/api/legal-aid/prescreen", headers=AUTH,
                              json={"city": "leshan", "matter": "traffic", **bad})
        assert r.status == 400 and message in (await r.json())["error"], bad


async def test_a_means_test_without_this_years_figures_is_a_409_and_an_alarm(db_url, tmp_path, monkeypatch):
    year = this_year()
    tree = copy_tree(tmp_path / "tree")
    # this year's figures moved to a past year (the file stays valid); a year the shipped file lacks
    # already is the case itself
    edit(tree / "config" / "legal_aid.yaml",
         lambda d: str(year) in d["standards"] and d["standards"].__setitem__("2019", d["standards"].pop(str(year))))
    monkeypatch.setenv("HOTLINE_CONFIG_DIR", str(tree / "config"))
    async with http_app(db_url, tmp_path) as client:
        means = {"city": "leshan", "matter": "maintenance", "household_size": 2, "household_monthly_income": 1000}
        for _ in range(2):
            r = await client.post("/api/legal-aid/prescreen", json=means, headers=AUTH)
            assert r.status == 409
            assert f"no hardship standards for {year}" in (await r.json())["error"]
        # an answer that needs no figures is still given
        r = await client.post("/api/legal-aid/prescreen", json={"city": "leshan", "matter": "domestic_violence"},
                              headers=AUTH)
        assert r.status == 200
        # an explicit past year with figures still works
        r = await client.post("/api/legal-aid/prescreen", json={**means, "year": 2019}, headers=AUTH)
        assert r.status == 200 and (await r.json())["standards_year"] == 2019
        alarms = [a for a in await client.ctl.alerts.alerts() if a["topic"] == "legal_aid_standards"]
        assert len(alarms) == 1 and alarms[0]["severity"] == "high" and str(year) in alarms[0]["detail"]


async def test_the_controller_warns_before_the_year_turns_and_when_it_has(client):
    """From 1 December the next year's figures are due; in a year without figures, they are missing.
    One alert per year, however often the hourly check runs."""
    from datetime import date
    from backoffice.legal_aid import standards_due
    ctl, rules = client.ctl, client.ctl.cfg.legal_aid
    have = max(int(y) for y in rules.standards)
    assert standards_due(rules, date(have, 11, 30)) == []
    assert [(y, s) for y, s, _ in standards_due(rules, date(have, 12, 1))] == [(have + 1, "due")]
    assert [(y, s) for y, s, _ in standards_due(rules, date(have + 1, 1, 1))] == [(have + 1, "missing")]
    raised = await ctl.check_legal_aid_standards(date(have, 12, 1))
    assert [a["call_id"] for a in raised] == [f"legal_aid_standards:{have + 1}:due"]
    assert await ctl.check_legal_aid_standards(date(have, 12, 2)) == []        # once
    raised = await ctl.check_legal_aid_standards(date(have + 1, 1, 1))       # then, missing: the stronger alarm
    assert [a["call_id"] for a in raised] == [f"legal_aid_standards:{have + 1}:missing"]
    assert await ctl.check_legal_aid_standards(date(have + 1, 1, 2)) == []
    alerts = [a for a in await ctl.alerts.alerts() if a["topic"] == "legal_aid_standards"]
    assert len(alerts) == 2 and all(a["severity"] == "high" for a in alerts)
    assert any("before 1 January" in a["detail"] for a in alerts) and any("refused" in a["detail"] for a in alerts)
