"""Interop rules without the network: signatures, partner field mapping and minimisation, retry
policy, the simulator's schema, the API's documents; and the handoff store on SQLite and PostgreSQL."""
import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.calls import CallState
from core.config import ConfigError, load_config
from store.engine import Database, migrate
from store.tickets import TicketStore
from store.interop import InteropStore, Replay
from interop import signing
from interop.delivery import backoff, outcome
from interop.partners import handoff_payload
from tests.config_tree import copy_tree
from interop.schema import InboundTicket, StatusUpdate, openapi
from simulators.partner_hotline import check_ticket

ROOT = Path(__file__).resolve().parents[2]
PARTNERS = load_config(ROOT).partners
NOW = 1_800_000_000.0


def test_signature_round_trip_and_every_refusal():
    body = b'{"a": 1}'
    h = signing.sign("12345", "s3cret", "POST", "/api/interop/v1/status", body, NOW, idempotency_key="k1")
    assert signing.verify(h, "POST", "/api/interop/v1/status", body, {"12345": "s3cret"}, NOW + 10)[0] == "12345"
    cases = [
        (dict(h), b'{"a": 2}', {"12345": "s3cret"}, NOW, "does not match"),            # tampered body
        (dict(h), body, {"12345": "other"}, NOW, "does not match"),                     # wrong secret
        (dict(h), body, {"12333": "s3cret"}, NOW, "unknown key"),
        (dict(h), body, {"12345": "s3cret"}, NOW + 301, "more than 300 s"),              # stale
        ({k: v for k, v in h.items() if k != signing.NONCE}, body, {"12345": "s3cret"}, NOW, "unsigned"),
        ({**h, signing.NONCE: "a/b"}, body, {"12345": "s3cret"}, NOW, "nonce must be"),
        ({**h, signing.TIMESTAMP: "yesterday"}, body, {"12345": "s3cret"}, NOW, "whole seconds"),
    ]
    for headers, b, keys, now, why in cases:
        with pytest.raises(signing.SignatureError, match=why):
            signing.verify(headers, "POST", "/api/interop/v1/status", b, keys, now)
    with pytest.raises(signing.SignatureError):   # the path is signed too
        signing.verify(h, "POST", "/api/interop/v1/tickets", body, {"12345": "s3cret"}, NOW)


def test_non_ascii_signature_headers_are_refused_not_a_crash():
    """Issue 16, finding 5: hmac.compare_digest raises TypeError on non-ASCII str (a 500)."""
    body = b'{"a": 1}'
    h = signing.sign("12345", "s3cret", "POST", "/api/interop/v1/status", body, NOW)
    for name, value in [(signing.SIGNATURE, "签名" * 32), (signing.SIGNATURE, h[signing.SIGNATURE][:-1] + "é"),
                        (signing.SIGNATURE, "\udcff" * 64), (signing.NONCE, "随机数随机数随机数"),
                        (signing.NONCE, "\udcff" * 16), (signing.KEY, "密钥"), (signing.TIMESTAMP, "١٨٠٠٠٠٠٠٠٠")]:
        with pytest.raises(signing.SignatureError):
            signing.verify({**h, name: value}, "POST", "/api/interop/v1/status", body, {"12345": "s3cret"}, NOW)


def test_the_signature_binds_the_key_id_and_idempotency_key_and_names_its_version():
    """Issue 16, finding 12: neither header can be changed after signing; a version 1 signature is
    refused by name; a non-UTF-8 Idempotency-Key is a refusal, not a crash."""
    import hashlib
    import hmac
    keys, path, body = {"leshan-node": "shared", "chengdu-node": "shared"}, "/api/federation/v1/report", b"{}"
    h = signing.sign("leshan-node", "shared", "POST", path, body, NOW, idempotency_key="k1")
    assert h[signing.SIGNATURE].startswith("v2=")
    assert signing.verify(h, "POST", path, body, keys, NOW) == ("leshan-node", h[signing.NONCE])
    for changed in ({**h, signing.KEY: "chengdu-node"}, {**h, signing.IDEMPOTENCY: "k2"},
                    {k: v for k, v in h.items() if k != signing.IDEMPOTENCY}, {**h, signing.IDEMPOTENCY: "\udcff"}):
        with pytest.raises(signing.SignatureError, match="does not match"):
            signing.verify(changed, "POST", path, body, keys, NOW)
    bare = signing.sign("leshan-node", "shared", "POST", path, body, NOW)
    with pytest.raises(signing.SignatureError, match="does not match"):
        signing.verify({**bare, signing.IDEMPOTENCY: "added"}, "POST", path, body, keys, NOW)
    v1 = "\n".join(("POST", path, bare[signing.TIMESTAMP], bare[signing.NONCE], hashlib.sha256(body).hexdigest()))
    old = hmac.new(b"shared", v1.encode(), hashlib.sha256).hexdigest()
    with pytest.raises(signing.SignatureError, match="version v2 is required"):
        signing.verify({**bare, signing.SIGNATURE: old}, "POST", path, body, keys, NOW)


