"""Consultation tickets: the workflow rules (pure) and the store on SQLite and PostgreSQL."""
import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import update

from core.calls import CallState
from store.engine import Database, migrate
from store.tickets import TicketStore
from store.models import Ticket
from backoffice.tickets import TicketError, check_edit, check_transition
from core.config import load_config

ROOT = Path(__file__).resolve().parents[2]
RULES = load_config(ROOT).tickets


@pytest.mark.parametrize("changes, message", [
    ({"category": "astrology"}, "unknown category 'astrology'"),
    ({"outcome": "solved"}, "unknown outcome 'solved'"),
    ({"status": "closed"}, "unknown fields \\['status'\\]"),
    ({"summary": 42}, "summary must be text"),
    ({"follow_up": "yes"}, "follow_up must be true or false"),
])
def test_bad_edits_are_refused_with_a_reason(changes, message):
    with pytest.raises(TicketError, match=message):
        check_edit(changes, RULES)


@pytest.mark.parametrize("ticket, to, message", [
    ({"status": "open"}, "closed", "can move to in_progress, resolved, referred, not closed"),
    ({"status": "open", "category": "", "outcome": ""}, "resolved", "classify the ticket"),
    ({"status": "in_progress", "category": "traffic", "outcome": "answered"}, "referred", "needs a referral outcome"),
    ({"status": "closed", "category": "traffic", "outcome": "answered"}, "in_progress", "nothing \\(closed\\)"),
    ({"status": "open"}, "done", "status must be one of"),
])
def test_workflow_refusals(ticket, to, message):
    with pytest.raises(TicketError, match=message):
        check_transition(ticket, to)


def test_workflow_path():
    t = {"status": "open", "category": "labour_wages", "outcome": "referred_legal_aid"}
    for to in ("in_progress", "referred", "closed"):
        check_transition(t, to)
        t["status"] = to
    assert RULES.deadline(green=True) < RULES.deadline(green=False)


@pytest.fixture
async def tickets(db_url):
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    yield TicketStore(db)
    await db.close()


async def test_one_ticket_per_call_even_when_raced(tickets):
    call = CallState(call_id="9.1", city="leshan", caller_number="13800001111", agent="agent1001",
                     answered_at=1.0, status="talking")
    created = await asyncio.gather(*[tickets.ensure_for_call(call, "call", 72) for _ in range(5)])
    ids = [i for i in created if i is not None]
    assert len(ids) == 1 and created.count(None) == 4
    (t,) = await tickets.search(caller="13800001111")
    assert t["id"] == ids[0]
    assert (t["status"], t["agent"], t["source"]) == ("open", "agent1001", "call")
    # a transfer moves it to the agent who has the caller now
    call.agent = "agent1002"
    await tickets.follow_agent(call)
    assert (await tickets.for_call("9.1"))["agent"] == "agent1002"


async def test_conditional_update_and_escalation(tickets):
    call = CallState(call_id="9.2", city="leshan", caller_number="13800002222", agent="agent1001", answered_at=1.0)
    await tickets.ensure_for_call(call, "call", 72)
    t = await tickets.for_call("9.2")
    moved = await tickets.update(t["id"], {"status": "in_progress"}, expect_status="open")
    assert moved["status"] == "in_progress"
    assert await tickets.update(t["id"], {"status": "resolved"}, expect_status="open") is None   # lost the race
    assert await tickets.escalate_overdue() == []
    async with tickets.session.begin() as s:
        await s.execute(update(Ticket).values(due_at=datetime.now(timezone.utc) - timedelta(hours=1)))
    (late,) = await tickets.escalate_overdue()
    assert late["id"] == t["id"] and late["escalated_at"]
    assert await tickets.escalate_overdue() == []          # once
    assert [x["id"] for x in await tickets.search(overdue=True)] == [t["id"]]


@pytest.mark.parametrize("body, message", [
    ({"city": "leshan"}, "description is required"),
    ({"city": "atlantis", "description": "x"}, "unknown city"),
    ({"city": "leshan", "description": "x", "kind": "praise"}, "kind must be"),
    ({"city": "leshan", "description": "x", "source": "pigeon"}, "source must be"),
    ({"city": "leshan", "description": "x", "complainant_number": "call me"}, "phone number"),
    ({"city": "leshan", "description": "x", "status": "closed"}, "unknown fields"),
])
def test_complaint_intake_refusals(body, message):
    from backoffice.tickets import check_complaint_intake
    with pytest.raises(TicketError, match=message):
        check_complaint_intake(body, {"leshan"})


def test_complaint_moves():
    from backoffice.tickets import check_complaint_move
    check_complaint_move("received", "assigned")
    check_complaint_move("assigned", "replied", "已核实并整改")
    with pytest.raises(TicketError, match="reply to the complainant is required"):
        check_complaint_move("assigned", "replied", " ")
    with pytest.raises(TicketError, match="can move to assigned, not closed"):
        check_complaint_move("received", "closed")
