"""Agent events: the log of each desk's login, ready, pause (with its reason) and logout."""
from __future__ import annotations

from sqlalchemy import select

from store.engine import Database, row_to_dict, utcnow
from store.models import AgentEvent, AgentState


class AgentEventStore:
    def __init__(self, db: Database):
        self.session = db.session

    async def agent_event(self, agent_id: str, action: str, reason: str = "") -> None:
        async with self.session.begin() as s:
            s.add(AgentEvent(agent_id=agent_id, action=action, reason=reason, at=utcnow()))


class AgentStateStore:
    """Agents' shared state (cluster): what every node's controller makes its own Asterisk's members
    match, on start and on every change another node announces (callcenter/cluster.py)."""

    def __init__(self, db: Database, node: str = ""):
        self.session = db.session
        self.node = node

    async def set_state(self, agent_id: str, *, logged_in: bool, paused: bool, reason: str) -> dict:
        async with self.session.begin() as s:
            row = await s.get(AgentState, agent_id, with_for_update=True)
            if row is None:
                row = AgentState(agent_id=agent_id)
                s.add(row)
            row.logged_in, row.paused, row.reason = logged_in, paused, reason if paused else ""
            row.node, row.updated_at = self.node, utcnow()
            return row_to_dict(row)

    async def states(self) -> dict[str, dict]:
        async with self.session() as s:
            return {r.agent_id: row_to_dict(r) for r in (await s.execute(select(AgentState))).scalars().all()}
