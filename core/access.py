"""Who may do what: pure rules over a principal and the thing acted on (no I/O).

Roles: an agent acts on their own desk and their own calls; a supervisor on the agents and calls
of their cities; the command center on everything; a wall display (``wallboard``) only reads the
wallboard, with numbers masked. The HTTP layer asks these functions and answers 403 (and audits the
refusal) when they say no.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.config import HotlineConfig

Role = Literal["agent", "supervisor", "command", "wallboard"]
# all a wall display may reach (method, path or path prefix ending in "/"): checked before any handler,
# so a new endpoint is closed to it until listed here
WALLBOARD_ROUTES = frozenset({("GET", "/api/wallboard"), ("GET", "/api/wallboard/"), ("GET", "/api/me"),
                              ("GET", "/ws"), ("POST", "/api/logout")})


@dataclass(frozen=True)
class Principal:
    user_id: str
    name: str
    role: Role
    cities: frozenset[str]          # empty for the command center: every city
    agent_id: str | None = None     # an agent's own desk

    @property
    def all_cities(self) -> bool:
        return self.role == "command" or (self.role == "wallboard" and not self.cities)

    @property
    def masked(self) -> bool:
        """Sees callers' numbers masked (a wall display is read from across a room)."""
        return self.role == "wallboard"

    def as_dict(self) -> dict:
        return {"id": self.user_id, "name": self.name, "role": self.role, "cities": sorted(self.cities),
                "agent_id": self.agent_id}


def principals(cfg: HotlineConfig) -> dict[str, Principal]:
    """Every desk login the config defines: agents and supervisors (interpreters have no desk)."""
    out = {a.id: Principal(a.id, a.name, "agent", frozenset(a.queues), a.id) for a in cfg.agents}
    for s in cfg.supervisors:
        out[s.id] = Principal(s.id, s.name, s.role, frozenset(s.cities))
    for w in cfg.wallboards:
        out[w.id] = Principal(w.id, w.name, "wallboard", frozenset(w.cities))
    return out


def may_reach(p: Principal, method: str, path: str) -> bool:
    """Whether this principal's role may call this route at all (handlers check the rest). Fail-closed
    for wall displays: only WALLBOARD_ROUTES."""
    if p.role != "wallboard":
        return True
    method = "GET" if method == "HEAD" else method
    if (method, path) in WALLBOARD_ROUTES:
        return True
    parent = path.rsplit("/", 1)[0] + "/"
    return (method, parent) in WALLBOARD_ROUTES and path.count("/") == parent.count("/")


# the operator's own tools (CLI, demo, tests) authenticate with the local service token
SERVICE = Principal("hotline-service", "本机运维 local operator", "command", frozenset())


def sees_city(p: Principal, city: str) -> bool:
    return p.all_cities or city in p.cities


def may_manage_agent(p: Principal, agent_id: str, agent_cities: set[str] | frozenset[str]) -> bool:
    """Log in/out, ready, pause: oneself, or a supervisor for an agent homed in one of their cities."""
    if p.role == "agent":
        return p.agent_id == agent_id
    return p.all_cities or bool(p.cities & set(agent_cities))


def may_handle_call(p: Principal, call_agent: str, call_city: str) -> bool:
    """Hang up, hold, mute, transfer, write notes: the agent on the call, or a supervisor of its city."""
    if p.role == "agent":
        return bool(call_agent) and p.agent_id == call_agent
    return sees_city(p, call_city)


def may_view_call(p: Principal, call_agent: str, call_city: str) -> bool:
    return may_handle_call(p, call_agent, call_city)


def may_supervise_call(p: Principal, call_city: str) -> bool:
    """Listen, whisper, barge: supervisors within their cities, the command center anywhere."""
    return p.role != "agent" and sees_city(p, call_city)


def mask_number(number: str) -> str:
    """138****0000: enough to recognise a repeat caller on a wallboard, not to dial them. At least
    four digits are hidden, however short the number (a 7-digit local number was shown whole)."""
    if len(number) <= 6:
        return "*" * len(number)
    shown = len(number) - max(4, len(number) - 7)
    tail = min(4, (shown + 1) // 2)
    head = shown - tail
    return number[:head] + "*" * (len(number) - shown) + number[-tail:]


def search_scope(p: Principal) -> tuple[set[str] | None, str | None]:
    """What a full-text search may return: (cities or None for all, agent or None for anyone's).
    An agent finds only the calls they handled; a supervisor their cities; the command center all."""
    if p.role == "agent":
        return set(p.cities), p.agent_id or "-"
    return (None if p.all_cities else set(p.cities)), None


def may_see_alerts(p: Principal, city: str) -> bool:
    """Keyword and operational alerts are for supervisors and the command center."""
    return p.role != "agent" and sees_city(p, city)


def may_manage_prompts(p: Principal) -> bool:
    """IVR prompts (list, listen, upload): supervisors and the command center, not agents."""
    return p.role in ("supervisor", "command")
