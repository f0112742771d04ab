"""The store on both real databases: SQLite (embedded default) and PostgreSQL (production)."""

from core.calls import CallState
from store.agents import AgentEventStore
from store.calls import CallStore
from store.engine import Database, migrate
from tests.helpers import ROOT


async def test_migrate_save_reload(db_url):
    migrate(db_url, ROOT)
    migrate(db_url, ROOT)  # idempotent
    db = Database(db_url, ROOT)
    store = CallStore(db)
    try:
        c = CallState(call_id="1.1", city="leshan", language="bo", ivr_path="lang=bo/svc=complaint",
                      caller_number="13800001111", status="queued", started_at=1000.0, queued_at=1010.5)
        await store.save_call(c)
        (back,) = await store.unfinished_calls()
        assert (back.city, back.language, back.queued_at, back.started_at) == ("leshan", "bo", 1010.5, 1000.0)
        c.status, c.outcome, c.answered_at, c.ended_at, c.agent = "ended", "answered", 1020.0, 1080.0, "agent1001"
        await store.save_call(c)  # the same row is updated, not duplicated
        assert await store.unfinished_calls() == []
        rows = await store.recent_calls(10)
        assert len(rows) == 1 and rows[0]["wait_seconds"] == 9.5 and rows[0]["talk_seconds"] == 60.0
        assert rows[0]["ivr_path"] == "lang=bo/svc=complaint"
        assert (await store.call("1.1"))["agent"] == "agent1001"
        assert await store.call("nope") is None
        await AgentEventStore(db).agent_event("agent1001", "pause", "meal")
    finally:
        await db.close()


async def test_batch_save_keeps_notes_and_fits_values(db_url):
    """The record writer's batch: new and known calls in one statement; the agent's notes are not
    overwritten by a later state; over-long or NUL-bearing caller IDs are cut, not refused."""
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    store = CallStore(db)
    try:
        first = CallState(call_id="b.1", city="leshan", status="talking", started_at=1000.0, agent="agent1001")
        await store.save_calls([first])
        assert await store.set_notes("b.1", "caller asks about wages owed")
        first.status, first.outcome, first.ended_at = "ended", "answered", 1100.0
        others = [CallState(call_id=f"b.{i}", city="chengdu", status="ivr", started_at=1000.0 + i,
                            caller_number=("1\x00" + "9" * 100)) for i in range(2, 52)]
        await store.save_calls([first, *others])
        await store.save_calls([])
        rows = {r["call_id"]: r for r in await store.recent_calls(100)}
        assert len(rows) == 51
        assert rows["b.1"]["status"] == "ended" and rows["b.1"]["notes"] == "caller asks about wages owed"
        assert rows["b.7"]["caller_number"] == ("1" + "9" * 100)[:32] and rows["b.7"]["notes"] == ""
    finally:
        await db.close()


async def test_a_withheld_or_empty_caller_number_has_no_history(db_url):
    """Issue 16, finding 8: an anonymous, empty or "unknown" caller is not one person: the screen-pop
    must not show them the city's newest calls and tickets as 'previous calls'."""
    from store.tickets import TicketStore
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    calls, tickets = CallStore(db), TicketStore(db)
    try:
        numbers = ["", "anonymous", "Anonymous", "unknown", "<unknown>", "13800003333"]
        for i, number in enumerate(numbers * 2):
            c = CallState(call_id=f"h.{i}", city="leshan", caller_number=number, agent="agent1001",
                          status="ended", outcome="answered", started_at=1000.0 + i, answered_at=1001.0 + i)
            await calls.save_call(c)
            await tickets.ensure_for_call(c, "call", 72)
        for number in numbers[:-1] + [" ", "  anonymous "]:
            assert await calls.caller_history(number, "h.0") == [], number
            assert await tickets.caller_tickets(number) == [], number
        # a real number still has its history
        assert [c["call_id"] for c in await calls.caller_history("13800003333", "h.11")] == ["h.5"]
        assert {t["call_id"] for t in await tickets.caller_tickets("13800003333")} == {"h.5", "h.11"}
    finally:
        await db.close()
