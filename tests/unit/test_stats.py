"""Statistics: known answers from a seeded day, bucketing in local time, CSV/XLSX equal to the JSON."""
import csv
import io
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from core.calls import CallState
from backoffice.stats import aggregate, to_csv, to_xlsx
from store.appointments import AppointmentStore
from store.calls import CallStore
from store.engine import Database, migrate
from store.reports import report_rows
from store.tickets import TicketStore

ROOT = Path(__file__).resolve().parents[2]
UTC = timezone.utc
TZ = "Asia/Shanghai"


def call(h, city, outcome, green="", day=25):
    """A call record as the store gives it: answered and abandoned calls were queued (core/calls.py sets
    "abandoned" only for a caller who left a queue; the abandon here is a long one, 50 s)."""
    queued = outcome in ("answered", "abandoned")
    return {"started_at": datetime(2026, 11, day, h, 0, tzinfo=UTC), "city": city, "outcome": outcome,
            "status": "ended", "queued_at": datetime(2026, 11, day, h, 0, 10, tzinfo=UTC) if queued else None,
            "answered_at": datetime(2026, 11, day, h, 1, tzinfo=UTC) if outcome == "answered" else None,
            "ended_at": datetime(2026, 11, day, h, 5 if outcome == "answered" else 1, tzinfo=UTC),
            "talk_seconds": 240.0 if outcome == "answered" else None, "green": green}


CALLS = [call(1, "leshan", "answered"), call(2, "leshan", "abandoned"), call(3, "leshan", "answered", "migrant_wages"),
         call(4, "chengdu", "voicemail"), call(5, "", "unknown_number"),
         call(17, "leshan", "answered")]          # 01:00 on the 26th in Beijing: the next day
TICKETS = [{"created_at": datetime(2026, 11, 25, 1, 5, tzinfo=UTC), "city": "leshan", "category": "labour_wages",
            "outcome": "referred_legal_aid"},
           {"created_at": datetime(2026, 11, 25, 3, 5, tzinfo=UTC), "city": "leshan", "category": "", "outcome": ""}]
APPTS = [{"day": "2026-11-25", "city": "leshan", "status": "booked"},
         {"day": "2026-11-25", "city": "leshan", "status": "cancelled"}]


def test_known_answers_per_city_day_and_province():
    rows = {(r["period"], r["city"]): r for r in aggregate(CALLS, TICKETS, APPTS, "day", TZ)}
    le = rows[("2026-11-25", "leshan")]
    assert (le["calls"], le["answered"], le["abandoned"], le["answer_rate"]) == (3, 2, 1, 0.6667)
    assert le["green_share"] == 0.3333 and le["referrals"] == 1 and le["appointments"] == 1
    assert le["by_category"] == {"labour_wages": 1, "unclassified": 1}
    assert rows[("2026-11-26", "leshan")]["calls"] == 1                      # local date, not UTC
    prov = rows[("2026-11-25", "province")]
    assert (prov["calls"], prov["voicemail"]) == (4, 1)                     # unknown numbers are not calls
    month = aggregate(CALLS, TICKETS, APPTS, "month", TZ)
    assert {(r["period"], r["city"]): r["calls"] for r in month}[("2026-11", "province")] == 5


def test_complaints_and_satisfaction():
    complaints = [{"created_at": datetime(2026, 11, 25, 2, tzinfo=UTC), "city": "leshan"}]
    surveys = [{"updated_at": datetime(2026, 11, 25, 3, tzinfo=UTC), "city": "leshan", "attitude": 4, "efficiency": 5,
                "professionalism": 3},
               {"updated_at": datetime(2026, 11, 25, 4, tzinfo=UTC), "city": "leshan", "attitude": 2, "efficiency": None,
                "professionalism": None}]
    rows = {(r["period"], r["city"]): r for r in aggregate([], [], [], "day", TZ, complaints=complaints, surveys=surveys)}
    le = rows[("2026-11-25", "leshan")]
    assert (le["complaints"], le["surveys"], le["satisfaction"]) == (1, 2, 3.0)   # mean of 4.0 and 2.0


