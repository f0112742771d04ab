"""Issue 16, privacy: caller numbers past the retention period become keyed hashes (PIPL), and one
person's data is exported on request, audited (store/privacy.py, core/privacy.py, hotline privacy,
POST /api/privacy/export)."""
import asyncio
import contextlib
import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from agents.callbacks import CallbackScheduler
from backoffice.followups import FollowUpDialer
from backoffice import stats
from callcenter.originate import Originator
from core import numbering
from core.calls import CallState
from core.config import load_config
from core.kpi import Policy
from core.privacy import clear_forms, is_pseudonym, pseudonym
from dashboard.common import AUTH
from dashboard.schemas import PrivacyExport
from hotline import compose
from hotline.cli import main as cli
from store.secrets import Secrets
from store.auth import AuditLog
from store.callbacks import CallbackStore
from store.calls import CallStore
from store.engine import Database, migrate
from store.followups import FollowUpStore
from store.models import (Appointment, AuditEntry, CallbackTask, CallRecord, Complaint, FollowUp, OutboxMessage,
                          Ticket)
from store.privacy import PrivacyStore
from store.reports import report_rows
from store.tickets import TicketStore
from tests.helpers import ROOT, http_app
from tests.unit.test_followups import closed_ticket

KEY = "test-privacy-key"
NUMBER = "13800001111"          # a caller with an old and a new contact
OTHER = "13900002222"           # another caller, old only
UTC = timezone.utc
CFG = load_config()


def test_the_pseudonym_is_keyed_one_per_caller_and_never_a_dialable_number():
    p = pseudonym(KEY, NUMBER)
    assert is_pseudonym(p) and len(p) == 32
    # one caller, whatever form the carrier sent; another caller, another value
    assert pseudonym(KEY, "+8613800001111") == pseudonym(KEY, "008613800001111") == p
    assert pseudonym(KEY, OTHER) != p
    # without the key it cannot be recomputed: another key gives another value, and it is not the
    # plain hash of the number (which anyone could compute for all 10^11 numbers)
    assert pseudonym("another-key", NUMBER) != p
    assert hashlib.sha256(b"+8613800001111").hexdigest()[:30] not in p
    with pytest.raises(ValueError):
        pseudonym("", NUMBER)
    # hashing twice changes nothing; a withheld number has nothing to keep
    assert pseudonym(KEY, p) == p and pseudonym(KEY, "") == "" and pseudonym(KEY, "anonymous") == ""
    # the numbering plan refuses it: no callback or survey can dial it
    assert numbering.may_dial(p, CFG)
    assert clear_forms("+8613800001111") >= {"+8613800001111", "13800001111"}


async def _seed(db: Database, number: str, tag: str, at: datetime) -> None:
    """One settled row of every kind that holds a caller number, last touched at ``at``."""
    async with db.session.begin() as s:
        call_id = f"pv.{tag}"
        s.add(CallRecord(call_id=call_id, caller_number=number, city="leshan", agent="agent1001", status="ended",
                         outcome="answered", started_at=at, answered_at=at + timedelta(seconds=5),
                         ended_at=at + timedelta(seconds=65), talk_seconds=60.0, updated_at=at))
        t = Ticket(call_id=call_id, source="call", city="leshan", caller_number=number, agent="agent1001",
                   category="traffic", outcome="answered", status="closed", due_at=at, created_at=at,
                   updated_at=at, closed_at=at)
        s.add(t)
        await s.flush()
        s.add(FollowUp(ticket_id=t.id, caller_number=number, city="leshan", status="done", next_at=at, attitude=5,
                       efficiency=4, professionalism=5, result="complete", created_at=at, updated_at=at))
        s.add(CallbackTask(call_id=f"vm:{tag}", caller_number=number, city="leshan", reason="voicemail",
                           status="done", created_at=at, updated_at=at))
        a = Appointment(code=f"A{tag}", center_id="leshan-center", city="leshan", day=at.date().isoformat(),
                        slot="09:00", seat=None, caller_number=number, status="cancelled", created_at=at)
        s.add(a)
        s.add(Complaint(ref=f"C{tag}", kind="service", source="phone", city="leshan", complainant_number=number,
                        description="waited long", status="closed", due_at=at, created_at=at, updated_at=at))
        await s.flush()
        s.add(OutboxMessage(channel="sms", kind="appointment_confirmation", to_number=number, language="zh",
                            body="see you", related=f"appointment:{a.id}", status="sent", not_before=at,
                            created_at=at))
        s.add(OutboxMessage(channel="http", kind="handoff", to_number="leshan", language="zh", body="",
                            related=f"ticket:{t.id}", status="sent", not_before=at, created_at=at, partner="12345",
                            payload=json.dumps({"ticket_id": t.id, "caller_number": number, "caller_name": "张三"}),
                            idempotency_key=f"k-{tag}"))


