"""Kamailio in front of two Asterisk nodes (issue 18, part A): registration and calls through the edge,
the edge's one-call-per-agent rule, node failover under sipp load, recovery, controller loss.

Leshan (083312348) is served first by node na, Mianyang (081612348) by nb; each is the other's standby."""
from __future__ import annotations

import re
import shutil
import time
from datetime import datetime

import pytest

from tests.cluster import Background, Cluster, EdgePhones, edge_callers, write_roster
from tests.helpers import postgres_database, wait_for

pytestmark = pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio is not installed")

LOAD_AGENTS = 6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cluster")
    roster = tmp / "agents.yaml"
    write_roster(roster, LOAD_AGENTS, ["leshan", "mianyang"])
    with postgres_database() as url:
        c = Cluster(tmp, url, agents_file=roster, rtp_ports=1000)
        c.start()
        c.load_agents = [f"agent{3001 + i}" for i in range(LOAD_AGENTS)]
        try:
            yield c
        finally:
            c.close()


@pytest.fixture
def clean(cluster):
    """Each test starts with every node and controller up, every agent logged out, no stray phones."""
    for name, s in cluster.stacks.items():
        if not s.asterisk.running():
            cluster.restart_asterisk(name)
        if s.controller is None or s.controller.poll() is not None:
            s.start_controller()
        s.logout_all()
    cluster.wait_nodes_active()
    yield cluster
    for s in cluster.stacks.values():
        for p in s.parties:
            p.stop()
        s.parties.clear()


def login_everywhere(c: Cluster, agents: list[str]) -> None:
    """Each agent logged in and ready on every node (part B of issue 18 makes one login do this)."""
    for s in c.stacks.values():
        for a in agents:
            s.api(f"/api/agents/{a}/login", "POST", {"ready": True})


def agent_states(c: Cluster, node: str) -> dict[str, tuple[bool, bool, str]]:
    """The load agents on one node: (logged in, paused, pause reason)."""
    return {a["id"]: (a["state"] != "logged_out", bool(a["paused"]), a["pause_reason"] or "")
            for a in c.node(node).api("/api/agents") if a["id"] in c.load_agents}


def address(c: Cluster, name: str) -> str:
    return next(n["address"] for n in c.cluster["nodes"] if n["name"] == name)


def test_carrier_call_through_the_edge_reaches_an_agent_registered_at_the_edge(clean, audio):
    c = clean
    na = c.node("na")
    agent = na.agent("agent1001")                  # Leshan's agent; Leshan is served by na first
    assert "agent1001" in c.registered()
    caller = na.call("083312348", dtmf="2:1,4:1", play=audio["caller"], hangup_after=25, caller="13900000001")
    agent.wait_event("answered", 40)
    assert c.agent_dialogs("agent1001") == 1       # the edge sees the agent's call
    res = caller.result(60)
    assert res["answered"], res
    rec = na.wait_record(lambda r: r["caller_number"] == "13900000001" and r["status"] == "ended", 40)
    assert rec["city"] == "leshan" and rec["agent"] == "agent1001"
    wait_for(lambda: c.agent_dialogs("agent1001") == 0, 20, "the agent's dialog ended at the edge")


def test_a_call_overflows_to_the_provincial_pool_logged_in_on_the_other_node(clean, audio):
    """Leshan's caller is on na; nobody of Leshan is logged in. The provincial pool's lawyer logged in at
    nb's desk: the login reaches na, whose province queue rings her phone through the edge."""
    c = clean
    na, nb = c.node("na"), c.node("nb")
    pool = nb.agent("agent1006", play=audio["agent"])           # registered at the edge, logged in on nb
    wait_for(lambda: next(a for a in na.api("/api/agents") if a["id"] == "agent1006")["state"] == "ready", 15,
             "agent1006's login applied on na")
    caller = na.call("083312348", dtmf="2:1,4:1", play=audio["caller"], hangup_after=25, caller="13900000061")
    pool.wait_event("answered", 90)
    assert caller.result(120)["answered"]
    rec = na.wait_record(lambda r: r["caller_number"] == "13900000061" and r["status"] == "ended", 40)
    assert (rec["node"], rec["city"], rec["queue"], rec["agent"]) == ("na", "leshan", "province", "agent1006"), rec
    assert rec["overflow"].startswith("leshan:"), rec["overflow"]     # Leshan's own queue came first


