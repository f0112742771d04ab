"""Federation on loopback: two city nodes (each its own Asterisk, controller and interop daemon)
report to a command-center node. The command center shows both cities' live queues; a stopped city
node goes stale; restarted, it catches up with every ticket event it produced meanwhile."""
from __future__ import annotations

import asyncio
import time

import pytest

from simulators.audio import tone_wav
from core.calls import CallState
from store.secrets import load_or_create, trust_node
from store.engine import Database
from store.tickets import TicketStore
from store.interop import sequence_value
from interop.effects import ticket_effects
from tests.helpers import Stack, wait_for


def node(tmp, name: str, federation: dict) -> Stack:
    s = Stack(tmp)
    s.overrides["node"] = {"name": name, "province": "四川省"}
    s.overrides["federation"] = federation
    s.reconfigure()
    return s


@pytest.fixture(scope="module")
def province(tmp_path_factory):
    command = node(tmp_path_factory.mktemp("command"), "sichuan-command", {"mode": "command", "stale_seconds": 3})
    command.start()
    cities = {}
    for name, city in (("leshan-node", "leshan"), ("chengdu-node", "chengdu")):
        s = node(tmp_path_factory.mktemp(name), name, {"mode": "city", "command_center_url": command.base_url,
                                                       "report_seconds": 0.5, "cities": [city]})
        s.overrides["interop"] |= {"poll_seconds": 0.2, "backoff_seconds": 0.2, "backoff_max_seconds": 1.0}
        s.reconfigure()
        s.start()
        trust_node(command.cfg, name, load_or_create(s.cfg).federation_secret)
        cities[city] = s
    yield command, cities
    for s in (*cities.values(), command):
        s.close()


def province_view(command: Stack) -> dict:
    return {n["node"]: n for n in command.api("/api/federation/nodes")["nodes"]}


def tickets_on(s: Stack, city: str, n: int, tag: str) -> int:
    """Tickets created on a node the way its controller does (with its effects), even while the
    node's daemons are down; returns the node's ticket-event counter."""
    async def make():
        db = Database(s.cfg.system.database.url, s.cfg.root)
        tickets = TicketStore(db, effects=ticket_effects(s.cfg))
        for i in range(n):
            await tickets.ensure_for_call(CallState(call_id=f"{tag}-{i}", city=city, agent="agent1001"), "call", 72)
        seq = await sequence_value(db, "ticket_events")
        await db.close()
        return seq
    return asyncio.run(make())


def test_command_center_sees_both_cities_and_a_stopped_node_catches_up(province, tmp_path):
    command, cities = province
    leshan, chengdu = cities["leshan"], cities["chengdu"]
    daemons = {}
    for city, s in cities.items():
        daemons[city] = s._spawn(["interop"], f"interop-{city}")
    # a caller waiting in each city's queue: its agent's phone is registered (app_queue counts only
    # reachable members as logged in) and the agent is logged in but paused
    for stack, agent in ((leshan, "agent1001"), (chengdu, "agent1002")):
        stack.agent(agent, login=False)
        stack.api(f"/api/agents/{agent}/login", "POST", {"ready": False})
    hold = tone_wav(500, 60, tmp_path / "caller.wav")
    leshan.call("083312348", dtmf="2:1,4:1", play=hold, hangup_after=45, caller="13960000001")
    chengdu.call("02812348", dtmf="2:1,4:1,6:1", play=hold, hangup_after=45, caller="13960000002")

    def both_waiting():
        v = province_view(command)
        ok = (v.get("leshan-node", {}).get("report", {}).get("queues", {}).get("leshan", {}).get("waiting") == 1
              and v.get("chengdu-node", {}).get("report", {}).get("queues", {}).get("chengdu", {}).get("waiting") == 1)
        return ok and v
    view = wait_for(both_waiting, 60, "both cities' waiting callers at the command center")
    assert view["leshan-node"]["cities"] == ["leshan"] and not view["leshan-node"]["stale"]
    assert view["leshan-node"]["report"]["queues"]["leshan"]["longest_wait_seconds"] >= 0
    assert view["leshan-node"]["report"]["agents"]["paused"] >= 1

    # tickets made while both run reach the command center
    tickets_on(leshan, "leshan", 3, "a")
    sent_before = tickets_on(chengdu, "chengdu", 2, "b")
    wait_for(lambda: province_view(command)["chengdu-node"]["events_contiguous"] == sent_before, 30, "events")

    # Chengdu's node stops (controller and interop daemon): stale at the command center
    daemons["chengdu"].stop()
    chengdu.stop_controller()
    stopped = time.monotonic()
    v = wait_for(lambda: (v := province_view(command)) and v["chengdu-node"]["stale"] and v, 20, "chengdu stale")
    stale_after = time.monotonic() - stopped
    assert not v["leshan-node"]["stale"]
    # ... and the wallboard's alarm for its city
    wait_for(lambda: [a for a in command.api("/api/alerts?kind=alarm&current=1")
                      if a["city"] == "chengdu" and a["topic"] == "node_stale"], 20, "node_stale alarm")
    # ... while it is down, its tickets pile up in its own outbox
    sent = tickets_on(chengdu, "chengdu", 5, "c")
    assert sent == sent_before + 5
    time.sleep(2)
    assert province_view(command)["chengdu-node"]["events_contiguous"] == sent_before

    # back up: reporting again, and every event it missed arrives, in order, no gap
    chengdu.start_controller()
    chengdu._spawn(["interop"], "interop-chengdu-again")
    v = wait_for(lambda: (v := province_view(command)) and not v["chengdu-node"]["stale"]
                 and v["chengdu-node"]["events_contiguous"] == sent and v, 40, "chengdu caught up")
    n = v["chengdu-node"]
    assert n["events_received"] == n["events_contiguous"] == n["events_sent"] == sent and n["events_missing"] == 0
    events = [e for e in command.api("/api/federation/events?node=chengdu-node")]
    assert sorted(e["seq"] for e in events) == list(range(1, sent + 1))
    assert all(e["city"] == "chengdu" and "caller_number" not in e["ticket"] for e in events)
    print(f"\nchengdu-node marked stale {stale_after:.1f}s after it stopped; caught up with {sent - sent_before} events")
