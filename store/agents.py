"""Agent events: the log of each desk's login, ready, pause (with its reason) and logout."""
from __future__ import annotations

from store.engine import Database, utcnow
from store.models import AgentEvent


class AgentEventStore:
    def __init__(self, db: Database):
        self.session = db.session

    async def agent_event(self, agent_id: str, action: str, reason: str = "") -> None:
        async with self.session.begin() as s:
            s.add(AgentEvent(agent_id=agent_id, action=action, reason=reason, at=utcnow()))
