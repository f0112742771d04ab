"""Several nodes as one call center: the pure rules (core/cluster.py) and the shared store on both real
databases (node on call records, leases on callbacks, agents' shared state)."""
import asyncio

from core import cluster as rules
from core.calls import CallState
from core.config.system import Cluster
from store.agents import AgentStateStore
from store.callbacks import CallbackStore
from store.calls import CallStore
from store.engine import Database, migrate
from tests.helpers import ROOT

TWO = Cluster(node="na", nodes=[{"name": "na", "address": "127.0.0.1", "cities": ["chengdu", "meishan"]},
                                {"name": "nb", "address": "127.0.0.1", "ami_port": 5039, "cities": ["leshan"]}],
              edge=False)


def test_health_from_heartbeats():
    assert rules.health(None, 100.0) == "down"                         # never seen
    assert rules.health({"at": 99.0, "ami": True}, 100.0) == "up"
    assert rules.health({"at": 99.0, "ami": False}, 100.0) == "down"   # controller alive, its Asterisk away
    assert rules.health({"at": 80.0, "ami": True}, 100.0) == "stale"   # controller silent
    assert rules.health({"at": "garbage"}, 100.0) == "down"


def test_a_city_is_served_by_its_first_node_while_up_else_by_a_standby():
    both = rules.serving(TWO, {"na": "up", "nb": "up"})
    assert both == {"chengdu": "na", "meishan": "na", "leshan": "nb"}
    assert rules.serving(TWO, {"na": "up", "nb": "stale"})["leshan"] == "na"
    assert rules.serving(TWO, {"na": "down", "nb": "up"})["chengdu"] == "nb"
    # nobody up: each city stays with its first node (nothing better to say)
    assert rules.serving(TWO, {"na": "down", "nb": "down"}) == both


def test_nodes_view_lists_every_node_with_what_it_serves_now():
    view = rules.nodes_view(TWO, {"na": {"at": 100.0, "ami": True}, "nb": {"at": 50.0, "ami": True}}, 100.0)
    na, nb = (v.as_dict() for v in view)
    assert (na["name"], na["health"], na["this"], na["cities"]) == ("na", "up", True, ["chengdu", "meishan"])
    assert sorted(na["serving"]) == ["chengdu", "leshan", "meishan"]
    assert (nb["health"], nb["serving"], nb["last_seen"], nb["this"]) == ("stale", [], 50.0, False)


def test_only_an_agents_own_phone_state_is_relayed():
    assert rules.relayed_state("PJSIP/agent1001", "INUSE") == ("agent1001", "INUSE")
    assert rules.relayed_state("PJSIP/agent1001", "RINGING") == ("agent1001", "INUSE")
    assert rules.relayed_state("PJSIP/agent1001", "NOT_INUSE") == ("agent1001", "NOT_INUSE")
    assert rules.relayed_state("PJSIP/agent1001", "UNAVAILABLE") == ("agent1001", "NOT_INUSE")
    # the custom state itself (an echo would keep the agent busy for ever), channels, garbage: never
    assert rules.relayed_state("Custom:agent-agent1001", "INUSE") is None
    assert rules.relayed_state("PJSIP/agent1001/sip:x", "INUSE") is None
    assert rules.relayed_state("PJSIP/agent1001", "WEIRD") is None
    assert rules.state_interface("agent1001") == "hint:agent1001@hotline-agent-state"


def test_free_after_a_call_waits_for_the_wrap_up_but_free_after_a_ring_does_not():
    assert rules.wrap_up_follows("INUSE", "NOT_INUSE") and rules.wrap_up_follows("ONHOLD", "UNAVAILABLE")
    assert not rules.wrap_up_follows("RINGING", "NOT_INUSE")      # rung, not answered: no call to wrap up
    assert not rules.wrap_up_follows(None, "NOT_INUSE") and not rules.wrap_up_follows("INUSE", "RINGING")


