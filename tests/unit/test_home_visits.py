"""Home visits (上门服务, seeds 001 and 003 #18): for applicants aged 80+ or with a severe disability, a
visit booked instead of an office slot, through the real HTTP API on SQLite and PostgreSQL, with the
same no-double-booking guarantee as appointments (one of the center's teams per seat, under contention)."""
from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from backoffice.appointments import BookingError, centers_of, check_booking_time, home_visit_reason, slot_times
from core.config import load_config
from tests.helpers import http_app

CFG = load_config()
LESHAN = centers_of(CFG).by_id["leshan_city"]
AUTH = {"Authorization": "Bearer t"}


def visit_day() -> tuple[str, str]:
    """The first day from the day after tomorrow with a home-visit slot in Leshan, and its first slot."""
    today = datetime.now(ZoneInfo(CFG.routing.timezone)).date()
    for n in range(2, 25):
        d = today + timedelta(days=n)
        slots = slot_times(LESHAN.home_visits, d, CFG.schedules["leshan"])
        if slots:
            return d.isoformat(), slots[0]
    raise AssertionError("no home-visit day in the next weeks")


@pytest.mark.parametrize("age, grade, reason", [(80, None, "elderly_80"), (93, 3, "elderly_80"),
                                                (45, 1, "severe_disability"), (None, 2, "severe_disability")])
def test_who_qualifies(age, grade, reason):
    assert home_visit_reason(age, grade) == reason


@pytest.mark.parametrize("age, grade", [(79, None), (60, 3), (None, None), (30, 4)])
def test_who_does_not(age, grade):
    with pytest.raises(BookingError, match="aged 80 or over"):
        home_visit_reason(age, grade)


def test_home_visit_slots_are_the_centers_own():
    assert LESHAN.home_visits.slot_minutes == 90
    assert slot_times(LESHAN.home_visits, date(2026, 11, 26), None) == ["09:00", "10:30", "14:00", "15:30"]
    with pytest.raises(BookingError, match="does not make home visits"):
        check_booking_time(centers_of(CFG).by_id["ganzi_kangding"], date(2026, 11, 26), "09:30", None,
                           today=date(2026, 11, 25), kind="home_visit")
    with pytest.raises(BookingError, match="no slot 09:30"):     # an office slot is no visit slot
        check_booking_time(LESHAN, date(2026, 11, 26), "09:30", None, today=date(2026, 11, 25), kind="home_visit")


async def test_concurrent_home_visit_bookings_never_share_a_team(db_url, tmp_path):
    day, slot = visit_day()
    async with http_app(db_url, tmp_path) as c:
        free = await (await c.get(f"/api/legal-aid/centers/leshan_city/home-visit-slots?date={day}",
                                  headers=AUTH)).json()
        assert free[0] == {"slot": slot, "free": 1}            # Leshan sends one team out at a time
        body = {"center": "leshan_city", "date": day, "slot": slot, "language": "zh", "age": 86,
                "address": "乐山市市中区某街道 12 号 3 单元"}
        tries = [c.post("/api/home-visits", headers=AUTH, json={**body, "caller_number": f"1390000{n:04d}"})
                 for n in range(12)]
        answers = await asyncio.gather(*tries)
        statuses = sorted(r.status for r in answers)
        assert statuses == [201] + [409] * 11, statuses
        booked = [await r.json() for r in answers if r.status == 201][0]
        assert booked["kind"] == "home_visit" and booked["reason"] == "elderly_80" and booked["seat"] == 1
        assert booked["address"].startswith("乐山市市中区")
        # an office appointment at the same time is a different seat: still free
        office = await c.post("/api/appointments", headers=AUTH, json={
            "center": "leshan_city", "date": day, "slot": slot, "caller_number": "13900009999", "language": "zh"})
        assert office.status == 201, await office.text()
        assert (await office.json())["kind"] == "office"
        free = await (await c.get(f"/api/legal-aid/centers/leshan_city/home-visit-slots?date={day}",
                                  headers=AUTH)).json()
        assert free[0] == {"slot": slot, "free": 0}
        # the confirmation names the applicant's address, not the center's
        sms = await (await c.get(f"/api/outbox?related=appointment:{booked['id']}", headers=AUTH)).json()
        assert sms and "上门" in sms[0]["body"] and "某街道 12 号" in sms[0]["body"]
        audit = await (await c.get("/api/audit?limit=50", headers=AUTH)).json()
        assert [a for a in audit if a["action"] == "book_home_visit" and a["target"] == f"appointment:{booked['id']}"]
        # cancelling frees the team for the next applicant
        assert (await c.post(f"/api/appointments/{booked['id']}/cancel", headers=AUTH, json={})).status == 200
        again = await c.post("/api/home-visits", headers=AUTH, json={**body, "caller_number": "13900008888"})
        assert again.status == 201 and (await again.json())["seat"] == 1


@pytest.mark.parametrize("change, words", [
    ({"age": 70}, "aged 80 or over"),
    ({"age": 70, "disability_grade": 3}, "aged 80 or over"),
    ({"address": ""}, "address"),
    ({"age": "eighty"}, "age must be a whole number"),
    ({"disability_grade": True, "age": None}, "disability_grade must be a whole number"),
    ({"center": "ganzi_kangding"}, "does not make home visits"),
])
async def test_refusals_are_400_and_book_nothing(db_url, tmp_path, change, words):
    day, slot = visit_day()
    async with http_app(db_url, tmp_path) as c:
        body = {"center": "leshan_city", "date": day, "slot": slot, "caller_number": "13900001111",
                "language": "zh", "age": 88, "address": "乐山市五通桥区某村 3 组", **change}
        r = await c.post("/api/home-visits", headers=AUTH, json=body)
        assert r.status == 400 and words in (await r.json())["error"], await r.text()
        assert await (await c.get("/api/appointments", headers=AUTH)).json() == []