@pytest.mark.slow      # about 100 s: two sipp runs of 40 calls around a SIGKILL and a restart
def test_failover_under_load_and_recovery(clean, tmp_path):
    """sipp calls Leshan at 2/s; na's Asterisk is SIGKILLed: new calls are answered on nb (N seconds,
    printed), only calls in progress on na fail. Then na restarts under load and takes Leshan back
    without a call failing."""
    c = clean
    phones = EdgePhones(c, tmp_path / "phones", c.load_agents)
    phones.start()
    try:
        login_everywhere(c, c.load_agents)
        paused = c.load_agents[-1]               # one agent paused for training, on both nodes
        for s in c.stacks.values():
            s.api(f"/api/agents/{paused}/pause", "POST", {"reason": "training"})
        before_states = {n: agent_states(c, n) for n in c.stacks}
        assert before_states["na"][paused] == (True, True, "training")
        na, nb = address(c, "na"), address(c, "nb")
        load = Background(lambda: edge_callers(c, tmp_path, "083312348", rate=2, calls=40, hold_ms=2000,
                                               prefix="1391000", timeout=240))
        time.sleep(8)
        killed_at = time.time()
        c.kill_asterisk("na")
        res = load.result(300)
        assert len(res.calls) == 40, res.log_tail
        before = [x for x in res.calls if x.invited <= killed_at]
        after = [x for x in res.calls if x.invited > killed_at]
        failed = [x for x in res.calls if not x.ended]
        assert before and all(x.node == na for x in before if x.answered)
        # only calls in progress on the dead node may fail; every new call is answered, on nb
        assert all(x.ended for x in after), [(x.call_id, x.answered, x.node) for x in after if not x.ended]
        assert all(x.node == nb for x in after)
        first_on_nb = min(x.answered for x in after) - killed_at
        worst_setup = max(x.setup_ms for x in after) / 1000
        print(f"\nfailover: killed na at t0; first new call answered on nb after {first_on_nb:.2f} s; "
              f"slowest new call setup {worst_setup:.2f} s; failed {len(failed)} of {len(res.calls)} "
              f"(in progress on na at the kill: {len(before)})")
        # agents stay logged in or paused as they were, on the surviving node
        assert agent_states(c, "nb") == before_states["nb"]
        # every call nb answered has its record (nb's controller, shared database)
        callers = {x.caller for x in after}
        wait_for(lambda: callers <= {r["caller_number"] for r in c.node("nb").records(200)
                                     if r["status"] == "ended"}, 60, "a record for every call nb answered")

        # recovery: na restarts while calls keep coming; none fails, and na takes Leshan back
        load2 = Background(lambda: edge_callers(c, tmp_path, "083312348", rate=2, calls=40, hold_ms=2000,
                                                prefix="1392000", timeout=240))
        time.sleep(3)
        restarted_at = time.time()
        c.restart_asterisk("na")
        c.wait_nodes_active(["na"])
        res2 = load2.result(300)
        # ... and on the restarted node (app_queue's members persist in its astdb)
        wait_for(lambda: agent_states(c, "na") == before_states["na"], 30, "na's agents as they were")
        assert res2.failed == 0 and all(x.ended for x in res2.calls), res2.log_tail
        # the edge's in-dialog keepalive ended the dead node's calls: no agent is left busy at the edge
        wait_for(lambda: not any(c.agent_dialogs(a) for a in c.load_agents), 90, "no agent left busy at the edge")
        back = [x for x in res2.calls if x.node == na]
        assert back, "na took no call back"
        # every call that died with na has its record too: ended, failed, with the reason (na's own
        # controller closes them when its Asterisk is back without them)
        lost = {x.caller for x in failed}

        def lost_records():
            recs = [r for r in c.node("nb").records(500) if r["caller_number"] in lost]
            return recs if len(recs) == len(lost) and all(r["status"] == "ended" for r in recs) else None
        recs = wait_for(lost_records, 60, "an ended record for every call that died with na")
        assert {(r["outcome"], r["node"]) for r in recs} == {("node_lost", "na")}, recs
        assert all(r["hangup_cause_text"] == "dropped with node na's Asterisk" for r in recs), recs
        print(f"recovery: na answered its first call {min(x.answered for x in back) - restarted_at:.2f} s after "
              f"its restart began; {len(back)} of {len(res2.calls)} calls on na, none failed")
    finally:
        phones.stop()


