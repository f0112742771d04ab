"""Issue 16, finding 4 (second half): a caller is one caller whatever form the carrier or a person wrote
the number in (13800000000, +8613800000000, 008613800000000): history, tickets, opt-outs, complaints
and appointments compare numbers as E.164 (core.numbering), on SQLite and PostgreSQL, including rows
stored before the comparison changed."""
from datetime import datetime, timedelta, timezone

from core.calls import CallState
from store.appointments import AppointmentStore
from store.calls import CallStore
from store.complaints import ComplaintStore
from store.engine import Database, migrate, utcnow
from store.followups import FollowUpStore
from store.models import OptOut
from store.tickets import TicketStore
from tests.helpers import ROOT

FORMS = ("13800000000", "+8613800000000", "008613800000000", "8613800000000")


async def _answered(calls: CallStore, tickets: TicketStore, call_id: str, number: str, at: float) -> None:
    c = CallState(call_id=call_id, city="leshan", caller_number=number, agent="agent1001", status="ended",
                  outcome="answered", started_at=at, answered_at=at + 1)
    await calls.save_call(c)
    await tickets.ensure_for_call(c, "call", 72)


async def test_a_caller_has_one_history_in_every_form_of_the_number(db_url):
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    calls, tickets = CallStore(db), TicketStore(db)
    try:
        for i, number in enumerate(FORMS):
            await _answered(calls, tickets, f"e.{i}", number, 1000.0 + i)
        await _answered(calls, tickets, "e.other", "13800000001", 2000.0)
        await _answered(calls, tickets, "e.fixed", "08332123456", 2001.0)
        # a call from +86… sees the calls and tickets of 13800000000 and the other forms, and no one else's
        assert [c["call_id"] for c in await calls.caller_history("+8613800000000", "e.1")] == ["e.3", "e.2", "e.0"]
        for number in FORMS:
            assert {t["call_id"] for t in await tickets.caller_tickets(number)} == {"e.0", "e.1", "e.2", "e.3"}
            assert {t["call_id"] for t in await tickets.search(caller=number)} == {"e.0", "e.1", "e.2", "e.3"}
        # a fixed line: its area code's 0 goes after +86
        assert [c["call_id"] for c in await calls.caller_history("+868332123456")] == ["e.fixed"]
        assert [t["call_id"] for t in await tickets.caller_tickets("00868332123456")] == ["e.fixed"]
    finally:
        await db.close()


async def _close_with_follow_up(tickets: TicketStore, call_id: str, number: str) -> dict:
    c = CallState(call_id=call_id, city="leshan", caller_number=number, agent="agent1001", answered_at=1.0)
    await tickets.ensure_for_call(c, "call", 72)
    t = await tickets.for_call(call_id)
    await tickets.update(t["id"], {"category": "traffic", "outcome": "answered", "follow_up": True})
    return await tickets.update(t["id"], {"status": "closed"}, follow_up_after=timedelta(0))


async def test_an_opt_out_in_one_form_stops_calls_to_every_form(db_url):
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    tickets, fus = TicketStore(db), FollowUpStore(db)
    try:
        both = [await _close_with_follow_up(tickets, f"o.{i}", n) for i, n in ((1, "13800000000"),
                                                                               (2, "+8613800000000"))]
        now = datetime.now(timezone.utc) + timedelta(seconds=1)
        (first,) = await fus.due(now, now + timedelta(minutes=2), limit=1)
        assert (await fus.end(first["id"], "optout", False, now, 3))["status"] == "opted_out"
        # the other form's follow-up, scheduled before the opt-out, is not dialled
        assert await fus.due(now, now + timedelta(minutes=2)) == []
        for t in both:
            assert [f["status"] for f in await fus.search(ticket_id=t["id"])] == ["opted_out"]
        # and a new ticket in a third form schedules none
        later = await _close_with_follow_up(tickets, "o.3", "008613800000000")
        assert await fus.search(ticket_id=later["id"]) == []
        # an opt-out written before numbers were compared in one form (as dialled) still counts
        async with db.session.begin() as s:
            s.add(OptOut(number="13900000000", source="agent", created_at=utcnow()))
        old = await _close_with_follow_up(tickets, "o.4", "+8613900000000")
        assert await fus.search(ticket_id=old["id"]) == []
        # someone else is still called
        assert await fus.search(ticket_id=(await _close_with_follow_up(tickets, "o.5", "13800000001"))["id"])
    finally:
        await db.close()


async def test_complaints_and_appointments_are_found_by_caller_in_any_form(db_url):
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    complaints, appointments = ComplaintStore(db), AppointmentStore(db)
    try:
        for number in (*FORMS, "13800000001", ""):
            await complaints.add({"kind": "service", "source": "phone", "city": "leshan", "language": "zh",
                                  "complainant_number": number, "description": "waited too long"}, "sup_leshan", 7)
        for number in FORMS:
            assert {c["complainant_number"] for c in await complaints.search(caller=number)} == set(FORMS)
        assert len(await complaints.search()) == len(FORMS) + 2          # no caller: every complaint
        assert await complaints.search(caller="anonymous") == []
        for i, number in enumerate(("13800000000", "+8613800000000", "13800000001")):
            await appointments.book(center_id="leshan_center", city="leshan", day="2026-12-08", slot=f"0{i + 1}:00",
                                    capacity=1, caller_number=number, language="zh", ticket_id=None,
                                    booked_by="agent1001", messages=lambda code: [])
        booked = await appointments.search(caller="008613800000000")
        assert sorted(a["caller_number"] for a in booked) == ["+8613800000000", "13800000000"]
    finally:
        await db.close()
