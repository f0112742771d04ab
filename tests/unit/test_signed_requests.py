"""Issue 16, finding 12, over HTTP on SQLite and PostgreSQL: a federation request cannot be replayed
after the command center restarts (its nonces are kept in the database, like partners' nonces), and
a signature binds the key id and the Idempotency-Key (a header changed after signing is refused)."""
import contextlib
import json
import time
from datetime import datetime, timezone

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.config import load_config
from hotline import compose
from interop import signing
from interop.schema import CityReport
from store.engine import migrate
from store.secrets import load_or_create, trust_node
from tests.helpers import ROOT

REPORT, TICKETS = "/api/federation/v1/report", "/api/interop/v1/tickets"
NODE_SECRET = "leshan-and-chengdu-share-this-secret"   # an operator who used one secret for two nodes


@pytest.fixture
def command_center(db_url, tmp_path):
    migrate(db_url, ROOT)
    cfg = load_config(None, {"state_dir": str(tmp_path), "database": {"url": db_url},
                             "node": {"name": "sichuan-command", "province": "四川省"},
                             "federation": {"mode": "command"}})
    for node in ("leshan-node", "chengdu-node"):
        trust_node(cfg, node, NODE_SECRET)
    return cfg


@contextlib.asynccontextmanager
async def serving(cfg):
    """One run of the command center's API: a new app, controller and database engine each time,
    as after a restart of `hotline serve`."""
    secrets = load_or_create(cfg)
    ctl = compose.controller(cfg, secrets)
    client = TestClient(TestServer(compose.api(ctl, secrets)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        await ctl.db.close()


def report(node: str) -> bytes:
    return CityReport(node=node, cities=["leshan"], sent_at=datetime.now(timezone.utc), queues={},
                      agents={"ready": 1}).model_dump_json().encode()


async def answer(r) -> tuple[int, dict]:
    return r.status, json.loads(await r.text() or "{}")


async def test_a_federation_request_replayed_after_a_restart_is_refused(command_center):
    body = report("leshan-node")
    headers = signing.sign("leshan-node", NODE_SECRET, "POST", REPORT, body, time.time())
    async with serving(command_center) as c:
        assert (await c.post(REPORT, data=body, headers=headers)).status == 200
        code, got = await answer(await c.post(REPORT, data=body, headers=headers))
        assert code == 401 and "replayed" in got["error"]
    async with serving(command_center) as c:       # the command center restarted
        code, got = await answer(await c.post(REPORT, data=body, headers=headers))
        assert code == 401 and "replayed" in got["error"], (code, got)
        fresh = signing.sign("leshan-node", NODE_SECRET, "POST", REPORT, body, time.time())
        assert (await c.post(REPORT, data=body, headers=fresh)).status == 200     # an honest one passes
        token = {"Authorization": f"Bearer {load_or_create(command_center).service_token}"}
        audit = await (await c.get("/api/audit?limit=20", headers=token)).json()
        assert any(a["action"] == "federation_refused" and "replayed" in a["detail"] for a in audit)


async def test_a_key_id_or_idempotency_key_changed_after_signing_is_refused(command_center):
    partner_secret = load_or_create(command_center).partner_secrets["12345"]
    async with serving(command_center) as c:
        # federation: a report chengdu-node signed, relabelled as leshan-node's (the two share a secret)
        body = report("leshan-node")
        h = signing.sign("chengdu-node", NODE_SECRET, "POST", REPORT, body, time.time())
        code, got = await answer(await c.post(REPORT, data=body, headers={**h, signing.KEY: "leshan-node"}))
        assert code == 401 and "signature" in got["error"], (code, got)
        h = signing.sign("leshan-node", NODE_SECRET, "POST", REPORT, body, time.time())
        code, got = await answer(await c.post(REPORT, data=body, headers={**h, signing.IDEMPOTENCY: "added-later"}))
        assert code == 401, (code, got)
        assert (await c.post(REPORT, data=body, headers=h)).status == 200

        # partner: what our outbox signs for 12345 (key id = our node name, the same shared secret),
        # reflected back to us as if 12345 had sent it
        doc = {"schema_version": 1, "partner_ticket_id": "12345-leshan-1", "city": "leshan",
               "caller_number": "13900001111", "question": "邻居占用宅基地", "consent": True}
        body = json.dumps(doc).encode()
        h = signing.sign("sichuan-command", partner_secret, "POST", TICKETS, body, time.time())
        code, got = await answer(await c.post(TICKETS, data=body, headers={**h, signing.KEY: "12345"}))
        assert code == 401 and "signature" in got["error"], (code, got)

        # partner: an honest ticket under key k1; another request's key changed to k1 would get k1's answer
        h = signing.sign("12345", partner_secret, "POST", TICKETS, body, time.time(), idempotency_key="k1")
        code, first = await answer(await c.post(TICKETS, data=body, headers=h))
        assert code == 201, first
        other = json.dumps({**doc, "partner_ticket_id": "12345-leshan-2"}).encode()
        h = signing.sign("12345", partner_secret, "POST", TICKETS, other, time.time(), idempotency_key="k2")
        code, got = await answer(await c.post(TICKETS, data=other, headers={**h, signing.IDEMPOTENCY: "k1"}))
        assert code == 401 and "signature" in got["error"], (code, got)
        code, second = await answer(await c.post(TICKETS, data=other, headers=h))
        assert code == 201 and second["ticket_id"] != first["ticket_id"]


async def test_federation_nonces_are_kept_per_node_and_only_while_a_timestamp_could_pass(db_url):
    from sqlalchemy import func, select

    from store.engine import Database
    from store.interop import FederationStore, Replay
    from store.models import FederationNonce
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    try:
        store = FederationStore(db)
        await store.use_nonce("leshan-node", "nonce0001", 600)
        with pytest.raises(Replay):
            await store.use_nonce("leshan-node", "nonce0001", 600)
        await store.use_nonce("chengdu-node", "nonce0001", 600)       # another node's nonce space
        await store.use_nonce("leshan-node", "nonce0002", 0)          # older ones can no longer pass: dropped
        async with db.session() as s:
            assert await s.scalar(select(func.count()).select_from(FederationNonce)) == 1
    finally:
        await db.close()
