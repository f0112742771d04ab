"""Kamailio in front of two Asterisk nodes (issue 18, part A): registration and calls through the edge,
the edge's one-call-per-agent rule, node failover under sipp load, recovery, controller loss."""
from __future__ import annotations

import shutil

import pytest

from tests.cluster import Cluster
from tests.helpers import postgres_database, wait_for

pytestmark = pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio is not installed")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with postgres_database() as url:
        c = Cluster(tmp_path_factory.mktemp("cluster"), url)
        c.start()
        try:
            yield c
        finally:
            c.close()


@pytest.fixture
def clean(cluster):
    """Each test starts with every node up, every agent logged out, no stray phones."""
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
    assert rec["city"] == "leshan" and rec["agent"] == "agent1001" and rec["outcome"] == "answered"
    wait_for(lambda: c.agent_dialogs("agent1001") == 0, 20, "the agent's dialog ended at the edge")
