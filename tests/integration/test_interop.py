"""Interop over real HTTP on loopback: the controller, the outbox daemon (`hotline interop`) and
the 12345 simulator as separate processes. Nothing is lost while the partner is down; signed
requests only; status updates both ways; dead letters alert."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from core.calls import CallState
from store.engine import Database
from store.tickets import TicketStore
from interop import signing
from simulators.partner_hotline import token_path
from tests.helpers import ROOT, Stack, free_port, fresh, refusals, wait_for


@pytest.fixture(scope="module")
def ix(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("interop"))
    s.sim_port = free_port()
    s.overrides["interop"] |= {"poll_seconds": 0.2, "backoff_seconds": 0.2, "backoff_max_seconds": 1.0,
                              "max_attempts": 1000,
                              "endpoints": {"12345": {"default": f"http://127.0.0.1:{s.sim_port}/api/v1"},
                                            # a partner that refuses everything: dead letters
                                            "12333": {"default": f"http://127.0.0.1:{s.sim_port}/nowhere"}}}
    s.reconfigure()
    s.start()
    yield s
    s.close()


@pytest.fixture
def x(ix):
    with fresh(ix):
        ix.parties.append(ix._spawn(["interop"], "interop"))
        yield ix


def start_sim(s: Stack):
    sim = s._spawn(["simulate-12345", "--test-only", "--port", str(s.sim_port)], "sim12345")
    wait_for(lambda: _sim_up(s), 20, "simulator up", sim.log)
    return sim


def _agent_channel(s: Stack, call_id: str) -> str:
    return next(c for c in s.api("/api/status")["calls_in_progress"] if c["call_id"] == call_id)["agent_channel"]


def _sim_up(s) -> bool:
    try:
        sim(s, "/_sim/state")
        return True
    except OSError:
        return False


def sim(s: Stack, path: str, body: dict | None = None) -> dict:
    """The simulator's control endpoints, with its run's token (read each time: a new run has a new one)."""
    token = token_path(s.cfg.state_dir, s.sim_port).read_text().strip()
    req = urllib.request.Request(f"http://127.0.0.1:{s.sim_port}{path}", method="POST" if body is not None else "GET",
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def classified_tickets(s: Stack, n: int, tag: str) -> list[int]:
    """n tickets as answered calls leave them (the store's own path), classified on the API."""
    async def make():
        db = Database(s.cfg.system.database.url, s.cfg.root)
        tickets = TicketStore(db)
        ids = []
        for i in range(n):
            call = CallState(call_id=f"{tag}-{i}", city="leshan", agent="agent1001", caller_number=f"1390000{i:04d}",
                             language="zh")
            await tickets.ensure_for_call(call, "call", 72)
            ids.append((await tickets.for_call(call.call_id))["id"])
        await db.close()
        return ids
    ids = asyncio.run(make())
    for tid in ids:
        s.api(f"/api/tickets/{tid}", "PATCH", {"category": "land_housing", "summary": f"噪音扰民 {tag}"})
    return ids


def outbox(s: Stack, *args: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "hotline.cli", "outbox", *args, "--json"], cwd=ROOT, env=s.env,
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def test_partner_down_then_back_every_ticket_arrives_once_and_statuses_return(x):
    s = x
    ids = classified_tickets(s, 100, "down")
    t0 = time.monotonic()
    for tid in ids:   # referred while 12345 is down
        h = s.api(f"/api/tickets/{tid}/handoff", "POST", {"partner": "12345", "consent": tid % 2 == 0})
        assert h["status"] == "pending" and h["direction"] == "out"
    referred = time.monotonic() - t0
    time.sleep(3)     # several failed attempts each
    pending = [m for m in outbox(s, "list", "--partner", "12345", "--limit", "500") if m["related"] in
               {f"ticket:{t}" for t in ids}]
    assert len(pending) == 100 and all(m["status"] in ("pending", "sending") for m in pending)
    assert any(m["attempts"] > 1 and "Connect" in m["last_error"] for m in pending)

    start_sim(s)
    back = time.monotonic()
    state = wait_for(lambda: (st := sim(s, "/_sim/state")) and len(st["tickets"]) >= 100 and st, 60,
                     "all 100 tickets at 12345")
    arrived = time.monotonic() - back
    assert len(state["tickets"]) == 100 and state["rejected"] == []
    # every handoff got its 12345 ticket id and both status updates, applied once each
    def resolved():
        hs = [s.api(f"/api/tickets/{tid}/handoffs")[0] for tid in ids]
        return all(h["status"] == "resolved" and h["status_seq"] == 2 for h in hs) and hs
    hs = wait_for(resolved, 60, "statuses back from 12345")
    assert len({h["partner_ticket_id"] for h in hs}) == 100
    sent = [m for m in outbox(s, "list", "--partner", "12345", "--status", "sent", "--limit", "500")
            if m["related"] in {f"ticket:{t}" for t in ids}]
    assert len(sent) == 100
    # data minimised: the number went only with consent
    docs = {json.loads(m["payload"])["source_ticket_id"]: json.loads(m["payload"]) for m in sent}
    assert all(("citizen_phone" in d) == (tid % 2 == 0) for tid, d in docs.items())
    for tid in ids[:3]:
        t = s.api(f"/api/tickets/{tid}")
        assert t["status"] == "referred" and t["outcome"] == "referred_12345"
    print(f"\n100 handoffs referred in {referred:.1f}s; all at 12345 {arrived:.1f}s after it came back")


def test_duplicate_out_of_order_and_500s_change_nothing_twice(x):
    s = x
    start_sim(s)
    sim(s, "/_sim/faults", {"duplicate_callbacks": True, "out_of_order": True})
    ids = classified_tickets(s, 3, "dup")
    for tid in ids:
        s.api(f"/api/tickets/{tid}/handoff", "POST", {"partner": "12345", "consent": False})
    wait_for(lambda: all(s.api(f"/api/tickets/{t}/handoffs")[0]["status_seq"] == 2 for t in ids), 30, "statuses")
    state = sim(s, "/_sim/state")
    mine = [c for c in state["callbacks"] if c["status"] == 200]
    # resolved (seq 2) came first and was applied; the late 'accepted' (seq 1) and every duplicate were not
    assert all(s.api(f"/api/tickets/{t}/handoffs")[0]["status"] == "resolved" for t in ids)
    assert sum(1 for c in mine if c["body"]["applied"]) >= 3
    assert any(not c["body"]["applied"] for c in mine)

    sim(s, "/_sim/faults", {"duplicate_callbacks": False, "out_of_order": False, "error500": True})
    ids = classified_tickets(s, 3, "e500")
    for tid in ids:
        s.api(f"/api/tickets/{tid}/handoff", "POST", {"partner": "12345", "consent": False})
    wait_for(lambda: [m for m in outbox(s, "list", "--partner", "12345", "--limit", "500")
                      if m["related"] == f"ticket:{ids[0]}" and m["attempts"] >= 3], 30, "retries on 500")
    sim(s, "/_sim/faults", {"error500": False})
    wait_for(lambda: all(s.api(f"/api/tickets/{t}/handoffs")[0]["status"] == "resolved" for t in ids), 30, "after 500s")
    refs = [k for k in sim(s, "/_sim/state")["tickets"]]
    assert len(refs) == len(set(refs)) == 6


def post_signed(s: Stack, path: str, doc, *, key="12345", secret=None, tamper=False, headers=None, raw=None):
    body = raw if raw is not None else json.dumps(doc).encode()
    h = headers or signing.sign(key, secret or s.secrets.partner_secrets["12345"], "POST", path, body, time.time())
    if tamper:
        body = body.replace(b"leshan", b"chengdu")
    req = urllib.request.Request(s.base_url + path, method="POST", data=body, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read()), h
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), h