def _overlaps(records: list[dict]) -> int:
    by_agent: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        if r.get("agent") and r.get("answered_at") and r.get("ended_at"):
            span = (datetime.fromisoformat(r["answered_at"]).timestamp(),
                    datetime.fromisoformat(r["ended_at"]).timestamp())
            by_agent.setdefault(r["agent"], []).append(span)
    n = 0
    for spans in by_agent.values():
        spans.sort()
        n += sum(1 for (_, e1), (s2, _) in zip(spans, spans[1:]) if s2 < e1)
    return n


def test_no_agent_rings_on_two_nodes_at_once(clean, tmp_path):
    """Three agents in Leshan's and Mianyang's queues on both nodes; calls for both cities arrive
    together (Leshan on na, Mianyang on nb): both nodes ring the same agents, the edge lets only one
    call per agent through (486 to the other node), and no agent's calls overlap."""
    c = clean
    agents = c.load_agents[:3]
    phones = EdgePhones(c, tmp_path / "phones", agents)
    phones.start()
    try:
        login_everywhere(c, agents)
        busy_before = c.edge.log.read_text().count("already has a call")
        l1 = Background(lambda: edge_callers(c, tmp_path, "083312348", rate=2, calls=12, hold_ms=6000,
                                             prefix="1393000", timeout=240))
        l2 = Background(lambda: edge_callers(c, tmp_path, "081612348", rate=2, calls=12, hold_ms=6000,
                                             prefix="1394000", timeout=240))
        r1, r2 = l1.result(300), l2.result(300)
        nodes = {x.node for x in r1.calls + r2.calls if x.answered}
        assert nodes == {address(c, "na"), address(c, "nb")}
        callers = {x.caller for x in r1.calls + r2.calls}
        wait_for(lambda: callers <= {r["caller_number"] for r in c.first.records(200) if r["status"] == "ended"},
                 60, "every call recorded")
        recs = [r for r in c.first.records(200) if r["caller_number"] in callers]
        assert any(r.get("agent") for r in recs)
        refused = c.edge.log.read_text().count("already has a call") - busy_before
        print(f"\nno double ringing: {len(recs)} calls, {sum(1 for r in recs if r.get('agent'))} answered by "
              f"agents, {refused} INVITEs to a busy agent refused at the edge, overlapping calls per agent = "
              f"{_overlaps(recs)}")
        assert _overlaps(recs) == 0
        assert refused > 0, "the edge never had to refuse: the test did not make two nodes ring one agent"
    finally:
        phones.stop()