def test_csv_and_xlsx_carry_the_same_numbers():
    rows = aggregate(CALLS, TICKETS, APPTS, "day", TZ)
    cats = ["labour_wages", "unclassified"]
    table = list(csv.DictReader(io.StringIO(to_csv(rows, cats))))
    assert [(t["period"], t["city"], int(t["calls"]), int(t["category:labour_wages"])) for t in table] == \
        [(r["period"], r["city"], r["calls"], r["by_category"].get("labour_wages", 0)) for r in rows]
    book = zipfile.ZipFile(io.BytesIO(to_xlsx(rows, cats)))
    assert "xl/worksheets/sheet1.xml" in book.namelist()


async def test_rows_from_the_store(db_url):
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    calls_store = CallStore(db)
    try:
        c = CallState(call_id="5.1", city="leshan", caller_number="1381", status="ended", outcome="answered",
                      agent="agent1001", started_at=datetime(2026, 11, 25, 2, tzinfo=UTC).timestamp(),
                      queued_at=datetime(2026, 11, 25, 2, 0, 30, tzinfo=UTC).timestamp(),
                      answered_at=datetime(2026, 11, 25, 2, 1, tzinfo=UTC).timestamp())
        await calls_store.save_call(c)
        await TicketStore(db).ensure_for_call(c, "call", 72)
        await AppointmentStore(db).book(center_id="leshan_city", city="leshan", day="2026-11-25", slot="09:00",
                                           capacity=1, caller_number="1381", language="zh", ticket_id=None,
                                           booked_by="x", messages=lambda code: [])
        from zoneinfo import ZoneInfo
        bj = ZoneInfo(TZ)        # the 25th in Beijing, as the API asks
        since, until = datetime(2026, 11, 25, tzinfo=bj), datetime(2026, 11, 26, tzinfo=bj)
        calls, tickets, appts, complaints, surveys = await report_rows(db, since, until, "leshan")
        assert complaints == [] and surveys == []
        assert len(calls) == 1 and len(appts) == 1
        assert all((c["started_at"] if c["started_at"].tzinfo else c["started_at"].replace(tzinfo=UTC))
                   .astimezone(bj).date().isoformat() == "2026-11-25" for c in calls)
        rows = {(r["period"], r["city"]): r for r in aggregate(calls, tickets, appts, "day", TZ)}
        le = rows[("2026-11-25", "leshan")]
        assert (le["calls"], le["answered"], le["appointments"]) == (1, 1, 1)
        # a call at 20:00 UTC on the 25th is on the 26th in Beijing: not in the 25th's figures
        late = CallState(call_id="5.2", city="leshan", status="ended", outcome="abandoned",
                         started_at=datetime(2026, 11, 25, 20, tzinfo=UTC).timestamp())
        await calls_store.save_call(late)
        calls, *_ = await report_rows(db, since, until, "leshan")
        assert [c["outcome"] for c in calls] == ["answered"]
    finally:
        await db.close()


def test_emergencies_are_counted_and_still_answered_calls():
    """A call handed to 110/120 (warm transfer, the agent on the line) was answered; it also counts as
    an emergency, in the JSON rows and the export's column."""
    em = {**call(2, "leshan", "answered"), "outcome": "emergency"}
    rows = aggregate(CALLS + [em], [], [], "day", TZ)
    le = next(r for r in rows if r["city"] == "leshan" and r["period"] == "2026-11-25")
    pr = next(r for r in rows if r["city"] == "province" and r["period"] == "2026-11-25")
    assert (le["emergencies"], le["answered"], pr["emergencies"]) == (1, 3, 1)
    assert next(r for r in rows if r["city"] == "chengdu")["emergencies"] == 0
    table = list(csv.DictReader(io.StringIO(to_csv(rows, []))))
    assert [r["emergencies"] for r in table if r["city"] == "leshan"] == ["1", "0"]