NUMBER_COLUMNS = ((CallRecord, "caller_number"), (Ticket, "caller_number"), (FollowUp, "caller_number"),
                  (CallbackTask, "caller_number"), (Appointment, "caller_number"), (Complaint, "complainant_number"))


async def _numbers(db: Database) -> dict[str, list[str]]:
    """Every stored number (and partner payload number), by table."""
    out = {}
    async with db.session() as s:
        for model, col in NUMBER_COLUMNS:
            out[model.__tablename__] = sorted((await s.execute(select(getattr(model, col)))).scalars())
        out["sms"] = sorted((await s.execute(select(OutboxMessage.to_number)
                                             .where(OutboxMessage.channel == "sms"))).scalars())
        out["payload"] = sorted(json.loads(p)["caller_number"] for p in (await s.execute(
            select(OutboxMessage.payload).where(OutboxMessage.channel == "http"))).scalars())
    return out


async def _counts(db: Database, privacy: PrivacyStore, number: str) -> tuple[int, int, list]:
    """What the screen-pop shows of this caller (earlier calls, tickets) and the statistics."""
    alias = privacy.pseudonym(number)
    calls = await CallStore(db).caller_history(number, alias=alias, limit=100)
    tickets = await TicketStore(db).caller_tickets(number, limit=100, alias=alias)
    now = datetime.now(UTC)
    rows = await report_rows(db, now - timedelta(days=800), now + timedelta(days=1))
    calls_r, tickets_r, appts, complaints, surveys = rows
    table = stats.aggregate(calls_r, tickets_r, appts, "year", "Asia/Shanghai", complaints=complaints,
                            surveys=surveys, policy=Policy.of(CFG))
    return len(calls), len(tickets), table


async def test_numbers_past_the_retention_period_become_pseudonyms_and_still_count(db_url):
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    privacy = PrivacyStore(db, KEY)
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=400), now - timedelta(days=10)
    try:
        await _seed(db, NUMBER, "old", old)
        await _seed(db, NUMBER, "new", recent)
        await _seed(db, OTHER, "other", old)
        # a call still in progress and an open ticket keep their numbers whatever their age
        async with db.session.begin() as s:
            s.add(CallRecord(call_id="pv.live", caller_number=OTHER, city="leshan", status="talking",
                             started_at=old, updated_at=old))
            s.add(Ticket(call_id="pv.live", source="call", city="leshan", caller_number=OTHER, status="open",
                         due_at=old, created_at=old, updated_at=old))
        before = await _counts(db, privacy, NUMBER)
        assert before[:2] == (2, 2)
        province = [r for r in before[2] if r["city"] != "leshan"]
        assert sum(r["calls"] for r in province) == 4 and sum(r["surveys"] for r in province) == 3

        counts = await privacy.purge_older_than(365, "system", "")
        assert counts == {"calls": 2, "tickets": 2, "follow_ups": 2, "callbacks": 2, "appointments": 2,
                          "complaints": 2, "messages": 2, "partner_messages": 2}
        p, q = privacy.pseudonym(NUMBER), privacy.pseudonym(OTHER)
        stored = await _numbers(db)
        for table in ("follow_ups", "callback_tasks", "appointments", "complaints", "sms", "payload"):
            assert stored[table] == sorted([NUMBER, p, q]), table      # the new row keeps it, old ones hashed
        assert stored["call_records"] == sorted([NUMBER, p, q, OTHER])   # + the live call
        assert stored["tickets"] == sorted([NUMBER, p, q, OTHER])        # + the open ticket
        async with db.session() as s:
            names = [json.loads(x).get("caller_name") for x in (await s.execute(
                select(OutboxMessage.payload).where(OutboxMessage.channel == "http"))).scalars()]
        assert sorted(names) == ["", "", "张三"]

        # the same caller's old (hashed) and new (clear) rows count together; statistics unchanged
        assert await _counts(db, privacy, NUMBER) == before
        assert len(await CallStore(db).caller_history(NUMBER, limit=100)) == 1   # the pseudonym finds the rest
        # once is enough: nothing left to replace; the purge was audited with counts, no number
        assert not any((await privacy.purge_older_than(365, "system", "")).values())
        entries = [e for e in await AuditLog(db).audit_entries() if e["action"] == "privacy_purge"]
        assert len(entries) == 1 and "calls 2" in entries[0]["detail"]
        assert NUMBER not in json.dumps(entries) and OTHER not in json.dumps(entries)
        # another key would not have found them: a pseudonym is only as linkable as its key
        assert PrivacyStore(db, "another-key").pseudonym(NUMBER) != p
    finally:
        await db.close()


