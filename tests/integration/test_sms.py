"""Texts over SMPP 3.4 on real TCP: the delivery worker (interop/sms.py) against the SMSC simulator
(simulators/smsc.py), on SQLite and PostgreSQL. Concatenated UCS-2 Tibetan reassembled at the SMSC and
delivered by its receipt; a link dropped mid-batch loses and duplicates nothing; throttling pauses
without failing; opt-out and quiet hours hold; bad numbers fail with their reason; dead letters retried."""
from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from core.config import load_config
from interop.sms import SmsSender
from simulators.smsc import Smsc
from store.alerts import AlertStore
from store.engine import Database, migrate, utcnow
from store.models import OptOut
from store.sms import SmsStore
from tests.helpers import ROOT

pytestmark = pytest.mark.timeout(120)

PASSWORD = "s3cret"
# an appointment confirmation in Tibetan: 140 characters, three UCS-2 parts of 67
TIBETAN = ("ཁྱེད་ཀྱི་བསྡུར་ཚོད་ལ་རྒྱབ་སྐྱོར་ཞུ་རྒྱུའི་ཆེད་དུ། ཁྲིམས་རྩོད་རོགས་རམ་ལྟེ་གནས་སུ་ཉིན་ ༢༠༢༦-༡༢-༡༠ "
           "ཆུ་ཚོད་ ༠༩:༣༠ ལ་ཕེབས་རོགས། ཨང་རྟགས་ A1B2C3D4")
CHINESE = "【12348】您预约的法律援助申请已确认：12月10日09:30，成都市法律援助中心。预约号A1B2C3D4。"


def local(hour: int) -> datetime:
    return datetime.now(ZoneInfo("Asia/Shanghai")).replace(hour=hour, minute=0).astimezone(timezone.utc)


class Clock:
    def __init__(self, at: datetime | None = None):
        self.at = at

    def __call__(self) -> datetime:
        return self.at or datetime.now(timezone.utc)


@contextlib.asynccontextmanager
async def running(db_url, tmp_path, *, sms=None, smsc=None, clock=None, password=PASSWORD):
    await asyncio.to_thread(migrate, db_url, ROOT)
    center = await Smsc({"hotline": PASSWORD}, **(smsc or {})).start()
    cfg = load_config(None, {"state_dir": str(tmp_path), "database": {"url": db_url},
                             "sms": {"enabled": True, "host": "127.0.0.1", "port": center.port,
                                     "system_id": "hotline", "throughput_per_second": 200,
                                     "poll_seconds": 0.05, "reconnect_seconds": 0.05, "reconnect_max_seconds": 0.3,
                                     "throttle_seconds": 0.05, "enquire_link_seconds": 0.5,
                                     "response_timeout_seconds": 5, **(sms or {})}})
    db = Database(db_url, ROOT)
    sender = SmsSender(cfg, password, db=db, clock=clock or Clock(local(12)))   # within sending hours
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        yield center, SmsStore(db), sender, db
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await center.close()
        await db.close()