def test_partner_gets_only_its_fields_and_personal_data_only_with_consent():
    p = PARTNERS["12345"]
    facts = {"handoff_id": "n-h1", "ticket_id": 7, "city": "leshan", "category": "land_housing", "summary": "噪音",
             "language": "zh", "caller_number": "13900000000", "caller_name": "张三", "created_at": "2026-11-25"}
    without = handoff_payload(p, facts, consent=False)
    assert "citizen_phone" not in without and "citizen_name" not in without
    assert without["source_ref"] == "n-h1" and without["region"] == "leshan" and without["content"] == "噪音"
    assert handoff_payload(p, facts, consent=True)["citizen_phone"] == "13900000000"
    other = PARTNERS["12333"]
    assert set(handoff_payload(other, facts, True)) == {"ref", "ticket", "area", "description", "phone", "time"}


def test_partner_config_errors_are_precise(tmp_path):
    tree = copy_tree(tmp_path)
    bad = {"version": 1, "partners": {"x": {"name": {"zh": "x"}, "endpoints": {"default": "ftp://x"},
                                            "fields": {"handoff_id": "ref"}}}}
    (tree / "config" / "partners.yaml").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="expected an http"):
        load_config(tree)
    bad["partners"]["x"]["endpoints"] = {"default": "http://x", "atlantis": "http://y"}
    (tree / "config" / "partners.yaml").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="unknown city 'atlantis'"):
        load_config(tree)
    bad["partners"]["x"]["endpoints"] = {"default": "http://x"}
    bad["partners"]["x"]["fields"] = {"ticket_id": "t"}
    (tree / "config" / "partners.yaml").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="handoff_id must be mapped"):
        load_config(tree)
    with pytest.raises(ConfigError, match="interop.endpoints.nope"):
        load_config(ROOT, {"interop": {"endpoints": {"nope": {"default": "http://x"}}}})
    cfg = load_config(ROOT, {"interop": {"endpoints": {"12345": {"chengdu": "http://cd"}}}})
    assert cfg.partners["12345"].endpoint("chengdu") == "http://cd"


def test_retry_policy():
    assert [outcome(c) for c in (200, 201, 409, 500, 503, 429, 408, 400, 401, 404, 422)] == \
        ["sent", "sent", "sent", "retry", "retry", "retry", "retry", "dead", "dead", "dead", "dead"]
    assert backoff(1, 1, 300, rnd=lambda: 0.5) == 1
    assert backoff(4, 1, 300, rnd=lambda: 0.5) == 8
    assert backoff(30, 1, 300, rnd=lambda: 0.5) == 300
    assert 0.75 <= backoff(1, 1, 300) <= 1.25


def test_documents_refuse_unknown_and_malformed_fields():
    ok = {"partner_ticket_id": "A-1", "city": "leshan", "caller_number": "13900000000", "question": "q", "consent": True}
    assert InboundTicket.model_validate(ok).language == "zh"
    for bad in ({**ok, "extra": 1}, {**ok, "caller_number": "call me"}, {**ok, "question": ""},
                {k: v for k, v in ok.items() if k != "consent"}, {**ok, "schema_version": 2}):
        with pytest.raises(ValidationError):
            InboundTicket.model_validate(bad)
    with pytest.raises(ValidationError):
        StatusUpdate.model_validate({"handoff_ref": "x", "status": "lost", "seq": 1, "at": "2026-11-25T00:00:00Z"})
    spec = openapi()
    assert set(spec["paths"]) >= {"/api/interop/v1/tickets", "/api/interop/v1/status"}
    assert "InboundTicket" in spec["components"]["schemas"]