async def test_a_hashed_number_is_never_dialled(db_url):
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    privacy, tasks, audit = PrivacyStore(db, KEY), CallbackStore(db), AuditLog(db)
    old = datetime.now(UTC) - timedelta(days=400)
    try:
        await tasks.add_callback(CallState(call_id="pv.cb", caller_number=NUMBER, city=CFG.province.id),
                                 "voicemail", "/vm/1")
        async with db.session.begin() as s:
            await s.execute(update(CallbackTask).values(status="failed", updated_at=old))
        assert (await privacy.purge_older_than(365, "system", ""))["callbacks"] == 1
        # someone sets the old task going again: the one originate path refuses the pseudonym
        async with db.session.begin() as s:
            await s.execute(update(CallbackTask).values(status="pending"))

        class Ami:
            actions: list = []

            async def action(self, act):
                self.actions.append(act)
                return {"Response": "Success"}
        ami = Ami()
        assert await CallbackScheduler(CFG, Originator(ami, CFG, audit), tasks).tick() == 0
        assert ami.actions == []
        (task,) = await tasks.callbacks()
        assert task["status"] == "failed" and is_pseudonym(task["caller_number"])
        assert any(e["action"] == "callback_refused" for e in await audit.audit_entries())

        # the same for a follow-up survey of a ticket closed long ago
        await closed_ticket(db, "pv.fu", NUMBER)
        async with db.session.begin() as s:
            await s.execute(update(Ticket).values(updated_at=old))
            await s.execute(update(FollowUp).values(status="done", updated_at=old))
        assert (await privacy.purge_older_than(365, "system", ""))["follow_ups"] == 1
        async with db.session.begin() as s:
            await s.execute(update(FollowUp).values(status="pending", next_at=old))
        fus = FollowUpStore(db)
        dialer = FollowUpDialer(CFG, Originator(ami, CFG, audit), fus, 1.0,
                                clock=lambda: datetime(2026, 11, 25, 3, 0, tzinfo=UTC) + timedelta(days=3650))
        assert await dialer.tick() == 0 and ami.actions == []
        (f,) = await fus.search()
        assert (f["status"], f["result"]) == ("failed", "refused") and is_pseudonym(f["caller_number"])
    finally:
        await db.close()


async def test_the_controller_replaces_old_numbers_periodically(db_url, tmp_path):
    migrate(db_url, ROOT)
    cfg = load_config(None, {"state_dir": str(tmp_path), "database": {"url": db_url},
                             "privacy": {"caller_number_retention_days": 30, "purge_interval_minutes": 0.01}})
    secrets = Secrets(ami_user="u", ami_secret="s", agent_passwords={}, service_token="t", privacy_key=KEY, bus_key="k")
    ctl = compose.controller(cfg, secrets)
    now = datetime.now(UTC)
    try:
        await _seed(ctl.db, NUMBER, "old", now - timedelta(days=40))      # past the configured 30 days
        await _seed(ctl.db, NUMBER, "new", now - timedelta(days=20))
        job = asyncio.create_task(ctl._purge_caller_numbers())

        async def purged() -> list:       # the audit row is written once a round has done every table
            return [e for e in await ctl.audit_log.audit_entries() if e["action"] == "privacy_purge"]
        try:
            for _ in range(200):                   # bounded: 20 s at most
                if await purged():
                    break
                await asyncio.sleep(0.1)
        finally:
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
        (entry,) = await purged()
        assert entry["user_id"] == "system" and "calls 1" in entry["detail"]
        assert is_pseudonym((await ctl.call_records.call("pv.old"))["caller_number"])
        assert (await ctl.call_records.call("pv.new"))["caller_number"] == NUMBER
    finally:
        await ctl.db.close()


@pytest.fixture
async def api(db_url, tmp_path):
    async with http_app(db_url, tmp_path, privacy_key=KEY) as c:
        yield c, c.ctl