async def until(pred, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        got = await pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def settled(store: SmsStore, ids: list[int], states=("delivered", "failed", "dead", "cancelled")):
    async def check():
        rows = [await store.get(i) for i in ids]
        last[:] = rows
        return rows if all(r["status"] in states for r in rows) else None
    last: list = []
    try:
        return await until(check, f"texts {ids} settled")
    except AssertionError:
        raise AssertionError(f"not settled: {[(r['id'], r['status'], r['last_error'], r['parts']) for r in last]}")


async def test_a_tibetan_confirmation_in_three_parts_is_reassembled_and_delivered(db_url, tmp_path):
    async with running(db_url, tmp_path) as (center, store, sender, _):
        bo = await store.queue(to_number="+8613800138000", body=TIBETAN, kind="appointment_confirmation",
                               language="bo", related="appointment:1")
        zh = await store.queue(to_number="13900139000", body=CHINESE, kind="appointment_confirmation")
        rows = await settled(store, [bo["id"], zh["id"]])
    assert [r["status"] for r in rows] == ["delivered", "delivered"], rows
    parts = [r for r in center.received if r.destination == "8613800138000"]
    assert len(parts) == 3
    assert {p.data_coding for p in parts} == {8}                      # UCS-2
    assert {p.esm_class & 0x40 for p in parts} == {0x40}              # UDH
    assert len({p.ref for p in parts}) == 1 and sorted(p.part for p in parts) == [1, 2, 3]
    assert center.texts("8613800138000") == [TIBETAN]
    assert center.texts("13900139000") == [CHINESE]                   # 49 characters: one UCS-2 SMS
    assert [p["receipt"] for p in rows[0]["parts"]] == ["DELIVRD"] * 3
    assert {p["smsc_id"] for p in rows[0]["parts"]} == {p.message_id for p in parts}
    assert center.binds[0] == ("hotline", "ESME_ROK")


async def test_a_link_dropped_mid_batch_loses_nothing_and_sends_nothing_twice(db_url, tmp_path):
    async with running(db_url, tmp_path) as (center, store, sender, _):
        center.drop_after(4)        # the link goes right after the 4th acknowledged part ...
        bodies = [f"{i}: " + (TIBETAN if i % 3 == 0 else CHINESE) for i in range(9)]
        ids = [(await store.queue(to_number=f"1380013{i:04d}", body=b, kind="appointment_reminder"))["id"]
               for i, b in enumerate(bodies)]
        await asyncio.sleep(0.3)
        center.drop_after(7)        # ... and again, after the reconnection
        rows = await settled(store, ids)
    assert [r["status"] for r in rows] == ["delivered"] * 9, [(r["status"], r["last_error"]) for r in rows]
    assert sorted(center.texts()) == sorted(bodies)                   # each text exactly once
    total = sum(len(r["parts"]) for r in rows)
    assert len(center.received) == total                              # no part twice
    assert len({r.message_id for r in center.received}) == total
    assert [b for b in center.binds if b[1] == "ESME_ROK"].__len__() >= 2   # it reconnected


@pytest.mark.parametrize("status", ["ESME_RTHROTTLED", "ESME_RMSGQFUL"])
async def test_throttling_pauses_without_failing_and_still_delivers(db_url, tmp_path, status):
    from aiosmpplib import SmppCommandStatus
    async with running(db_url, tmp_path) as (center, store, sender, _):
        center.throttle(5, SmppCommandStatus[status])
        ids = [(await store.queue(to_number=f"1370013{i:04d}", body=f"提醒 {i}", kind="appointment_reminder"))["id"]
               for i in range(4)]
        rows = await settled(store, ids)
    assert [r["status"] for r in rows] == ["delivered"] * 4
    assert center.throttled_answers == 5
    assert [r["attempts"] for r in rows] == [1] * 4       # a throttled attempt is not counted
    assert len(center.received) == 4


async def test_opt_out_and_quiet_hours_hold(db_url, tmp_path):
    clock = Clock(local(23))
    async with running(db_url, tmp_path, clock=clock) as (center, store, sender, db):
        async with db.session.begin() as s:
            s.add(OptOut(number="+8613600136000", source="follow_up:1", created_at=utcnow()))
        opted = await store.queue(to_number="13600136000", body="提醒", kind="appointment_reminder")
        night = await store.queue(to_number="13500135000", body="明天上午的预约提醒", kind="appointment_reminder")
        confirm = await store.queue(to_number="13400134000", body="预约已确认", kind="appointment_confirmation")
        [row] = await settled(store, [confirm["id"]])
        assert row["status"] == "delivered"                 # a confirmation goes at any hour
        await asyncio.sleep(0.5)
        assert (await store.get(night["id"]))["status"] == "pending"     # no reminder at 23:00
        assert center.texts("13500135000") == []
        clock.at = local(10)
        rows = await settled(store, [opted["id"], night["id"]])
    assert rows[0]["status"] == "cancelled" and "opted out" in rows[0]["last_error"]
    assert rows[1]["status"] == "delivered"
    assert center.texts("13600136000") == []              # never sent to the opted-out number


async def test_bad_and_unknown_numbers_fail_with_their_reason(db_url, tmp_path):
    smsc = {"unknown": {"13300133000"}, "undeliverable": {"13200132000"}}
    async with running(db_url, tmp_path, smsc=smsc) as (center, store, sender, _):
        fixed = await store.queue(to_number="02887654321", body="x", kind="complaint_reply")
        premium = await store.queue(to_number="106575000", body="x", kind="complaint_reply")
        unknown = await store.queue(to_number="13300133000", body="答复", kind="complaint_reply")
        gone = await store.queue(to_number="13200132000", body="答复", kind="complaint_reply")
        rows = await settled(store, [fixed["id"], premium["id"], unknown["id"], gone["id"]])
    assert [r["status"] for r in rows] == ["failed"] * 4
    assert rows[0]["last_error"] == "not sent: an SMS reaches only a mobile number"
    assert rows[1]["last_error"].startswith("not sent: ")
    assert "ESME_RINVDSTADR" in rows[2]["last_error"]
    assert "UNDELIV" in rows[3]["last_error"]
    assert [r.destination for r in center.received] == ["13200132000"]


async def test_a_dead_letter_is_kept_and_can_be_sent_again(db_url, tmp_path):
    async with running(db_url, tmp_path, sms={"max_attempts": 2}) as (center, store, sender, db):
        center.fail(2)          # two transient refusals (ESME_RSYSERR): max_attempts reached
        m = await store.queue(to_number="13100131000", body="回访提醒", kind="follow_up")
        [row] = await settled(store, [m["id"]])
        assert row["status"] == "dead" and "ESME_RSYSERR" in row["last_error"], row
        assert (await store.counts())["dead"] == 1
        [alert] = await until(lambda: AlertStore(db).alerts(kind="dead_letter"), "the dead-letter alert")
        assert (alert["call_id"], alert["topic"], alert["term"]) == (f"sms:{m['id']}", "sms", "follow_up")
        assert await store.requeue(m["id"]) is not None
        [row] = await settled(store, [m["id"]])
    assert row["status"] == "delivered"
    assert center.texts("13100131000") == ["回访提醒"]


async def test_a_wrong_password_is_refused_and_retried_without_losing_the_text(db_url, tmp_path):
    async with running(db_url, tmp_path, password="wrong") as (center, store, sender, _):
        m = await store.queue(to_number="13000130000", body="x", kind="follow_up")
        await until(lambda: asyncio.sleep(0, len(center.binds) >= 2), "two bind attempts")
        assert {b[1] for b in center.binds} == {"ESME_RINVPASWD"}
        assert (await store.get(m["id"]))["status"] == "pending"


async def test_the_ticket_shows_its_texts_and_a_dead_letter_is_retried_over_the_api(db_url, tmp_path):
    from core.calls import CallState
    from tests.helpers import http_app
    async with http_app(db_url, tmp_path) as client:
        ctl, auth = client.ctl, {"Authorization": "Bearer t"}
        call = CallState(call_id="sms.1", city="leshan", caller_number="13800138000", agent="agent1001",
                         status="ended", outcome="answered", started_at=1000.0, answered_at=1001.0, ended_at=1060.0)
        await ctl.call_records.save_call(call)
        await ctl.tickets.ensure_for_call(call, "call", 72)
        ticket = await ctl.tickets.for_call("sms.1")
        async with running(db_url, tmp_path, sms={"max_attempts": 1}) as (center, store, sender, _):
            center.fail(1)
            m = await store.queue(to_number=call.caller_number, body=TIBETAN, kind="kb_summary", language="bo",
                                  related=f"ticket:{ticket['id']}")
            [row] = await settled(store, [m["id"]])
            assert row["status"] == "dead"
            # the alert follows the dead letter's own write
            [alert] = await until(lambda: AlertStore(ctl.db).alerts(kind="dead_letter"), "the dead-letter alert")
            assert alert["city"] == "leshan"                 # the ticket's city: its supervisors see it
            r = await client.get(f"/api/tickets/{ticket['id']}/messages", headers=auth)
            assert r.status == 200
            [shown] = await r.json()
            assert (shown["id"], shown["status"], shown["body"]) == (m["id"], "dead", TIBETAN)
            assert "ESME_RSYSERR" in shown["last_error"]
            r = await client.post(f"/api/messages/{m['id']}/retry", headers=auth)
            assert r.status == 200 and (await r.json())["status"] == "pending"
            [row] = await settled(store, [m["id"]])
            assert row["status"] == "delivered"
            r = await client.post(f"/api/messages/{m['id']}/retry", headers=auth)
            assert r.status == 409                      # delivered: nothing to retry
        r = await client.get(f"/api/tickets/{ticket['id']}/messages", headers=auth)
        assert [x["status"] for x in await r.json()] == ["delivered"]
        r = await client.get("/api/messages/stats?days=1", headers=auth)
        figures = await r.json()
        assert figures["by_status"] == {"delivered": 1} and figures["by_kind"] == {"kb_summary": {"delivered": 1}}
        assert figures["delivered_share"] == 1.0
        for path, status in (("/api/tickets/999999/messages", 404), ("/api/messages/x/retry", 400),
                             ("/api/messages/0/retry", 404), ("/api/messages?status=lost", 400),
                             ("/api/messages/stats?days=0", 400)):
            r = await (client.post if path.endswith("retry") else client.get)(path, headers=auth)
            assert r.status == status, (path, r.status, await r.text())
    assert center.texts("13800138000") == [TIBETAN]


async def test_hotline_interop_sends_texts_and_hotline_sms_retries_dead_letters(tmp_path):
    """Where it runs: `hotline interop` (its own process, sms.enabled) binds with the password from
    secrets.json; `hotline sms list/retry` operate the texts."""
    import json
    import os
    import subprocess
    import sys
    from tests.helpers import free_port, terminate
    db_url = f"sqlite:///{tmp_path}/hotline.db"
    await asyncio.to_thread(migrate, db_url, ROOT)
    center = await Smsc({"hotline": PASSWORD}).start()
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "secrets.json").write_text(json.dumps({"smpp_password": PASSWORD}))
    overrides = {"state_dir": str(tmp_path / "state"), "database": {"url": db_url},
                 "interop": {"enabled": False, "metrics": {"port": free_port()}},
                 "sms": {"enabled": True, "host": "127.0.0.1", "port": center.port, "system_id": "hotline",
                         "poll_seconds": 0.1, "reconnect_seconds": 0.1, "reconnect_max_seconds": 0.5,
                         "sending_hours": "00:00-24:00", "max_attempts": 1}}
    env = {**os.environ, "HOTLINE_CONFIG_OVERRIDES": json.dumps(overrides), "PYTHONUNBUFFERED": "1"}

    def hotline(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hotline.cli", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)

    db = Database(db_url, ROOT)
    store = SmsStore(db)
    log = open(tmp_path / "interop.log", "wb")
    daemon = subprocess.Popen([sys.executable, "-m", "hotline.cli", "interop"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        center.fail(1)
        dead = await store.queue(to_number="13800138001", body=CHINESE, kind="complaint_reply")
        [row] = await settled(store, [dead["id"]])
        assert row["status"] == "dead"
        ok = await store.queue(to_number="13800138002", body=TIBETAN, kind="appointment_reminder")
        await settled(store, [ok["id"]])
        listed = await asyncio.to_thread(hotline, "sms", "list", "--json")
        assert {m["id"]: m["status"] for m in json.loads(listed.stdout)} == {dead["id"]: "dead", ok["id"]: "delivered"}
        retried = await asyncio.to_thread(hotline, "sms", "retry", "--dead")
        assert retried.returncode == 0, retried.stderr + retried.stdout
        [row] = await settled(store, [dead["id"]])
        assert row["status"] == "delivered"
        assert sorted(center.texts()) == sorted([CHINESE, TIBETAN])
        assert center.binds[0] == ("hotline", "ESME_ROK")
    finally:
        await asyncio.to_thread(terminate, daemon)
        log.close()
        await db.close()
        await center.close()
    again = await asyncio.to_thread(hotline, "sms", "retry", "999")
    assert again.returncode == 1


async def test_enquire_link_keeps_the_link_and_a_hung_smsc_is_left_for_a_new_bind(db_url, tmp_path):
    sms = {"enquire_link_seconds": 0.2, "response_timeout_seconds": 0.5}
    async with running(db_url, tmp_path, sms=sms) as (center, store, sender, _):
        await until(lambda: asyncio.sleep(0, center.enquire_links >= 3), "three enquire_links")
        assert [b[1] for b in center.binds] == ["ESME_ROK"]          # answered: the same link all along
        center.mute = True
        await until(lambda: asyncio.sleep(0, len(center.binds) >= 2), "a new bind after the silence")
        center.mute = False
        m = await store.queue(to_number="13800138000", body="链路恢复后的短信", kind="follow_up")
        [row] = await settled(store, [m["id"]])
    assert row["status"] == "delivered"


async def test_the_simulator_as_a_process_for_other_tests_and_the_demo(tmp_path):
    """`hotline simulate-smsc --test-only` with the install's account; `hotline interop` sends to it and
    the record file holds what arrived (how a test of another process checks a text reached the SMSC)."""
    import json
    import os
    import subprocess
    import sys
    from simulators.smsc import texts_of
    from tests.helpers import free_port, terminate
    db_url = f"sqlite:///{tmp_path}/hotline.db"
    await asyncio.to_thread(migrate, db_url, ROOT)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "secrets.json").write_text(json.dumps({"smpp_password": PASSWORD}))
    port, record = free_port(), tmp_path / "smsc.jsonl"
    overrides = {"state_dir": str(tmp_path / "state"), "database": {"url": db_url},
                 "interop": {"enabled": False, "metrics": {"port": free_port()}},
                 "sms": {"enabled": True, "host": "127.0.0.1", "port": port, "system_id": "hotline",
                         "poll_seconds": 0.1, "reconnect_seconds": 0.1, "reconnect_max_seconds": 0.5,
                         "sending_hours": "00:00-24:00"}}
    env = {**os.environ, "HOTLINE_CONFIG_OVERRIDES": json.dumps(overrides), "PYTHONUNBUFFERED": "1"}
    refused = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "hotline.cli", "simulate-smsc"],
                                      cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--test-only" in refused.stdout + refused.stderr
    procs = [subprocess.Popen([sys.executable, "-m", "hotline.cli", *args], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for args in (["simulate-smsc", "--test-only", "--port", str(port), "--record", str(record)],
                          ["interop"])]
    db = Database(db_url, ROOT)
    try:
        store = SmsStore(db)
        m = await store.queue(to_number="+8613800138000", body=TIBETAN, kind="kb_summary", language="bo")
        [row] = await settled(store, [m["id"]])
        assert row["status"] == "delivered"
        assert texts_of(record) == [TIBETAN]
    finally:
        for p in procs:
            await asyncio.to_thread(terminate, p)
        await db.close()


async def test_appointment_and_complaint_texts_reach_the_smsc_and_a_cancelled_reminder_never_does(db_url, tmp_path):
    """The texts the back office already queues (booking, cancelling, replying to a complaint) go out."""
    from datetime import timedelta
    from store.appointments import AppointmentStore
    from store.complaints import ComplaintStore
    async with running(db_url, tmp_path) as (center, store, sender, db):
        appointments, complaints = AppointmentStore(db), ComplaintStore(db)
        later = utcnow() + timedelta(seconds=2)
        a = await appointments.book(center_id="leshan-center", city="leshan", day="2026-12-10", slot="09:30",
                                    capacity=2, caller_number="13800138005", language="zh", ticket_id=None,
                                    booked_by="agent1001", messages=lambda code: [
                                        ("appointment_confirmation", f"预约已确认 {code}", None),
                                        ("appointment_reminder", f"明天的预约 {code}", later)])
        await appointments.cancel(a["id"], lambda row: f"预约已取消 {row.code}")
        c = await complaints.add({"kind": "service", "source": "phone", "city": "leshan",
                                  "complainant_number": "13800138006", "description": "等待太久"}, "sup", 15)
        await complaints.move(c["id"], "received", {"status": "replied", "reply": "已核实并改进"},
                              lambda row: "您的投诉已答复：已核实并改进")
        texts = await store.messages()
        ids = [m["id"] for m in texts if m["kind"] != "appointment_reminder"]
        await settled(store, ids)
        await asyncio.sleep(2.5)        # the reminder's time has come: cancelled, so never sent
        by_kind = {m["kind"]: m for m in await store.messages()}
    assert {k: m["status"] for k, m in by_kind.items()} == {
        "appointment_confirmation": "delivered", "appointment_reminder": "cancelled",
        "appointment_cancelled": "delivered", "complaint_reply": "delivered"}
    assert center.texts("13800138005") == [f"预约已确认 {a['code']}", f"预约已取消 {a['code']}"]
    assert center.texts("13800138006") == ["您的投诉已答复：已核实并改进"]


async def test_the_smsc_checks_the_link_and_unbinds_and_the_sender_binds_again(db_url, tmp_path):
    async with running(db_url, tmp_path) as (center, store, sender, _):
        await until(lambda: asyncio.sleep(0, center.bound_sessions() == 1), "bound")
        center.enquire()
        await until(lambda: asyncio.sleep(0, center.enquire_answers == 1), "enquire_link answered")
        center.unbind()
        await until(lambda: asyncio.sleep(0, len(center.binds) == 2 and center.bound_sessions() == 1), "bound again")
        m = await store.queue(to_number="13800138000", body="维护后的短信", kind="follow_up")
        [row] = await settled(store, [m["id"]])
    assert row["status"] == "delivered"


async def test_a_password_smpp_cannot_carry_stops_the_sender_with_a_clear_error(db_url, tmp_path, caplog):
    await asyncio.to_thread(migrate, db_url, ROOT)
    center = await Smsc({"hotline": PASSWORD}).start()
    cfg = load_config(None, {"state_dir": str(tmp_path), "database": {"url": db_url},
                             "sms": {"enabled": True, "host": "127.0.0.1", "port": center.port, "system_id": "hotline"}})
    db = Database(db_url, ROOT)
    try:
        await asyncio.wait_for(SmsSender(cfg, "nine-char", db=db).run(asyncio.Event()), 10)
    finally:
        await db.close()
        await center.close()
    assert center.binds == []
    assert "at most 8 ASCII characters" in caplog.text


async def test_two_senders_on_one_outbox_send_each_text_once(db_url, tmp_path):
    async with running(db_url, tmp_path) as (center, store, sender, db):
        second = SmsSender(sender.cfg, PASSWORD, db=db, clock=sender.clock)
        stop = asyncio.Event()
        task = asyncio.create_task(second.run(stop))
        try:
            bodies = [f"第{i}条 " + (TIBETAN if i % 4 == 0 else CHINESE) for i in range(16)]
            ids = [(await store.queue(to_number=f"1390013{i:04d}", body=b, kind="follow_up"))["id"]
                   for i, b in enumerate(bodies)]
            rows = await settled(store, ids)
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
    assert [r["status"] for r in rows] == ["delivered"] * 16
    assert sorted(center.texts()) == sorted(bodies)
    assert len(center.received) == sum(len(r["parts"]) for r in rows)
    assert center.bound_sessions() == 0 and len(center.binds) == 2
