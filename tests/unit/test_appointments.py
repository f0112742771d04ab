"""Legal-aid appointments: slots from hours and holidays (pure), and booking under contention on
SQLite and PostgreSQL: never two applicants on one seat, messages written with the booking."""
import asyncio
from datetime import date
from pathlib import Path

import pytest

from backoffice.appointments import BookingError, centers_of, check_booking_time, message, slot_times
from core.config import load_config
from core.schedule import Schedule
from store.appointments import AppointmentStore, SlotFull
from store.engine import Database, migrate

ROOT = Path(__file__).resolve().parents[2]
CFG = load_config(ROOT)
CENTERS = centers_of(CFG)
LESHAN = CENTERS.by_id["leshan_city"]


def test_slots_follow_hours_holidays_and_make_up_days():
    plain = Schedule(False, {}, frozenset({date(2026, 10, 1)}), frozenset({date(2026, 9, 27)}))
    assert slot_times(LESHAN, date(2026, 11, 26), plain)[:3] == ["09:00", "09:30", "10:00"]   # a Thursday
    assert "12:00" not in slot_times(LESHAN, date(2026, 11, 26), plain)                      # lunch
    assert slot_times(LESHAN, date(2026, 11, 28), plain) == []                                # Saturday
    assert slot_times(LESHAN, date(2026, 10, 1), plain) == []                                 # National Day
    assert slot_times(LESHAN, date(2026, 9, 27), plain)[0] == "09:00"                         # make-up Sunday
    assert slot_times(CENTERS.by_id["chengdu_city"], date(2026, 11, 28), plain) == ["09:00", "09:30", "10:00",
                                                                                     "10:30", "11:00", "11:30"]


@pytest.mark.parametrize("day, slot, words", [
    (date(2026, 11, 20), "09:00", "in the past"),
    (date(2027, 3, 1), "09:00", "30 days ahead"),
    (date(2026, 11, 26), "12:15", "no slot 12:15"),
    (date(2026, 11, 28), "09:00", "closed that day"),
])
def test_booking_time_checks(day, slot, words):
    with pytest.raises(BookingError, match=words):
        check_booking_time(LESHAN, day, slot, None, today=date(2026, 11, 25))


def test_texts_in_the_callers_language():
    zh = message(CENTERS, "confirmation", "zh", LESHAN, "2026-11-26", "09:00", "A1B2")
    en = message(CENTERS, "confirmation", "en", LESHAN, "2026-11-26", "09:00", "A1B2")
    bo = message(CENTERS, "confirmation", "bo", LESHAN, "2026-11-26", "09:00", "A1B2")
    assert "乐山市法律援助中心" in zh and "A1B2" in zh
    assert "Leshan Legal Aid Center" in en
    assert "ལེ་ཧྲན" in bo and "A1B2" in bo
    assert message(CENTERS, "reminder", "ii", LESHAN, "2026-11-26", "09:00", "X") .startswith("【12348】提醒")  # Yi: Chinese


async def test_fifty_desks_race_for_the_last_five_seats(db_url):
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    appts = AppointmentStore(db)
    try:
        def book(n):
            return appts.book(center_id="leshan_city", city="leshan", day="2026-11-26", slot="09:00", capacity=8,
                              caller_number=f"1390000{n:04d}", language="zh", ticket_id=None, booked_by="agent1001",
                              messages=lambda code: [("appointment_confirmation", f"ref {code}", None)])
        for n in range(3):                     # three seats already taken
            await book(n)
        results = await asyncio.gather(*[book(100 + n) for n in range(50)], return_exceptions=True)
        booked = [r for r in results if isinstance(r, dict)]
        full = [r for r in results if isinstance(r, SlotFull)]
        assert len(booked) == 5 and len(full) == 45, [r for r in results if not isinstance(r, (dict, SlotFull))]
        rows = await appts.search(day="2026-11-26")
        assert sorted(r["seat"] for r in rows) == list(range(1, 9))
        assert len(await appts.outbox()) == 8          # one confirmation per booking, none for refusals
        # a cancellation frees the seat, drops the reminder and queues the cancellation text
        first = rows[0]
        done = await appts.cancel(first["id"], lambda a: f"cancelled {a.code}")
        assert done["status"] == "cancelled" and done["seat"] is None
        assert await appts.cancel(first["id"], lambda a: "again") is None
        again = await book(999)
        assert again["seat"] == first["seat"]
        kinds = [m["kind"] for m in await appts.outbox(related=f"appointment:{first['id']}")]
        assert kinds == ["appointment_confirmation", "appointment_cancelled"]
    finally:
        await db.close()
