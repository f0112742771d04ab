"""Several Asterisk nodes as one call center: pure rules (no I/O). Which nodes are healthy from
their heartbeats, which node serves a city now, and what a device state relayed between nodes means.
The controllers' side is callcenter/cluster.py; the reasoning is in docs/scale-out.md "Shared state across nodes"."""
from __future__ import annotations

from dataclasses import dataclass

from core.config.system import Cluster

HEARTBEAT_SECONDS = 2.0     # how often a controller says it is alive
LAPSE_SECONDS = 8.0         # no heartbeat for this long: the node is stale (its controller is gone)
LEASE_SECONDS = 15.0        # a claim on a callback outlives a few missed renewals, not a dead node by much
NODE_LOST = "node_lost"     # outcome of a call that was in progress on a node that died


@dataclass(frozen=True)
class NodeHealth:
    name: str
    health: str                 # up | down | stale
    last_seen: float | None     # epoch of the last heartbeat
    cities: tuple[str, ...]     # the cities this node serves first
    serving: tuple[str, ...]    # the cities it serves now (its own, and those of nodes that are not up)
    this: bool = False

    def as_dict(self) -> dict:
        return {"name": self.name, "health": self.health, "last_seen": self.last_seen, "cities": list(self.cities),
                "serving": list(self.serving), "this": self.this}


def health(beat: dict | None, now: float, lapse: float = LAPSE_SECONDS) -> str:
    """up: a fresh heartbeat from a controller whose Asterisk answers; down: a fresh heartbeat saying its
    Asterisk is away, or never a heartbeat; stale: the controller has been silent for ``lapse``."""
    if not beat or not isinstance(beat.get("at"), (int, float)):
        return "down"
    if now - beat["at"] > lapse:
        return "stale"
    return "up" if beat.get("ami") else "down"


def serving(cluster: Cluster, healths: dict[str, str]) -> dict[str, str]:
    """City -> the node that serves it now: its first node while that is up, else the first node up in
    the configured order (each node is the others' standby). A city no node is up for keeps its first."""
    order = [n.name for n in cluster.nodes]
    up = [n for n in order if healths.get(n) == "up"]
    out = {}
    for n in cluster.nodes:
        for city in n.cities:
            out[city] = n.name if healths.get(n.name) == "up" or not up else up[0]
    return out


def nodes_view(cluster: Cluster, beats: dict[str, dict | None], now: float, lapse: float = LAPSE_SECONDS) -> list[NodeHealth]:
    """Every configured node with its health and the cities it serves first and now."""
    healths = {n.name: health(beats.get(n.name), now, lapse) for n in cluster.nodes}
    now_serving = serving(cluster, healths)
    return [NodeHealth(n.name, healths[n.name], (beats.get(n.name) or {}).get("at"), tuple(n.cities),
                       tuple(c for c, by in now_serving.items() if by == n.name), n.name == cluster.node)
            for n in cluster.nodes]


def single_node(name: str, up: bool, now: float, cities: list[str]) -> NodeHealth:
    """No cluster configured: the one node there is, serving every city."""
    return NodeHealth(name, "up" if up else "down", now, tuple(cities), tuple(cities), True)


# the agent's own phone on this node (DeviceStateChange of PJSIP/<agent>) -> the Custom: device state the
# other nodes set: busy or ringing here is "in use" there; idle or unreachable here frees the agent there.
# Only the phone's own state is relayed, never the hint: an echo would keep an agent busy for ever.
RELAYED = {"INUSE": "INUSE", "BUSY": "INUSE", "RINGING": "INUSE", "RINGINUSE": "INUSE", "ONHOLD": "INUSE",
           "NOT_INUSE": "NOT_INUSE", "UNAVAILABLE": "NOT_INUSE", "INVALID": "NOT_INUSE", "UNKNOWN": "NOT_INUSE"}


def custom_device(agent_id: str) -> str:
    """The custom device state other nodes set for an agent busy here; part of the agent's hint."""
    return f"Custom:agent-{agent_id}"


def hint_context() -> str:
    return "hotline-agent-state"


def state_interface(agent_id: str) -> str:
    """A queue member's state in cluster mode: the hint combining the agent's own phone on this node
    with what the other nodes relayed (app_queue reads ``hint:exten@context``)."""
    return f"hint:{agent_id}@{hint_context()}"


TALKING = frozenset({"INUSE", "BUSY", "ONHOLD"})    # a phone in a call (RINGING alone earns no wrap-up)


def wrap_up_follows(before: str | None, now: str) -> bool:
    """The agent's phone was in a call and is free now: app_queue here grants wrap-up from this moment, but
    the other nodes know only the relayed state. They must hear "free" when the wrap-up ends, not now."""
    return (before or "").upper() in TALKING and RELAYED.get(now.upper()) == "NOT_INUSE"


def relayed_state(device: str, state: str) -> tuple[str, str] | None:
    """(agent id, state to set on the other nodes) for a DeviceStateChange of an agent's phone, else None."""
    if not device.startswith("PJSIP/") or "/" in device[6:] or not device[6:]:
        return None
    relayed = RELAYED.get(state.upper())
    return (device[6:], relayed) if relayed else None
