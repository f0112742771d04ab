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


async def test_texts_counted_per_day_and_city_in_the_stats(db_url, tmp_path):
    """Texts to callers in /api/stats (and its CSV): queued, sent (every part acknowledged), delivered
    and failed per local day and the city of the ticket or appointment they are about, moved through
    their states by the SMS store's own steps (as interop/sms.py moves them)."""
    from sqlalchemy import update
    from zoneinfo import ZoneInfo
    from store.models import OutboxMessage
    from store.reports import text_rows
    from store.sms import SmsStore
    from tests.helpers import http_app
    async with http_app(db_url, tmp_path) as client:
        db = client.ctl.db
        c = CallState(call_id="sms.9", city="leshan", caller_number="13800138000", status="ended",
                      outcome="answered", started_at=datetime(2026, 11, 25, 2, tzinfo=UTC).timestamp())
        await client.ctl.tickets.ensure_for_call(c, "call", 72)
        ticket = await client.ctl.tickets.for_call("sms.9")
        await AppointmentStore(db).book(center_id="chengdu_city", city="chengdu", day="2026-11-27", slot="09:00",
                                        capacity=1, caller_number="13900139000", language="zh", ticket_id=None,
                                        booked_by="x", messages=lambda code: [("appointment_confirmation", code, None)])
        sms = SmsStore(db)
        about = f"ticket:{ticket['id']}"
        ids = [(await sms.queue(to_number="13800138000", body=f"text {i}", kind="kb_summary",
                                related=about if i != 6 else ""))["id"] for i in range(1, 9)]
        t1, t2, t3, t4, _t5, _t6, t7, t8 = ids      # t6 is about nothing: no city
        claimed = {m["id"] for m in await sms.claim("w", 60)}
        assert set(ids) <= claimed
        # t1 delivered in two parts; t2 sent, then UNDELIV; t3 refused before sending; t4 one part of
        # two acknowledged, then a dead letter (not sent); t7 cancelled; t5, t6 and the booking's wait
        for part, smsc_id in ((1, "A1"), (2, "A2")):
            assert await sms.part_submitted(t1, part, 2, smsc_id)
        assert await sms.part_submitted(t2, 1, 1, "B1")
        assert await sms.submitted(t1, "w") and await sms.submitted(t2, "w")
        for smsc_id, stat in (("A1", "DELIVRD"), ("A2", "DELIVRD"), ("B1", "UNDELIV")):
            await sms.receipt(smsc_id, stat, "000" if stat == "DELIVRD" else "001")
        assert await sms.settle(t3, "w", status="failed", error="not a mobile")
        assert await sms.part_submitted(t4, 1, 2, "D1")
        assert await sms.settle(t4, "w", status="dead", error="ESME_RSYSERR")
        assert await sms.settle(t7, "w", status="cancelled")
        for m in claimed - {t1, t2, t3, t4, t7}:
            assert await sms.settle(m, "w", status="pending", count_attempt=False)
        assert [(await sms.get(i))["status"] for i in (t1, t2, t3, t4)] == ["delivered", "failed", "failed", "dead"]
        # queued at 11:00 in Beijing on the 25th; t7 at 01:00 on the 26th; t8 on the 24th (outside)
        async with db.session.begin() as s:
            await s.execute(update(OutboxMessage).values(created_at=datetime(2026, 11, 25, 3, tzinfo=UTC)))
            await s.execute(update(OutboxMessage).where(OutboxMessage.id == t7).values(
                created_at=datetime(2026, 11, 25, 17, tzinfo=UTC)))
            await s.execute(update(OutboxMessage).where(OutboxMessage.id == t8).values(
                created_at=datetime(2026, 11, 24, 10, tzinfo=UTC)))

        bj = ZoneInfo(TZ)
        since, until = datetime(2026, 11, 25, tzinfo=bj), datetime(2026, 11, 27, tzinfo=bj)
        texts = await text_rows(db, since, until)
        assert sorted((t["city"], t["status"], t["sent"]) for t in texts) == sorted([
            ("leshan", "delivered", True), ("leshan", "failed", True), ("leshan", "failed", False),
            ("leshan", "dead", False), ("leshan", "pending", False), ("", "pending", False),
            ("leshan", "cancelled", False),
            ("chengdu", "pending", False)])
        assert len(await text_rows(db, since, until, "leshan")) == 6
        figures = ("sms", "sms_sent", "sms_delivered", "sms_failed")
        rows = {(r["period"], r["city"]): tuple(r[k] for k in figures)
                for r in aggregate([], [], [], "day", TZ, texts=texts)}
        assert rows == {("2026-11-25", "leshan"): (5, 2, 1, 3), ("2026-11-25", "chengdu"): (1, 0, 0, 0),
                        ("2026-11-25", "unknown"): (1, 0, 0, 0), ("2026-11-25", "province"): (7, 2, 1, 3),
                        ("2026-11-26", "leshan"): (1, 0, 0, 0), ("2026-11-26", "province"): (1, 0, 0, 0)}

        # GET /api/stats: the same figures as fields of the existing rows, and columns of the export
        auth = {"Authorization": "Bearer t"}
        r = await client.get("/api/stats?period=day&from=2026-11-25&to=2026-11-26&city=leshan", headers=auth)
        assert r.status == 200, await r.text()
        got = {x["period"]: x for x in await r.json()}
        assert tuple(got["2026-11-25"][k] for k in figures) == (5, 2, 1, 3)
        assert got["2026-11-25"]["calls"] == 0 and "by_category" in got["2026-11-25"]     # the shape kept
        r = await client.get("/api/stats?period=month&from=2026-11-01&to=2026-11-30", headers=auth)
        province = next(x for x in await r.json() if x["city"] == "province")
        assert tuple(province[k] for k in figures) == (9, 2, 1, 3)      # the 24th's text too
        r = await client.get("/api/stats?period=day&from=2026-11-25&to=2026-11-25&city=leshan&format=csv",
                             headers=auth)
        table = list(csv.DictReader(io.StringIO((await r.read()).decode("utf-8-sig"))))
        assert [(t["统计期间"], t["短信量"], t["短信发出量"], t["短信送达量"], t["短信失败量"]) for t in table] == [
            ("2026-11-25", "5", "2", "1", "3")]
