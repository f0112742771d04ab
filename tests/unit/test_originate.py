"""The one originate path refuses numbers outside the numbering plan (security review 16 §4a, toll
fraud): a voicemail callback or a follow-up to +882…, 00…, a premium or a short number is never
dialled, its task is marked failed, and the audit log says which task and why."""
from datetime import datetime, timedelta, timezone
from pathlib import Path

from agents.callbacks import CallbackScheduler
from backoffice.followups import FollowUpDialer
from callcenter.originate import Originator
from core.calls import CallState
from core.config import load_config
from store.auth import AuditLog
from store.callbacks import CallbackStore
from store.engine import Database, migrate
from store.followups import FollowUpStore
from tests.unit.test_followups import closed_ticket

ROOT = Path(__file__).resolve().parents[2]
CFG = load_config()


class FakeAmi:
    def __init__(self):
        self.actions = []

    async def action(self, act):
        self.actions.append(act)
        return {"Response": "Success"}


async def test_refused_numbers_are_never_dialled_and_are_audited(db_url):
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    ami, audit, tasks, fus = FakeAmi(), AuditLog(db), CallbackStore(db), FollowUpStore(db)
    originate = Originator(ami, CFG, audit)
    try:
        # voicemail left for the province's mailbox (its queue is always open): one good, two bad numbers
        for cid, number in (("9.1", "+88212345678"), ("9.2", "13800000000"), ("9.3", "95555")):
            await tasks.add_callback(CallState(call_id=cid, caller_number=number, city=CFG.province.id),
                                     "voicemail", f"/vm/{cid}")
        sched = CallbackScheduler(CFG, originate, tasks)
        assert await sched.tick() == 1
        assert [a["Variable"] for a in ami.actions if "__HLCB_NUMBER=13800000000" in a["Variable"]]
        assert not any("88212345678" in str(a) or "95555" in str(a) for a in ami.actions)
        status = {t["caller_number"]: t["status"] for t in await tasks.callbacks()}
        assert status == {"+88212345678": "failed", "13800000000": "dialing", "95555": "failed"}
        ids = {t["caller_number"]: t["id"] for t in await tasks.callbacks()}
        entries = [e for e in await audit.audit_entries() if e["action"] == "callback_refused"]
        assert {e["target"] for e in entries} == {f"t{ids['+88212345678']}", f"t{ids['95555']}"}
        assert all(not e["allowed"] and e["user_id"] == "system" for e in entries)
        intl = next(e for e in entries if e["target"] == f"t{ids['+88212345678']}")
        assert "+88212345678" in intl["detail"] and "international" in intl["detail"]
        assert await sched.tick() == 0          # refused once, for good

        # a follow-up survey to an international number: refused, failed, audited
        ami.actions.clear()
        await closed_ticket(db, "9.4", "0088212345678")
        dialer = FollowUpDialer(CFG, originate, fus, 1.0,
                                clock=lambda: datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc) + timedelta(days=3650))
        assert await dialer.tick() == 0
        assert ami.actions == []
        (f,) = await fus.search()
        assert (f["status"], f["result"]) == ("failed", "refused")
        (e,) = [e for e in await audit.audit_entries() if e["action"] == "follow_up_refused"]
        assert e["target"].startswith(f"{f['id']} ") and "0088212345678" in e["detail"] and not e["allowed"]
    finally:
        await db.close()