INBOUND = {"schema_version": 1, "partner_ticket_id": "12345-leshan-77", "city": "leshan",
           "caller_number": "13900007777", "question": "邻居占用宅基地，想咨询怎么维权", "consent": True}


def test_signed_requests_only_replays_and_tampering_refused_malformed_writes_nothing(x):
    s = x
    path = "/api/interop/v1/tickets"
    before = len(s.api("/api/tickets?limit=500"))
    refused_before = refusals(s, "interop_refused")
    code, body, _ = post_signed(s, path, INBOUND, tamper=True)
    assert code == 401 and "signature" in body["error"]
    code, body, _ = post_signed(s, path, INBOUND, secret="not-the-secret")
    assert code == 401
    code, body, _ = post_signed(s, path, {**INBOUND, "surprise": 1})
    assert code == 400 and "surprise" in body["error"]
    code, body, _ = post_signed(s, path, {**INBOUND, "city": "atlantis"})
    assert code == 400 and "atlantis" in body["error"]
    code, body, _ = post_signed(s, path, None, raw=b"{not json")
    assert code == 400
    old = signing.sign("12345", s.secrets.partner_secrets["12345"], "POST", path, json.dumps(INBOUND).encode(),
                       time.time() - 3600)
    assert post_signed(s, path, INBOUND, headers=old)[0] == 401
    assert len(s.api("/api/tickets?limit=500")) == before          # nothing written by any of these

    code, body, headers = post_signed(s, path, INBOUND)
    assert code == 201 and body["callback"] is True
    code, again, _ = post_signed(s, path, INBOUND, headers=headers)   # the same request replayed
    assert code == 401 and "replayed" in again["error"]
    t = s.api(f"/api/tickets/{body['ticket_id']}")
    assert t["source"] == "partner" and t["city"] == "leshan" and "宅基地" in t["summary"]
    assert any(c["call_id"] == f"handoff:{body['handoff_ref'].rsplit('-h', 1)[1]}" and c["reason"] == "partner_referral"
               for c in s.api("/api/callbacks"))
    # tampered, wrong key, stale, replayed: each counted (folded per address and minute, first detail kept)
    assert refusals(s, "interop_refused") == refused_before + 4
    # the ticket's progress goes back to 12345, signed, through the outbox
    start_sim(s)
    s.api(f"/api/tickets/{t['id']}", "PATCH", {"category": "land_housing", "outcome": "answered",
                                                "answer": "建议先协商，再申请村委会调解"})
    s.api(f"/api/tickets/{t['id']}/status", "POST", {"status": "resolved"})
    # the outbox may deliver an earlier status (accepted) first: wait for the resolved one to have arrived
    got = wait_for(lambda: (g := [d for d in sim(s, "/_sim/state")["statuses_received"]
                                  if d["handoff_ref"] == "12345-leshan-77"])
                   and any(d["status"] == "resolved" for d in g) and g, 30, "resolved status at 12345")
    assert got[-1]["status"] == "resolved" and "调解" in got[-1]["note"]


