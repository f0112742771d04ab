"""Agent lifecycle on app_queue: login (QueueAdd, paused), ready/pause (QueuePause), logout.

Asterisk is the source of truth for membership: after a controller restart the view is rebuilt
from QueueStatus, so it cannot drift. A pause or ready applies to every queue the agent is in.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping

from core.config import HotlineConfig
from core.workflow import memberships

log = logging.getLogger("hotline.agents")


class AgentError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class AgentView:
    id: str
    name: str
    queues: set[str] = field(default_factory=set)
    paused: bool = True
    pause_reason: str = ""
    in_call: bool = False
    device: str = "unknown"
    home: list[str] = field(default_factory=list)
    paused_in: dict[str, bool] = field(default_factory=dict)   # per queue, to catch divergence
    last_call: float = 0.0        # app_queue's LastCall (shared across queues: shared_lastcall)
    wrapup: float = 0.0           # seconds of wrap-up app_queue grants after each call

    @property
    def wrapup_until(self) -> float:
        return self.last_call + self.wrapup if self.last_call else 0.0

    def state_at(self, now: float) -> str:
        if not self.queues:
            return "logged_out"
        if self.in_call or self.device in ("in_use", "busy", "ringing", "ringinuse", "on_hold"):
            return "on_call"
        if self.paused:
            return "paused"
        # app_queue offers no call until LastCall + wrapuptime: show it, it is real
        return "wrap_up" if now < self.wrapup_until else "ready"

    @property
    def state(self) -> str:
        return self.state_at(time.time())

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "state": self.state, "queues": sorted(self.queues),
                "home": self.home, "paused": self.paused, "pause_reason": self.pause_reason, "device": self.device,
                "wrapup_until": self.wrapup_until or None}


# app_queue's numeric device states (QueueMember Status)
DEVICE_STATES = {"0": "unknown", "1": "not_in_use", "2": "in_use", "3": "busy", "4": "invalid",
                 "5": "unavailable", "6": "ringing", "7": "ringinuse", "8": "on_hold"}
# the same states by name, as DeviceStateChange gives them
DEVICE_STATE_NAMES = {"UNKNOWN": "unknown", "NOT_INUSE": "not_in_use", "INUSE": "in_use", "BUSY": "busy",
                      "INVALID": "invalid", "UNAVAILABLE": "unavailable", "RINGING": "ringing",
                      "RINGINUSE": "ringinuse", "ONHOLD": "on_hold"}


class AgentService:
    def __init__(self, cfg: HotlineConfig, ami, store):
        self.cfg, self.ami, self.store = cfg, ami, store
        self.agents = self._fresh()
        self.listeners: list[Callable[[dict], None]] = []   # state changes, for the desk's WebSocket
        self._aligning: set[str] = set()
        # agents with a QueuePause of ours on its way: its events may come before its response (the
        # events have an AMI session of their own), and a half-applied pause is then ours, not a stray
        self._pausing: dict[str, int] = {}
        # several nodes (callcenter/cluster.py): where app_queue reads a member's state, and who hears of
        # a change made here (the shared store and the other nodes); one node: the phone, nobody
        self.state_interface: Callable[[str], str] = self.interface
        self.on_change: list[Callable[[AgentView], Awaitable[None]]] = []
        # where a phone's state is read: "devstate" = its DeviceStateChange (one event per change; manager.conf
        # then filters QueueMemberStatus, which repeats it per queue); "queue" = QueueMemberStatus, with
        # several nodes, where app_queue's state of a member includes what the other nodes relay
        self.device_from = "devstate"

    def _fresh(self) -> dict[str, AgentView]:
        wrapup = float(self.cfg.system.queues.wrapup_seconds)
        return {a.id: AgentView(a.id, a.name, home=list(a.queues), wrapup=wrapup) for a in self.cfg.agents}

    def interface(self, agent_id: str) -> str:
        return f"PJSIP/{agent_id}"

    def _get(self, agent_id: str) -> AgentView:
        if agent_id not in self.agents:
            raise AgentError(f"unknown agent {agent_id!r}", 404)
        return self.agents[agent_id]

    async def _ok(self, action: dict, tolerate: tuple[str, ...] = ()) -> None:
        resp = await self.ami.action(action)
        if resp.get("Response") != "Success":
            msg = resp.get("Message", "")
            if any(t in msg for t in tolerate):
                return
            raise AgentError(f"{action['Action']} failed: {msg}", 502)

    async def _changed(self, agent: AgentView) -> None:
        for hook in list(self.on_change):
            try:
                await hook(agent)
            except Exception as e:     # Asterisk has the change; the other nodes catch up on their start
                log.warning("could not share %s's state with the other nodes: %s", agent.id, e)

    async def apply_shared(self, agent_id: str, logged_in: bool, paused: bool, reason: str) -> bool:
        """Make this node's members match a state another node set (no log entry, no echo). True if
        anything had to change."""
        agent = self.agents.get(agent_id)
        if agent is None:
            return False
        if not logged_in:
            if not agent.queues:
                return False
            await self._logout(agent)
            return True
        if not agent.queues or set(memberships(agent_id, self.cfg)) - agent.queues:   # out, or drifted
            await self._login(agent, ready=not paused, reason=reason)
            return True
        if agent.paused == paused and (agent.pause_reason == reason or not paused):
            return False
        await self._set_paused(agent, paused, reason if paused else "", settle=False)
        self._notify(agent)
        return True

    async def login(self, agent_id: str, ready: bool = False) -> AgentView:
        agent = self._get(agent_id)
        await self._login(agent, ready, "" if ready else "login")
        await self.store.agent_event(agent_id, "login")
        if ready:
            await self.store.agent_event(agent_id, "ready")
        await self._changed(agent)
        return agent

    async def _login(self, agent: AgentView, ready: bool, reason: str) -> None:
        agent_id = agent.id
        iface = self.interface(agent_id)
        # home city, skill (language, female, specialty), neighbour, language-pool queues
        for q, penalty in memberships(agent_id, self.cfg).items():
            # already a member (e.g. persistent from before a restart): keep it, fix the pause below.
            # Added in the final pause state: a QueueMemberAdded event that arrives after the QueuePause
            # below must not disagree with it (apply_event would "align" the agent to the stale state).
            await self._ok({"Action": "QueueAdd", "Queue": q, "Interface": iface, "MemberName": agent_id,
                            "StateInterface": self.state_interface(agent_id), "Penalty": str(penalty),
                            "Paused": "false" if ready else "true", "Reason": "" if ready else reason},
                           tolerate=("Already there",))
            agent.queues.add(q)
        await self._set_paused(agent, not ready, "" if ready else reason)
        self._notify(agent)

    async def ready(self, agent_id: str) -> AgentView:
        agent = self._get(agent_id)
        if not agent.queues:
            raise AgentError(f"{agent_id} is not logged in", 409)
        await self._set_paused(agent, False, "")
        self._notify(agent)
        await self.store.agent_event(agent_id, "ready")
        await self._changed(agent)
        return agent

    async def pause(self, agent_id: str, reason: str) -> AgentView:
        agent = self._get(agent_id)
        if not agent.queues:
            raise AgentError(f"{agent_id} is not logged in", 409)
        await self._set_paused(agent, True, reason)
        self._notify(agent)
        await self.store.agent_event(agent_id, "pause", reason)
        await self._changed(agent)
        return agent

    async def logout(self, agent_id: str) -> AgentView:
        agent = self._get(agent_id)
        await self._logout(agent)
        await self.store.agent_event(agent_id, "logout")
        await self._changed(agent)
        return agent

    async def _logout(self, agent: AgentView) -> None:
        agent_id = agent.id
        for q in sorted(agent.queues | set(memberships(agent_id, self.cfg))):
            await self._ok({"Action": "QueueRemove", "Queue": q, "Interface": self.interface(agent_id)},
                           tolerate=("Not there", "Unable to remove interface"))
        agent.queues.clear()
        agent.paused, agent.pause_reason = True, ""
        agent.paused_in.clear()
        self._notify(agent)

    async def _set_paused(self, agent: AgentView, paused: bool, reason: str, settle: bool = True) -> None:
        # no Queue header: the pause applies to every queue the member is in
        self._pausing[agent.id] = self._pausing.get(agent.id, 0) + 1
        try:
            await self._ok({"Action": "QueuePause", "Interface": self.interface(agent.id),
                            "Paused": "true" if paused else "false", "Reason": reason})
            if settle:
                # the action's events come on the other AMI session and may trail its response: until they
                # are handled this is still our change, so a late one is not taken for a half-applied pause
                # to align (a ready's late event once undid the meal pause that followed it in one queue)
                await self._events_caught_up()
        finally:
            if self._pausing[agent.id] == 1:
                del self._pausing[agent.id]
            else:
                self._pausing[agent.id] -= 1
        agent.paused, agent.pause_reason = paused, reason
        agent.paused_in = {q: paused for q in agent.queues}

    async def _events_caught_up(self) -> None:
        barrier = getattr(self.ami, "barrier", None)
        if barrier is None:
            return
        try:
            await barrier(timeout=2.0)
        except Exception as e:    # a backlog or a lost session: the view then settles from the events
            log.info("pause: AMI events not caught up (%r); going on", e)

    # ---- view maintenance from AMI
    async def rebuild(self) -> None:
        """Replace our view with Asterisk's (QueueStatus)."""
        members = await self.ami.list_action({"Action": "QueueStatus"})
        fresh = self._fresh()
        for m in members:
            if m.get("Event") == "QueueMember":
                self._apply_member(fresh, m)
        self.agents = fresh
        for agent in fresh.values():
            if len(set(agent.paused_in.values())) > 1:
                # half paused after a crash mid-change: paused everywhere is the safe side
                log.warning("%s was paused in only some queues; pausing in all", agent.id)
                await self._set_paused(agent, True, agent.pause_reason or "other", settle=False)
            self._notify(agent)

    def apply_event(self, ev: Mapping[str, str]) -> bool:
        name = ev.get("Event", "")
        changed = False
        agent = self.agents.get(_member_id(ev))
        if name in ("QueueMemberAdded", "QueueMemberStatus", "QueueMemberPause"):
            changed = self._apply_member(self.agents, ev)
        elif name == "QueueMemberRemoved" and agent:
            agent.queues.discard(ev.get("Queue", ""))
            agent.paused_in.pop(ev.get("Queue", ""), None)
            changed = True
        elif name == "DeviceStateChange" and self.device_from == "devstate":
            device = ev.get("Device", "")
            agent = self.agents.get(device[6:]) if device.startswith("PJSIP/") else None
            state = DEVICE_STATE_NAMES.get(str(ev.get("State", "")).upper(), "unknown")
            if agent and agent.device != state:
                agent.device, changed = state, True
        elif name == "AgentConnect" and agent and not agent.in_call:
            agent.in_call, changed = True, True
        elif name == "AgentComplete" and agent:
            # the call just ended: app_queue's wrap-up starts now (LastCall follows in later events)
            try:
                agent.last_call = max(agent.last_call, float(ev.get("Timestamp") or time.time()))
            except ValueError:
                agent.last_call = time.time()
            agent.in_call = False
            changed = True
        if changed and agent:
            if (name in ("QueueMemberPause", "QueueMemberAdded") and len(set(agent.paused_in.values())) > 1
                    and agent.id not in self._pausing):
                self._align_later(agent, ev)
            self._notify(agent)
        return changed

    def _align_later(self, agent: AgentView, ev: Mapping[str, str]) -> None:
        """A pause (or ready) that reached only some queues (a phone's feature code, the Asterisk CLI,
        a member added while paused elsewhere) is made to apply everywhere: the newest one wins."""
        if agent.id in self._aligning:
            return
        paused = ev.get("Paused") == "1"
        reason = ev.get("PausedReason", "") if paused else ""

        async def align():
            try:
                await self._set_paused(agent, paused, reason)
                log.info("%s: %s in %s only; applied to all its queues", agent.id,
                         "paused" if paused else "ready", ev.get("Queue"))
            except Exception as e:
                log.warning("could not align %s's pause across queues: %s", agent.id, e)
            finally:
                self._aligning.discard(agent.id)
        self._aligning.add(agent.id)
        asyncio.get_running_loop().create_task(align())

    def _notify(self, agent: AgentView) -> None:
        view = agent.as_dict()
        for listener in list(self.listeners):
            try:
                listener(view)
            except Exception:
                log.exception("agent listener failed")
        # wrap-up ends without an event from Asterisk: tell the desk when it does
        left = agent.wrapup_until - time.time()
        if view["state"] == "wrap_up" and left > 0:
            asyncio.get_running_loop().call_later(left + 0.05, self._notify_if_changed, agent, "wrap_up")

    def _notify_if_changed(self, agent: AgentView, was: str) -> None:
        if agent.state != was:
            self._notify(agent)

    @staticmethod
    def _apply_member(view: dict[str, AgentView], ev: Mapping[str, str]) -> bool:
        agent = view.get(_member_id(ev))
        if agent is None:
            return False
        if ev.get("Queue"):
            agent.queues.add(ev["Queue"])
        if "Paused" in ev:
            agent.paused = ev.get("Paused") == "1"
            agent.pause_reason = ev.get("PausedReason", "") if agent.paused else ""
            if ev.get("Queue"):
                agent.paused_in[ev["Queue"]] = agent.paused
        if "InCall" in ev:
            agent.in_call = ev.get("InCall") == "1"
        if "Status" in ev:
            agent.device = DEVICE_STATES.get(ev.get("Status", ""), "unknown")
        try:
            agent.last_call = max(agent.last_call, float(ev.get("LastCall") or 0))
            agent.wrapup = float(ev.get("Wrapuptime") or 0) or agent.wrapup
        except ValueError:
            pass
        return True


def _member_id(ev: Mapping[str, str]) -> str:
    iface = ev.get("Interface") or ev.get("Location") or ev.get("StateInterface") or ""
    return iface.split("/", 1)[-1] if iface else ev.get("MemberName", "")
