"""What a ticket's creation, change or escalation must also send, written in the same transaction
(TicketStore effects): the partner that handed the ticket to us hears of its progress; on a city
node, the command center gets the event."""
from __future__ import annotations

from core.config import HotlineConfig
from store.interop import status_to_partner, ticket_event


def ticket_effects(cfg: HotlineConfig) -> list:
    node = cfg.system.node.name

    async def partner_status(s, ticket, kind: str) -> None:
        if kind == "updated":
            await status_to_partner(s, ticket, node)

    async def to_command_center(s, ticket, kind: str) -> None:
        await ticket_event(s, ticket, kind, node)

    effects = [partner_status]
    if cfg.system.federation.mode == "city":
        effects.append(to_command_center)
    return effects