def test_inbound_from_simulator_and_dead_letters(x):
    s = x
    start_sim(s)
    pushed = sim(s, "/_sim/push", {**INBOUND, "partner_ticket_id": "12345-leshan-88", "consent": False})
    assert pushed["status"] == 201 and pushed["body"]["callback"] is False
    pushed_again = sim(s, "/_sim/push", {**INBOUND, "partner_ticket_id": "12345-leshan-88", "consent": False})
    assert pushed_again["body"]["ticket_id"] == pushed["body"]["ticket_id"]        # idempotent
    # a partner that refuses (404 here): a dead letter, an alert, and the operator's retry
    tid = classified_tickets(s, 1, "dead")[0]
    s.api(f"/api/tickets/{tid}/handoff", "POST", {"partner": "12333", "consent": False})
    dead = wait_for(lambda: outbox(s, "list", "--status", "dead"), 30, "a dead letter")
    assert "404" in dead[0]["last_error"]
    alerts = wait_for(lambda: [a for a in s.api("/api/alerts") if a["kind"] == "dead_letter"], 10, "an alert")
    assert alerts[0]["topic"] == "12333" and alerts[0]["city"] == "leshan"
    subprocess.run([sys.executable, "-m", "hotline.cli", "outbox", "retry", str(dead[0]["id"])], cwd=ROOT,
                   env=s.env, check=True, capture_output=True, timeout=60)
    again = wait_for(lambda: [m for m in outbox(s, "list", "--partner", "12333") if m["attempts"] >= 1
                              and m["status"] == "dead" and m["id"] == dead[0]["id"]], 30, "retried")
    assert again
    assert any(a["action"] == "outbox_retry" for a in s.api("/api/audit?limit=20"))


