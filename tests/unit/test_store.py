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