def test_simulator_schema_is_strict():
    good = {"source_ref": "n-h1", "source_ticket_id": 1, "region": "leshan", "content": "x", "created_at": "t"}
    assert check_ticket(good) == ""
    assert "unknown fields" in check_ticket({**good, "ssn": "1"})
    assert "region is required" in check_ticket({k: v for k, v in good.items() if k != "region"})
    assert "must be str" in check_ticket({**good, "citizen_phone": 139})


@pytest.fixture
async def istore(db_url, tmp_path):
    await asyncio.to_thread(migrate, db_url, tmp_path)
    db = Database(db_url, tmp_path)
    yield InteropStore(db, "node1"), TicketStore(db)
    await db.close()


async def _referred(box, tickets, n=1):
    ids = []
    for i in range(n):
        await tickets.ensure_for_call(CallState(call_id=f"c{i}", city="leshan", agent="a"), "call", 72)
        t = await tickets.for_call(f"c{i}")
        await tickets.update(t["id"], {"category": "land_housing"})
        h = await box.hand_off(t["id"], "12345", False, "a", lambda facts: facts, "referred_12345", "open")
        ids.append(h)
    return ids


async def test_handoff_writes_message_and_moves_ticket_in_one_go(istore):
    box, tickets = istore
    [h] = await _referred(box, tickets)
    t = await tickets.get(h["ticket_id"])
    assert t["status"] == "referred" and t["outcome"] == "referred_12345"
    [m] = await box.outbox(partner="12345")
    assert m["idempotency_key"] == f"node1-h{h['id']}" and json.loads(m["payload"])["handoff_id"] == f"node1-h{h['id']}"
    # a second handoff of the same (now referred) ticket from a stale page: refused
    assert await box.hand_off(h["ticket_id"], "12345", False, "a", lambda f: f, "referred_12345", "open") is None


async def test_outbox_claims_are_exclusive_and_settled_once(istore):
    box, tickets = istore
    await _referred(box, tickets, 3)
    a, b = await asyncio.gather(box.claim("w1", 30), box.claim("w2", 30))
    assert len(a) + len(b) == 3 and not ({m["id"] for m in a} & {m["id"] for m in b})
    m = (a or b)[0]
    other = "w2" if a and m in a else "w1"
    assert not await box.settle(m["id"], other, status="sent")
    owner = "w1" if other == "w2" else "w2"
    assert await box.settle(m["id"], owner, status="dead", error="HTTP 404")
    assert (await box.requeue(m["id"]))["status"] == "pending"
    assert await box.requeue(m["id"], replay=True) is None                # only sent messages are replayed


async def test_status_updates_apply_in_order_only(istore):
    box, tickets = istore
    [h] = await _referred(box, tickets)
    at = datetime.now(timezone.utc)
    ref = f"node1-h{h['id']}"
    upd = lambda seq, st: StatusUpdate(handoff_ref=ref, partner_ticket_id="P1", status=st, seq=seq, at=at)  # noqa: E731
    r2 = await box.receive_status("12345", "nonce0002", "k2", "/s", upd(2, "resolved"))
    r1 = await box.receive_status("12345", "nonce0001", "k1", "/s", upd(1, "accepted"))   # late
    assert r2["body"]["applied"] and not r1["body"]["applied"] and r1["body"]["status"] == "resolved"
    with pytest.raises(Replay):
        await box.receive_status("12345", "nonce0002", "k3", "/s", upd(3, "closed"))
    assert (await box.seen_request("12345", "nonce9999", "k2"))["body"]["applied"] is True   # same key, same answer
    wrong = await box.receive_status("12333", "nonce0004", None, "/s", upd(3, "closed"))     # not theirs
    assert wrong["status"] == 404
    [hh] = await box.handoffs(ticket_id=h["ticket_id"])
    assert hh["status"] == "resolved" and hh["status_seq"] == 2 and hh["partner_ticket_id"] == "P1"
