"""National holidays checked against the chinese-calendar package; per-city local holidays (Tibetan New
Year in Garzê and Aba, the Torch Festival and Yi New Year in Liangshan); the alarm when next year's
dates are missing by 1 December."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import yaml

from callcenter.asterisk.confgen.routing import hours_contexts
from core.config import load_config
from core.config.base import ConfigError
from core.schedule import is_open, missing_holiday_years
from tests.config_tree import copy_tree, edit

CFG = load_config()
SH = "Asia/Shanghai"
NATIONAL = yaml.safe_load((CFG.config_dir / "holidays.yaml").read_text(encoding="utf-8"))


def at(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=ZoneInfo(SH))


@pytest.mark.parametrize("year", sorted(NATIONAL))
def test_national_holidays_match_the_chinese_calendar_package(year):
    """Every closed day and make-up working day of a year in holidays.yaml is the package's, and the
    package has no other for that year (a year it does not know yet is reported, not passed)."""
    cc = pytest.importorskip("chinese_calendar")
    theirs_closed = {d for d in cc.holidays if d.year == year}
    theirs_work = {d for d in cc.workdays if d.year == year}
    if not theirs_closed:
        pytest.skip(f"chinese-calendar {getattr(cc, '__version__', '?')} has no dates for {year} yet")
    from core.schedule import parse_dates
    ours_closed = parse_dates(NATIONAL[year].get("closed") or [])
    ours_work = parse_dates(NATIONAL[year].get("workdays") or [])
    assert ours_closed == theirs_closed, (sorted(ours_closed ^ theirs_closed))
    assert ours_work == theirs_work, (sorted(ours_work ^ theirs_work))


def test_liangshan_closes_for_the_torch_festival_and_yi_new_year_other_cities_do_not():
    for day in ("2026-08-06T10:00", "2026-11-20T10:00"):          # a Thursday, a Friday
        assert not is_open(CFG.schedules["liangshan"], at(day), SH), day
        assert is_open(CFG.schedules["leshan"], at(day), SH), day
        assert is_open(CFG.schedules["ganzi"], at(day), SH), day


def test_tibetan_new_year_closes_garze_and_aba():
    for city in ("ganzi", "aba"):
        assert date(2026, 2, 18) in CFG.schedules[city].closed
    assert CFG.holiday_years["ganzi"] == [2026] and CFG.holiday_years["national"] == [2026]


def test_a_local_holiday_on_a_working_day_is_generated_for_that_city_only(tmp_path):
    root = copy_tree(tmp_path)
    edit(root / "config" / "local_holidays.yaml", lambda d: d["cities"]["ganzi"].append(
        {"year": 2026, "name": "test", "days": "2026-03-10"}))
    cfg = load_config(root)
    assert not is_open(cfg.schedules["ganzi"], at("2026-03-10T10:00"), SH)
    assert is_open(cfg.schedules["aba"], at("2026-03-10T10:00"), SH)
    plan = hours_contexts(cfg)
    national, _, rest = plan.partition("[hotline-make-up-days]")
    assert "20261001" in national and "20260310" not in national and "20260806" not in national
    ganzi = rest.split("[hotline-closed-days-ganzi]")[1].split("\n[")[0]
    assert "exten => 20260310,1,Return()" in ganzi
    assert "hotline-closed-days-ganzi,${LOCAL(d)}" in rest.split("[hotline-hours-ganzi]")[1].split("\n[")[0]
    assert "hotline-closed-days-" not in rest.split("[hotline-hours-leshan]")[1].split("\n[")[0]


@pytest.mark.parametrize("change,message", [
    (lambda d: d["cities"].__setitem__("gotham", []), "cities.gotham: unknown city"),
    (lambda d: d["cities"]["ganzi"][0].__setitem__("days", "2027-02-07"), "cities.ganzi[0].days: 2027-02-07 is not in 2026"),
    (lambda d: d["cities"]["ganzi"][0].__setitem__("days", "2026-02-30"), "cities.ganzi[0].days"),
])
def test_bad_local_holidays_are_refused_with_file_and_field(tmp_path, change, message):
    root = copy_tree(tmp_path)
    edit(root / "config" / "local_holidays.yaml", change)
    with pytest.raises(ConfigError, match="local_holidays.yaml") as e:
        load_config(root)
    assert message in str(e.value)


def test_next_years_dates_missing_by_1_december_is_an_alarm():
    years = {"national": [2026], "ganzi": [2026, 2027], "liangshan": [2026]}
    assert missing_holiday_years(date(2026, 11, 30), years) == {}
    missing = missing_holiday_years(date(2026, 12, 1), years)
    assert set(missing) == {"national", "liangshan"} and "2027" in missing["national"]
    assert "local_holidays.yaml" in missing["liangshan"] and "holidays.yaml" in missing["national"]
    assert missing_holiday_years(date(2026, 12, 31), {"national": [2026, 2027]}) == {}


async def test_the_wallboard_raises_and_clears_the_holidays_missing_alarm(db_url, tmp_path):
    """The controller's alarm round (real stores, SQLite and PostgreSQL): on 1 December without next
    year's dates, one alarm for the province (national list) and one per city with local holidays;
    cleared once the date is before December again (the condition no longer holds)."""
    from tests.helpers import http_app
    async with http_app(db_url, tmp_path) as c:
        wb = c.ctl.wallboard
        wb.local_date = lambda: date(2026, 12, 1)
        raised = await wb.raise_alarms()
        mine = {(a["city"], a["detail"]) for a in raised if a["topic"] == "holidays_missing"}
        assert {city for city, _ in mine} == {"province", "ganzi", "aba", "liangshan"}
        assert all("2027" in detail for _, detail in mine)
        assert not [a for a in await wb.raise_alarms() if a["topic"] == "holidays_missing"]   # once, not per round
        wb.local_date = lambda: date(2027, 6, 1)
        await wb.raise_alarms()
        open_ = [a for a in await c.ctl.alerts.alerts(kind="alarm") if a["topic"] == "holidays_missing"]
        assert len(open_) == 4 and all(a["cleared_at"] for a in open_)