def test_controller_loss_the_node_keeps_serving_through_the_edge(clean, audio):
    c = clean
    na = c.node("na")
    agent = na.agent("agent1001")
    c.kill_controller("na")
    caller = na.call("083312348", dtmf="2:1,4:1", play=audio["caller"], hangup_after=15, caller="13900000005")
    agent.wait_event("answered", 40)
    assert caller.result(60)["answered"]
    # the other node's controller never noticed: it still serves
    assert c.node("nb").api("/api/status")["asterisk"]["ami_connected"]
    na.start_controller()
    st = na.api("/api/status")
    assert st["controller"]["resynced"] and st["asterisk"]["ami_connected"]
    # the restarted controller rebuilds the call from the node's CDR: every call has its record
    rec = na.wait_record(lambda r: r["caller_number"] == "13900000005" and r["status"] == "ended", 30)
    assert rec["agent"] == "agent1001" and rec["outcome"] == "answered" and rec["call_id"].startswith("na-")


def test_hotline_up_runs_the_edge_and_every_node_and_down_stops_them(tmp_path):
    """`hotline up` with cluster.nodes set: Kamailio from the host under the state dir, each node's
    Asterisk on its own loopback address with its controller; `hotline down` stops them all."""
    import json
    import os
    import random
    import subprocess
    import sys

    import redis

    from callcenter.asterisk.runtime import AsteriskInstance
    from callcenter.edge.runtime import KamailioInstance
    from core.config import load_config
    from tests.cluster import _free_subnet
    from tests.helpers import ROOT, free_port

    net = _free_subnet()
    ports = set()
    while len(ports) < 4:
        ports.add(free_port())
    ami_a, ami_b, http_a, http_b = sorted(ports)
    tag = f"up{os.getpid()}{random.randint(100, 999)}"
    overrides = {
        "state_dir": str(tmp_path / "state"), "asterisk": {"instance": tag},
        "database": {"url": f"sqlite:///{tmp_path}/hotline.db"}, "redis": {"prefix": f"hltest{tag}"},
        "transcription": {"enabled": False}, "interop": {"enabled": False},
        "controller": {"rotas_enabled": False},
        "cluster": {"kamailio": {"address": f"{net}.1"},
                    "nodes": [{"name": "na", "address": f"{net}.2", "ami_port": ami_a, "http_port": http_a,
                               "cities": ["leshan"]},
                              {"name": "nb", "address": f"{net}.3", "ami_port": ami_b, "http_port": http_b,
                               "cities": ["mianyang"]}]}}
    env = {**os.environ, "HOTLINE_CONFIG_OVERRIDES": json.dumps(overrides)}
    cfg = load_config(ROOT, overrides)
    nodes = {n: load_config(ROOT, {**overrides, "cluster": {**overrides["cluster"], "node": n}}) for n in ("na", "nb")}
    edge = KamailioInstance(cfg)
    try:
        up = subprocess.run([sys.executable, "-m", "hotline.cli", "up"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=400)
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        assert edge.running()
        wait_for(lambda: re.findall(r"FLAGS: (\w+)", edge.rpc("dispatcher.list")).count("AP") == 4, 30,
                 "both nodes active in both sets")
        for ncfg in nodes.values():
            assert AsteriskInstance(ncfg).running()
        # `hotline status` on the install reports the edge and every node (not the base instance); the
        # nodes table is the heartbeats' view (every 2 s): a node just connected shows up by the next beat
        def status():
            st = subprocess.run([sys.executable, "-m", "hotline.cli", "status", "--json"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
            report = json.loads(st.stdout)
            healths = [(n["name"], n["health"]) for n in report["nodes"]]
            return (st, report) if healths == [("na", "up"), ("nb", "up")] else None
        st, report = wait_for(status, 30, "hotline status showing both nodes up")
        assert st.returncode == 0 and report["down"] == [] and report["edge"]["running"], st.stdout[-3000:]
        assert sorted(report["node_reports"]) == ["na", "nb"]
        assert all(r["asterisk"]["ami_connected"] for r in report["node_reports"].values())
        text = subprocess.run([sys.executable, "-m", "hotline.cli", "status"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120).stdout
        assert "node na" in text and "node nb" in text and "edge (Kamailio)" in text, text[-3000:]
        down = subprocess.run([sys.executable, "-m", "hotline.cli", "down"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
        assert down.returncode == 0, down.stdout[-2000:] + down.stderr[-2000:]
        assert not edge.running()
        assert not any(AsteriskInstance(n).running() for n in nodes.values())
        assert not list((tmp_path / "state").glob("controller-*.pid"))
    finally:
        subprocess.run([sys.executable, "-m", "hotline.cli", "down"], cwd=ROOT, env=env, capture_output=True,
                       timeout=120)
        for ncfg in nodes.values():
            AsteriskInstance(ncfg).remove()
        AsteriskInstance(cfg).remove()
        if cfg.system.redis.url:
            try:
                redis.Redis.from_url(cfg.system.redis.url, socket_timeout=5).acl_deluser(cfg.system.redis.prefix)
            except (redis.RedisError, OSError):
                pass


def test_password_guessing_at_the_edge_blocks_the_address_and_agents_go_on(clean, tmp_path):
    """sip_guard at the edge: wrong passwords from one address (not the carrier's) get it refused with
    403 after max_failures; a phone elsewhere still registers."""
    import subprocess

    from tests.sipp_load import SIPP_DIR, free_udp_port

    c = clean
    scanner = c.kamailio_address.rsplit(".", 1)[0] + ".9"
    guard = c.first.cfg.system.sip_guard
    inf = tmp_path / "guess.csv"
    inf.write_text("SEQUENTIAL\n" + "".join(
        f"agent1001;[authentication username=agent1001 password=guess{i}]\n" for i in range(guard.max_failures + 5)))
    run = subprocess.run(["sipp", f"{c.kamailio_address}:5060", "-sf", str(SIPP_DIR / "scanner_register.xml"),
                          "-inf", str(inf), "-m", str(guard.max_failures + 5), "-r", "20", "-i", scanner,
                          "-p", str(free_udp_port()), "-timeout", "60s", "-timeout_error", "-nostdin",
                          "-trace_stat", "-stf", "stat.csv"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    stat = (tmp_path / "stat.csv").read_text().strip().splitlines()
    row = dict(zip(stat[0].split(";"), stat[-1].split(";")))
    # every guess was refused (401 again, then 403 once blocked), none registered
    assert int(row["FailedCall(C)"]) == 0 and int(row["SuccessfulCall(C)"]) == guard.max_failures + 5, run.stdout[-1500:]
    log = c.edge.log.read_text()
    assert f"blocked {scanner} after {guard.max_failures} failed SIP logins" in log
    assert "agent1001" not in c.registered()
    c.node("na").agent("agent1001", login=False)       # a phone from another address is not affected
    assert "agent1001" in c.registered()


def test_a_node_answers_sip_only_from_the_edge_and_the_other_nodes(clean):
    """Behind the edge the nodes do not check agents' passwords (Kamailio does), so a node must refuse
    every request that does not come from Kamailio or another node: an INVITE sent straight to a node
    from elsewhere, naming an agent, would otherwise be a call from that agent with no password."""
    from tests.sip_probe import SipProbe

    c = clean
    stranger = c.kamailio_address.rsplit(".", 1)[0] + ".99"
    agent = c.load_agents[0]
    before = c.node("na").asterisk.rx("core show channels count")
    for method, target in (("INVITE", "*77"), ("INVITE", "083312348"), ("OPTIONS", None), ("REGISTER", None)):
        with SipProbe((address(c, "na"), 5060), stranger) as p:
            answers = p.request(method, agent, target=target)
        assert answers and all(a.status == 403 for a in answers), (method, target, [(a.status, a.reason) for a in answers])
    assert "0 active calls" in c.node("na").asterisk.rx("core show channels count"), before
    # the edge itself still reaches the node: a carrier call through Kamailio is answered by the IVR
    assert c.node_state("na").startswith("A")