def test_the_hint_context_is_generated_only_for_a_cluster():
    from callcenter.asterisk.confgen.cluster import agent_state_context
    from callcenter.asterisk.confgen.manager import disabled_events, manager_conf
    from core.config import load_config

    one = load_config(ROOT)
    assert agent_state_context(one) == ""
    two = load_config(ROOT, {"cluster": TWO.model_dump()})
    ctx = agent_state_context(two)
    assert "exten => agent1001,hint,PJSIP/agent1001&Custom:agent-agent1001" in ctx
    # phones' DeviceStateChange reach the controller either way (one node: the agents' state; several: also
    # relayed); QueueMemberStatus only with several nodes, where app_queue's state includes the relayed one
    # (manager_conf reads only the AMI login of the secrets)
    s = type("S", (), {"ami_user": "hotline", "ami_secret": "x"})()
    for cfg in (one, two):
        assert "name(DeviceStateChange),header(Device),method(regex)) = ^ *([^P ]|P[^J])\n" in manager_conf(cfg, s)
    assert "QueueMemberStatus" in disabled_events(one) and "QueueMemberStatus" not in disabled_events(two)
    assert "QueueMemberStatus" not in manager_conf(two, s)


async def _stores(db_url):
    migrate(db_url, ROOT)
    return Database(db_url, ROOT)


async def test_records_carry_their_node_and_a_lost_nodes_calls_are_closed(db_url):
    db = await _stores(db_url)
    try:
        na, nb = CallStore(db, "na"), CallStore(db, "nb")
        await na.save_call(CallState(call_id="a.1", city="chengdu", status="talking", started_at=1000.0,
                                     queued_at=1001.0, answered_at=1005.0, agent="agent1001"))
        await na.save_call(CallState(call_id="a.2", city="chengdu", status="queued", started_at=1000.0))
        await nb.save_call(CallState(call_id="b.1", city="leshan", status="ivr", started_at=1000.0))
        assert (await na.call("a.1"))["node"] == "na"
        # each node reloads only its own calls after a restart
        assert sorted(c.call_id for c in await na.unfinished_calls()) == ["a.1", "a.2"]
        assert [c.call_id for c in await nb.unfinished_calls()] == ["b.1"]
        closed = await nb.close_lost_node("na", "node na lost: no heartbeat, Asterisk unreachable")
        assert sorted(closed) == ["a.1", "a.2"]
        a1 = await na.call("a.1")
        assert (a1["status"], a1["outcome"], a1["node"]) == ("ended", "node_lost", "na")
        assert a1["hangup_cause_text"].startswith("node na lost") and a1["talk_seconds"] > 0
        assert await na.unfinished_calls() == [] and len(await nb.unfinished_calls()) == 1
        assert await nb.close_lost_node("na", "again") == []       # once
    finally:
        await db.close()


async def test_a_voicemail_callback_is_claimed_by_one_node_only(db_url):
    db = await _stores(db_url)
    try:
        na, nb = CallbackStore(db, "na", 0.5), CallbackStore(db, "nb", 0.5)
        await na.add_callback(CallState(call_id="vm.1", caller_number="13800001111", city="leshan"), "voicemail", "/vm/1")
        (task,) = await nb.due_voicemail_callbacks()
        wins = await asyncio.gather(na.mark_callback(task.id, "dialing"), nb.mark_callback(task.id, "dialing"))
        assert sorted(wins) == [False, True]
        assert await na.due_voicemail_callbacks() == [] and await nb.due_voicemail_callbacks() == []
    finally:
        await db.close()


async def test_a_lost_nodes_callbacks_return_to_the_pool_in_their_place_when_the_lease_lapses(db_url):
    db = await _stores(db_url)
    try:
        na, nb = CallbackStore(db, "na", 0.3), CallbackStore(db, "nb", 0.3)
        # a "press 5" request waiting in na's Asterisk, then a voicemail na placed: both held by na
        await na.add_callback(CallState(call_id="q.1", caller_number="13800001111", city="leshan"), "queue_callback")
        await na.add_callback(CallState(call_id="vm.2", caller_number="13800002222", city="leshan"), "voicemail", "/vm/2")
        (vm,) = await na.due_voicemail_callbacks()
        assert await na.mark_callback(vm.id, "dialing")
        rows = {r["call_id"]: r for r in await na.callbacks()}
        assert rows["q.1"]["node"] == rows["vm.2"]["node"] == "na" and rows["q.1"]["lease_until"] is not None
        # na lives: renewing keeps them its own even after the lease length
        await asyncio.sleep(0.4)
        assert await na.renew() == 2
        nb.lost = {"na"}
        assert await nb.due_voicemail_callbacks() == []
        # na is lost: nothing renews; once the leases lapse nb takes them, oldest first
        await asyncio.sleep(0.4)
        due = await nb.due_voicemail_callbacks()
        assert [t.call_id for t in due] == ["q.1", "vm.2"]
        assert all([await nb.mark_callback(t.id, "dialing") for t in due])
        assert {r["node"] for r in await nb.callbacks()} == {"nb"}
        # na back from the dead must not place its astdb requests again
        assert await na.held_elsewhere(["q.1", f"t{vm.id}", "unknown"]) == {"q.1", f"t{vm.id}"}
        # the result reaches the task and its lease ends
        await nb.update_callback(f"t{vm.id}", "done", 1)
        done = next(r for r in await nb.callbacks() if r["call_id"] == "vm.2")
        assert (done["status"], done["lease_until"]) == ("done", None)
    finally:
        await db.close()


