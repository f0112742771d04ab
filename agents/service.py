"""Agent lifecycle on app_queue: login (QueueAdd, paused), ready/pause (QueuePause), logout.

Asterisk is the source of truth for membership: after a controller restart the view is rebuilt
from QueueStatus, so it cannot drift. A pause or ready applies to every queue the agent is in.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Mapping

from callcenter.config import HotlineConfig
from callcenter.workflow import memberships

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

    @property
    def state(self) -> str:
        if not self.queues:
            return "logged_out"
        if self.in_call:
            return "on_call"
        return "paused" if self.paused else "ready"

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "state": self.state, "queues": sorted(self.queues),
                "home": self.home,
                "paused": self.paused, "pause_reason": self.pause_reason, "device": self.device}


# app_queue's numeric device states (QueueMember Status)
DEVICE_STATES = {"0": "unknown", "1": "not_in_use", "2": "in_use", "3": "busy", "4": "invalid",
                 "5": "unavailable", "6": "ringing", "7": "ringinuse", "8": "on_hold"}


class AgentService:
    def __init__(self, cfg: HotlineConfig, ami, store):
        self.cfg, self.ami, self.store = cfg, ami, store
        self.agents = {a.id: AgentView(a.id, a.name, home=list(a.queues)) for a in cfg.agents}

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

    async def login(self, agent_id: str, ready: bool = False) -> AgentView:
        agent = self._get(agent_id)
        iface = self.interface(agent_id)
        # home city, skill (language, female, specialty), neighbour, language-pool queues
        for q, penalty in memberships(agent_id, self.cfg).items():
            # already a member (e.g. persistent from before a restart): keep it, fix the pause below
            await self._ok({"Action": "QueueAdd", "Queue": q, "Interface": iface, "MemberName": agent_id,
                            "StateInterface": iface, "Penalty": str(penalty), "Paused": "true", "Reason": "login"},
                           tolerate=("Already there",))
            agent.queues.add(q)
        await self._set_paused(agent, not ready, "" if ready else "login")
        await self.store.agent_event(agent_id, "login")
        if ready:
            await self.store.agent_event(agent_id, "ready")
        return agent

    async def ready(self, agent_id: str) -> AgentView:
        agent = self._get(agent_id)
        if not agent.queues:
            raise AgentError(f"{agent_id} is not logged in", 409)
        await self._set_paused(agent, False, "")
        await self.store.agent_event(agent_id, "ready")
        return agent

    async def pause(self, agent_id: str, reason: str) -> AgentView:
        agent = self._get(agent_id)
        if not agent.queues:
            raise AgentError(f"{agent_id} is not logged in", 409)
        await self._set_paused(agent, True, reason)
        await self.store.agent_event(agent_id, "pause", reason)
        return agent

    async def logout(self, agent_id: str) -> AgentView:
        agent = self._get(agent_id)
        for q in sorted(agent.queues | set(memberships(agent_id, self.cfg))):
            await self._ok({"Action": "QueueRemove", "Queue": q, "Interface": self.interface(agent_id)},
                           tolerate=("Not there", "Unable to remove interface"))
        agent.queues.clear()
        agent.paused, agent.pause_reason = True, ""
        await self.store.agent_event(agent_id, "logout")
        return agent

    async def _set_paused(self, agent: AgentView, paused: bool, reason: str) -> None:
        # no Queue header: the pause applies to every queue the member is in
        await self._ok({"Action": "QueuePause", "Interface": self.interface(agent.id),
                        "Paused": "true" if paused else "false", "Reason": reason})
        agent.paused, agent.pause_reason = paused, reason

    # ---- view maintenance from AMI
    async def rebuild(self) -> None:
        """Replace our view with Asterisk's (QueueStatus)."""
        members = await self.ami.list_action({"Action": "QueueStatus"})
        fresh = {a.id: AgentView(a.id, a.name, home=list(a.queues)) for a in self.cfg.agents}
        for m in members:
            if m.get("Event") == "QueueMember":
                self._apply_member(fresh, m)
        self.agents = fresh

    def apply_event(self, ev: Mapping[str, str]) -> bool:
        name = ev.get("Event", "")
        if name in ("QueueMemberAdded", "QueueMemberStatus", "QueueMemberPause"):
            return self._apply_member(self.agents, ev)
        if name == "QueueMemberRemoved":
            agent = self.agents.get(_member_id(ev))
            if agent:
                agent.queues.discard(ev.get("Queue", ""))
                return True
        return False

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
        if "InCall" in ev:
            agent.in_call = ev.get("InCall") == "1"
        if "Status" in ev:
            agent.device = DEVICE_STATES.get(ev.get("Status", ""), "unknown")
        return True


def _member_id(ev: Mapping[str, str]) -> str:
    iface = ev.get("Interface") or ev.get("Location") or ev.get("StateInterface") or ""
    return iface.split("/", 1)[-1] if iface else ev.get("MemberName", "")