def test_warm_transfer_to_the_12345_trunk_carries_the_ticket_id(tmp_path_factory):
    """A stack whose 12345 trunk is a sipp UAS: the agent's attended (warm) transfer reaches it with
    the ticket id in X-12348-Ticket-Id; completing it leaves the caller with 12345."""
    import socket as sk

    from simulators.audio import tone_wav
    tmp = tmp_path_factory.mktemp("warm")
    uas_port = free_port(sk.SOCK_DGRAM)
    s = Stack(tmp)
    s.overrides["interop"] |= {"sip": {"12345": {"default": f"sip:12345@127.0.0.1:{uas_port}"}}}
    s.reconfigure()
    s.start()
    trace = tmp / "uas-messages.log"
    uas = subprocess.Popen(["sipp", "-sf", str(ROOT / "tests/sipp/uas_partner.xml"), "-i", "127.0.0.1",
                            "-p", str(uas_port), "-mp", str(free_port(sk.SOCK_DGRAM) & ~1), "-m", "1",
                            "-nostdin", "-trace_msg", "-message_file", str(trace), "-timeout", "90s"],
                           cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        s.agent("agent1001", play=tone_wav(1000, 30, tmp / "agent.wav"))
        s.call("083312348", dtmf="2:1,4:1", play=tone_wav(500, 30, tmp / "caller.wav"), hangup_after=30,
               caller="13955550001")
        live = wait_for(lambda: [c for c in s.api("/api/status")["calls_in_progress"]
                                 if c["caller_number"] == "13955550001" and c["status"] == "talking"], 60, "answered")[0]
        ticket = wait_for(lambda: _ticket(s, live["call_id"]), 20, "ticket")
        # the controller labels the legs right after creating the ticket: wait until both carry it
        legs = [live["channel"], live.get("agent_channel") or _agent_channel(s, live["call_id"])]
        wait_for(lambda: all(f"HOTLINE_TICKET={ticket['id']}" in s.asterisk.rx(f"core show channel {leg}")
                             for leg in legs), 20, f"legs {legs} labelled with the ticket")
        s.api(f"/api/calls/{live['call_id']}/transfer", "POST",
              {"target": {"type": "external", "id": "12345"}, "attended": True})
        invite = wait_for(lambda: trace.exists() and "INVITE sip:12345@" in trace.read_text(errors="replace")
                          and trace.read_text(errors="replace"), 30, "INVITE at the 12345 trunk")
        assert f"X-12348-Ticket-Id: {ticket['id']}" in invite, invite[:3000]
        assert f"X-12348-Call-Id: {live['call_id']}" in invite
        time.sleep(1)
        s.api(f"/api/calls/{live['call_id']}/complete", "POST", {})
        rec = s.wait_record(lambda r: r["caller_number"] == "13955550001" and r["status"] == "ended", timeout=40)
        assert rec["transfers"] == "attended:agent1001>ext-12345", rec["transfers"]
        assert rec["agent"] == "partner-12345-default"          # the caller ended up talking to 12345
    finally:
        uas.kill()
        uas.wait()
        s.close()


def _ticket(s: Stack, call_id: str):
    try:
        return s.api(f"/api/calls/{call_id}/ticket")
    except urllib.error.HTTPError:
        return None