async def test_one_node_takes_no_leases(db_url):
    db = await _stores(db_url)
    try:
        one = CallbackStore(db)
        await one.add_callback(CallState(call_id="q.9", caller_number="13800001111", city="leshan"), "queue_callback")
        await one.add_callback(CallState(call_id="vm.9", caller_number="13800002222", city="leshan"), "voicemail", "/v/9")
        (t,) = await one.due_voicemail_callbacks()
        assert await one.mark_callback(t.id, "dialing") and not await one.mark_callback(t.id, "dialing")
        assert {(r["node"], r["lease_until"]) for r in await one.callbacks()} == {("", None)}
        assert await one.renew() == 0
    finally:
        await db.close()


async def test_agents_shared_state(db_url):
    db = await _stores(db_url)
    try:
        a, b = AgentStateStore(db, "na"), AgentStateStore(db, "nb")
        await a.set_state("agent1001", logged_in=True, paused=True, reason="meal")
        st = (await b.states())["agent1001"]
        assert (st["logged_in"], st["paused"], st["reason"], st["node"]) == (True, True, "meal", "na")
        await b.set_state("agent1001", logged_in=True, paused=False, reason="meal")
        st = (await a.states())["agent1001"]
        assert (st["paused"], st["reason"], st["node"]) == (False, "", "nb")     # no reason when ready
    finally:
        await db.close()


async def test_a_follow_up_is_dialled_by_one_node_and_a_lost_nodes_returns_to_the_pool(db_url):
    from datetime import datetime, timedelta, timezone

    from store.followups import FollowUpStore
    from tests.unit.test_followups import closed_ticket

    db = await _stores(db_url)
    try:
        na, nb = FollowUpStore(db, "na"), FollowUpStore(db, "nb")
        await closed_ticket(db, "fu.1", "13811112222")
        now = datetime.now(timezone.utc) + timedelta(seconds=1)
        deadline = now + timedelta(minutes=2)
        got = await asyncio.gather(na.due(now, deadline), nb.due(now, deadline))
        assert sorted(len(g) for g in got) == [0, 1]                 # SKIP LOCKED / compare-and-set: once
        (f,) = got[0] or got[1]
        winner = na if got[0] else nb
        assert (await winner.search(ticket_id=f["ticket_id"]))[0]["node"] == winner.node
        # the node that dialled it dies mid-survey: past its deadline (the claim's lease) any node frees it
        other = nb if winner is na else na
        later = deadline + timedelta(seconds=1)
        (back,) = await other.expire_dialing(later, later, attempts=3)
        assert back["status"] == "pending"
        (again,) = await other.due(later, later + timedelta(minutes=2))
        assert again["id"] == f["id"] and again["attempts"] == 2
        assert (await other.search(ticket_id=f["ticket_id"]))[0]["node"] == other.node
    finally:
        await db.close()


def test_hotline_status_prints_the_nodes():
    import io

    from rich.console import Console

    from hotline.ops import nodes_table

    nodes = [{"name": "na", "health": "stale", "last_seen": 1000.0, "cities": ["chengdu"], "serving": [], "this": False},
             {"name": "nb", "health": "up", "last_seen": 1010.0, "cities": ["leshan"], "serving": ["leshan", "chengdu"],
              "this": True}]
    buf = io.StringIO()
    Console(file=buf, width=160, color_system=None).print(nodes_table(nodes))
    text = buf.getvalue()
    assert "stale" in text and "nb *" in text and "standby for chengdu" in text


def test_each_node_prefixes_its_call_ids_with_its_name():
    """Two Asterisks started in the same second hand out the same uniqueids: in one shared database that
    would be one call record for two calls (seen in test_nodes.py before this)."""
    from callcenter.asterisk.confgen.system import asterisk_conf
    from core.paths import InstancePaths

    paths = InstancePaths(ROOT / ".unused-rootfs", "tnodes")
    assert "systemname" not in asterisk_conf(paths, "/m")
    assert "\nsystemname = na\n" in asterisk_conf(paths, "/m", "na")