async def test_export_over_http_finds_clear_and_hashed_rows_and_is_audited(api):
    client, ctl = api
    now = datetime.now(UTC)
    await _seed(ctl.db, NUMBER, "old", now - timedelta(days=400))
    await _seed(ctl.db, NUMBER, "new", now - timedelta(days=10))
    await _seed(ctl.db, OTHER, "other", now - timedelta(days=10))
    await ctl.privacy.purge_older_than(365, "system", "")
    command = {"Authorization": "Bearer t"}      # the local operator: the command role
    body = {"number": "+86 138-0000-1111", "reason": "request 2026-17 by the caller in person"}

    r = await client.post("/api/privacy/export", json=body, headers=command)
    assert r.status == 200, await r.text()
    data = await r.json()
    PrivacyExport.model_validate_json(await r.text(), strict=True)      # what the API document says
    assert data["number"] == "+8613800001111" and data["pseudonym"] == ctl.privacy.pseudonym(NUMBER)
    for section in ("calls", "tickets", "follow_ups", "callbacks", "appointments", "complaints"):
        assert len(data[section]) == 2, section       # the clear row and the hashed one
    assert {c["call_id"] for c in data["calls"]} == {"pv.old", "pv.new"}
    assert len(data["messages"]) == 4                 # an SMS and a partner message per contact
    assert OTHER not in json.dumps(data)
    # the screen-pop of the new call still shows the old one (its number now hashed)
    r = await client.get("/api/calls/pv.new/history", headers=command)
    assert [c["call_id"] for c in (await r.json())["previous_calls"]] == ["pv.old"]
    r = await client.get("/api/tickets", params={"caller": NUMBER}, headers=command)
    assert sorted(t["call_id"] for t in await r.json()) == ["pv.new", "pv.old"]

    (e,) = [e for e in await ctl.audit_log.audit_entries() if e["action"] == "privacy_export"]
    assert e["user_id"] == "hotline-service" and e["allowed"] and e["target"] == data["pseudonym"]
    assert "request 2026-17" in e["detail"] and NUMBER not in json.dumps(e)

    # refusals are 4xx and change nothing: no reason, not a number, not the command role
    for bad in ({"number": NUMBER}, {"number": NUMBER, "reason": "  "}, {"number": "h:abc", "reason": "x"},
                {"number": 13800001111, "reason": "x"}, {"number": NUMBER, "reason": "x" * 500},
                {"number": NUMBER, "reason": "x", "also": 1}, {"number": NUMBER, "reason": "a\x00b"}, {"number": NUMBER, "reason": "\udcff"}):
        r = await client.post("/api/privacy/export", json=bad, headers=command)
        assert r.status == 400, bad
    for user in ("sup_leshan", "agent1001"):
        token = await client.app[AUTH].issue_api_token(user, days=1)
        r = await client.post("/api/privacy/export", json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status == 403, user
    async with ctl.db.session() as s:
        rows = (await s.execute(select(AuditEntry).where(AuditEntry.action == "privacy_export"))).scalars().all()
    assert sorted((r.user_id, r.allowed) for r in rows) == [
        ("agent1001", False), ("hotline-service", True), ("sup_leshan", False)]


def test_the_cli_purges_and_exports_with_an_audit_row(db_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOTLINE_CONFIG_OVERRIDES", json.dumps({"state_dir": str(tmp_path),
                                                               "database": {"url": db_url}}))
    migrate(db_url, ROOT)
    now = datetime.now(UTC)

    async def seed():
        db = Database(db_url, ROOT)
        try:
            await _seed(db, NUMBER, "old", now - timedelta(days=400))
            await _seed(db, NUMBER, "new", now - timedelta(days=10))
        finally:
            await db.close()
    asyncio.run(seed())

    assert cli(["privacy", "purge", "--json"]) == 0
    purged = json.loads(capsys.readouterr().out)
    assert purged["retention_days"] == 365 and purged["replaced"]["calls"] == 1
    out = tmp_path / "export.json"
    assert cli(["privacy", "export", "013800001111", "--reason", "letter ref 42", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert out.stat().st_mode & 0o777 == 0o600
    assert {c["call_id"] for c in data["calls"]} == {"pv.old", "pv.new"}
    assert any(is_pseudonym(c["caller_number"]) for c in data["calls"])
    assert cli(["privacy", "export", "not-a-number", "--reason", "x"]) == 2
    assert cli(["privacy", "export", NUMBER, "--reason", " "]) == 2

    async def audit():
        db = Database(db_url, ROOT)
        try:
            return await AuditLog(db).audit_entries()
        finally:
            await db.close()
    entries = asyncio.run(audit())
    (e,) = [e for e in entries if e["action"] == "privacy_export"]
    assert e["user_id"].endswith("@cli") and "letter ref 42" in e["detail"] and NUMBER not in json.dumps(entries)
    assert is_pseudonym(e["target"])
