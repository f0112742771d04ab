"""Follow-up visits: calling hours, and the store's state machine on SQLite and PostgreSQL (scheduled
on close, claimed once, retried, given up, opted out for good)."""
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.calls import CallState
from backoffice.followups import within_calling_hours
from store.engine import Database, migrate
from store.followups import FollowUpStore
from store.tickets import TicketStore

ROOT = Path(__file__).resolve().parents[2]
UTC = timezone.utc


@pytest.mark.parametrize("utc_hour, allowed", [(0, False), (1, True), (11, True), (12, False), (23, False)])
def test_calling_hours_are_local(utc_hour, allowed):
    # 09:00-20:00 in Beijing is 01:00-12:00 UTC
    at = datetime(2026, 11, 25, utc_hour, 30, tzinfo=UTC)
    assert within_calling_hours(at, "09:00-20:00", "Asia/Shanghai") is allowed


async def closed_ticket(db: Database, call_id: str, number: str, follow_up: bool = True) -> dict:
    tickets = TicketStore(db)
    c = CallState(call_id=call_id, city="leshan", caller_number=number, agent="agent1001", answered_at=1.0,
                  language="bo")
    await tickets.ensure_for_call(c, "call", 72)
    t = await tickets.for_call(call_id)
    await tickets.update(t["id"], {"category": "traffic", "outcome": "answered", "follow_up": follow_up})
    return await tickets.update(t["id"], {"status": "closed"}, follow_up_after=timedelta(0))


async def test_follow_up_life(db_url):
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    fus = FollowUpStore(db)
    try:
        t = await closed_ticket(db, "8.1", "13811112222")
        await closed_ticket(db, "8.2", "13833334444", follow_up=False)      # no follow-up wanted
        now = datetime.now(UTC) + timedelta(seconds=1)
        (f,) = await fus.due(now, now + timedelta(minutes=2))
        assert (f["ticket_id"], f["language"], f["attempts"], f["status"]) == (t["id"], "bo", 1, "dialing")
        assert await fus.due(now, now) == []                                    # claimed once
        # unanswered: after the deadline it goes back to pending, then fails after the last attempt
        later = now + timedelta(minutes=3)
        (again,) = await fus.expire_dialing(later, later, attempts=2)
        assert again["status"] == "pending"
        await fus.due(later, later + timedelta(minutes=2))
        (gone,) = await fus.expire_dialing(later + timedelta(minutes=5), later, attempts=2)
        assert gone["status"] == "failed" and gone["result"] == "no_answer"
    finally:
        await db.close()


async def test_ratings_and_opt_out(db_url):
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    fus = FollowUpStore(db)
    try:
        await closed_ticket(db, "8.3", "13855556666")
        now = datetime.now(UTC) + timedelta(seconds=1)
        (f,) = await fus.due(now, now + timedelta(minutes=2))
        assert await fus.score(f["id"], "attitude", 4) and not await fus.score(f["id"], "attitude", 7)
        assert not await fus.score(f["id"], "mood", 3)
        done = await fus.end(f["id"], "hangup", callback=True, retry_at=now, attempts=3)
        assert (done["status"], done["result"], done["attitude"], done["callback_requested"]) == ("done", "partial", 4, True)
        assert await fus.end(f["id"], "done", False, now, 3) is None            # one end only
        # pressing 9: opted out, and a later ticket of the same number is never dialled
        await closed_ticket(db, "8.4", "13877778888")
        (g,) = await fus.due(now, now + timedelta(minutes=2))
        out = await fus.end(g["id"], "optout", False, now, 3)
        assert out["status"] == "opted_out"
        t5 = await closed_ticket(db, "8.5", "13877778888")
        assert await fus.search(ticket_id=t5["id"]) == []                        # not even scheduled
    finally:
        await db.close()
