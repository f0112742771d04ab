"""One node among several (docs/scale-out.md "Shared state across nodes"): this controller's heartbeat and the nodes' health,
agents' state shared with the other nodes, agents busy here relayed to them as a custom device state,
and what a lost node leaves behind (its calls recorded failed, its callbacks taken over).

Everything here is best effort on top of Asterisk: a Redis or database outage costs the other nodes'
view for a while, never a call. One node (no ``cluster.nodes``): a heartbeat and a one-entry list only."""
from __future__ import annotations

import asyncio
import logging
import time

from core import cluster as rules
from core.config import HotlineConfig

log = logging.getLogger("hotline.cluster")


async def ami_port_open(address: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a node's Asterisk still accepts connections (a heartbeat says only that its controller
    lives: a node whose controller alone died keeps its calls and its callbacks)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True


class NodeKeeper:
    def __init__(self, cfg: HotlineConfig, *, bus, ami, agents, agent_states, call_records, callback_tasks,
                 on_lost_calls=None, interval: float = rules.HEARTBEAT_SECONDS, lapse: float = rules.LAPSE_SECONDS):
        self.cfg = cfg
        self.cluster = cfg.system.cluster
        self.name = self.cluster.node or cfg.system.node.name
        self.bus, self.ami, self.agents = bus, ami, agents
        self.agent_states, self.call_records, self.callback_tasks = agent_states, call_records, callback_tasks
        self.on_lost_calls = on_lost_calls          # callable(list of call ids) after a lost node's calls closed
        self.interval, self.lapse = interval, lapse
        self.beats: dict[str, dict | None] = {}
        self.lost: set[str] = set()
        self.phones: dict[str, str] = {}            # agent -> what this node last relayed about their phone
        self.phone_states: dict[str, str] = {}      # agent -> their phone's own last state here
        self.wrapup = float(cfg.system.queues.wrapup_seconds)
        self.pending_free: dict[str, asyncio.TimerHandle] = {}   # agent -> "free" held back for their wrap-up
        self.relayed_in = 0                         # device states set here for the other nodes
        self.applied: dict[str, object] = {}        # agent -> updated_at of the shared row last applied here
        self.agent_locks: dict[str, asyncio.Lock] = {}   # one change at a time per agent, in arrival order
        self.messages_applied: dict[str, int] = {}  # agent -> bus messages applied (a newer truth than a read row)
        self.started = time.time()
        if self.clustered:
            agents.state_interface = rules.state_interface
            agents.device_from = "queue"        # app_queue's state: this node's phone and the relayed one
            agents.on_change.append(self.share)

    @property
    def clustered(self) -> bool:
        return bool(self.cluster.nodes)

    # ---- health
    def view(self) -> list[dict]:
        now = time.time()
        if not self.clustered:
            cities = [c.id for c in self.cfg.cities]
            return [rules.single_node(self.name, self.ami.connected.is_set(), now, cities).as_dict()]
        beats = dict(self.beats)
        beats[self.name] = {"at": now, "ami": self.ami.connected.is_set()}    # ourselves: as we are now
        return [n.as_dict() for n in rules.nodes_view(self.cluster, beats, now, self.lapse)]

    async def beat(self) -> None:
        me = {"at": time.time(), "ami": self.ami.connected.is_set(), "node": self.name}
        await self.bus.put(f"node:{self.name}", me, 86400)      # kept a day: "last seen" outlives the node
        if not self.clustered:
            return
        await self.bus.publish("nodes", {"type": "heartbeat", **me})
        for n in self.cluster.nodes:
            if n.name != self.name:
                self.beats[n.name] = await self.bus.take(f"node:{n.name}")
        await self.callback_tasks.renew()
        await self.reconcile_agents()
        await self._find_lost()

    async def _find_lost(self) -> None:
        now = time.time()
        for n in self.cluster.nodes:
            if n.name == self.name:
                continue
            silent = rules.health(self.beats.get(n.name), now, self.lapse) == "stale" or (
                self.beats.get(n.name) is None and now - self.started > self.lapse)
            if not silent:
                if n.name in self.lost:
                    log.warning("node %s is back", n.name)
                self.lost.discard(n.name)
                continue
            if n.name in self.lost or await ami_port_open(n.address, n.ami_port):
                continue     # known lost, or only its controller is gone: its Asterisk keeps serving
            self.lost.add(n.name)
            self.callback_tasks.lost = set(self.lost)
            closed = await self.call_records.close_lost_node(
                n.name, f"node {n.name} lost: no heartbeat, Asterisk unreachable")
            log.warning("node %s lost: %d calls in progress there recorded failed (%s); its callbacks are "
                        "taken over once their leases lapse", n.name, len(closed), rules.NODE_LOST)
            if closed and self.on_lost_calls:
                await self.on_lost_calls(closed)
        self.callback_tasks.lost = set(self.lost)

    # ---- agents' state, shared
    async def share(self, agent) -> None:
        """An agent's state changed on this node: into the shared store, then to the other nodes."""
        logged_in = bool(agent.queues)
        await self.agent_states.set_state(agent.id, logged_in=logged_in, paused=agent.paused,
                                          reason=agent.pause_reason)
        await self.bus.publish("agents", {"type": "agent", "node": self.name, "agent": agent.id,
                                          "logged_in": logged_in, "paused": agent.paused,
                                          "reason": agent.pause_reason})

    async def apply_stored(self) -> None:
        """On (re)connecting to our Asterisk: its members made to match the shared store."""
        if not self.clustered:
            return
        changed = 0
        for agent_id, st in (await self.agent_states.states()).items():
            try:
                changed += await self.agents.apply_shared(agent_id, st["logged_in"], st["paused"], st["reason"])
            except Exception as e:
                log.warning("could not apply %s's shared state: %s", agent_id, e)
        # what other nodes relayed before we came up is unknown: free everyone, then ask them again
        for a in self.cfg.agents:
            await self._set_custom(a.id, "NOT_INUSE")
        await self.bus.publish("devstate", {"type": "hello", "node": self.name})
        if changed:
            log.info("%d agents' state taken from the shared store", changed)

    async def reconcile_agents(self) -> None:
        """Every beat: rows another node wrote since we last applied them. The bus is pub/sub and may
        drop a message (a subscriber reconnecting); the store is the truth, last writer wins."""
        before = dict(self.messages_applied)
        for agent_id, st in (await self.agent_states.states()).items():
            if st.get("node") == self.name or self.applied.get(agent_id) == st.get("updated_at"):
                continue
            async with self._lock(agent_id):
                if self.messages_applied.get(agent_id) != before.get(agent_id):
                    continue        # a message came while we read: the row may be older than it
                try:
                    if await self.agents.apply_shared(agent_id, st["logged_in"], st["paused"], st["reason"]):
                        log.info("%s's state taken from the shared store (written by node %s)", agent_id,
                                 st.get("node"))
                    self.applied[agent_id] = st.get("updated_at")
                except Exception as e:
                    log.warning("could not apply %s's shared state: %s", agent_id, e)

    def _lock(self, agent_id: str) -> asyncio.Lock:
        return self.agent_locks.setdefault(agent_id, asyncio.Lock())

    def on_agents_message(self, msg: dict) -> None:
        if msg.get("node") == self.name or msg.get("type") != "agent" or not isinstance(msg.get("agent"), str):
            return
        asyncio.get_running_loop().create_task(self._apply_message(msg))

    async def _apply_message(self, msg: dict) -> None:
        # in order per agent: a login still running must not finish after the pause that followed it
        async with self._lock(msg["agent"]):
            try:
                await self.agents.apply_shared(msg["agent"], bool(msg.get("logged_in")), bool(msg.get("paused")),
                                               str(msg.get("reason", ""))[:64])
                self.messages_applied[msg["agent"]] = self.messages_applied.get(msg["agent"], 0) + 1
            except Exception as e:    # AMI away: applied from the store on the next beat (reconcile_agents)
                log.warning("could not apply %s's state from node %s: %s", msg.get("agent"), msg.get("node"), e)

    # ---- agents busy on this node, relayed
    def on_ami_event(self, ev) -> None:
        """DeviceStateChange of an agent's phone here -> the other nodes (only the phone's own state,
        never the hint, which includes what they told us)."""
        if not self.clustered or ev.get("Event") != "DeviceStateChange":
            return
        found = rules.relayed_state(str(ev.get("Device", "")), str(ev.get("State", "")))
        if found is None or found[0] not in self.agents.agents:
            return
        agent_id, state = found
        before, self.phone_states[agent_id] = self.phone_states.get(agent_id), str(ev.get("State", ""))
        if agent_id in self.pending_free:
            if state == "NOT_INUSE":
                return                      # still free, still in wrap-up
            self.pending_free.pop(agent_id).cancel()
        if self.phones.get(agent_id) == state:
            return
        if self.wrapup > 0 and rules.wrap_up_follows(before, str(ev.get("State", ""))):
            self.pending_free[agent_id] = asyncio.get_running_loop().call_later(
                self.wrapup, self._relay, agent_id, state)
            return
        self._relay(agent_id, state)

    def _relay(self, agent_id: str, state: str) -> None:
        self.pending_free.pop(agent_id, None)
        self.phones[agent_id] = state
        log.debug("%s's phone is %s here: telling the other nodes", agent_id, state)
        asyncio.get_running_loop().create_task(self.bus.publish(
            "devstate", {"type": "device", "node": self.name, "agent": agent_id, "state": state}))

    def on_devstate_message(self, msg: dict) -> None:
        if msg.get("node") == self.name:
            return
        loop = asyncio.get_running_loop()
        if msg.get("type") == "hello":      # a node (re)started: tell it who is busy here
            for agent_id, state in self.phones.items():
                if state == "INUSE":
                    loop.create_task(self.bus.publish("devstate", {"type": "device", "node": self.name,
                                                                   "agent": agent_id, "state": state}))
        elif msg.get("type") == "device" and msg.get("agent") in self.agents.agents \
                and msg.get("state") in ("INUSE", "NOT_INUSE"):
            loop.create_task(self._set_custom(msg["agent"], msg["state"]))

    async def _set_custom(self, agent_id: str, state: str) -> None:
        try:
            await self.ami.action({"Action": "Setvar", "Variable": f"DEVICE_STATE({rules.custom_device(agent_id)})",
                                   "Value": state}, timeout=5)
            self.relayed_in += 1
            log.debug("%s set to %s (from another node)", rules.custom_device(agent_id), state)
        except Exception as e:
            log.warning("could not set %s to %s: %s", rules.custom_device(agent_id), state, e)

    # ---- the loop
    async def run(self) -> None:
        self.started = time.time()
        while True:
            try:
                await self.beat()
            except Exception as e:    # Redis or the database away: try again next beat
                log.warning("node heartbeat failed: %s", e)
            await asyncio.sleep(self.interval)
