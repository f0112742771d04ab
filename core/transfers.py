"""Transfer targets of the desk and of agents' phones, and their dialplan extensions (pure).

Each target has a named extension (``agent-agent1002``, ``queue-leshan``, ``ext-12345``: what a
phone's REFER carries) and a numeric one, because an attended transfer started over AMI (Atxfer)
is dialled as DTMF digits: agents 6001.., queues 7001.., outside numbers 9 + the number.
Both are generated into [hotline-transfer] from the same config the controller reads.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.config import HotlineConfig
from core.workflow import all_queues

TransferKind = Literal["agent", "queue", "city", "external"]


class TransferError(ValueError):
    pass


@dataclass(frozen=True)
class TransferTarget:
    kind: TransferKind
    value: str

    @property
    def exten(self) -> str:
        prefix = {"agent": "agent", "queue": "queue", "city": "queue", "external": "ext"}[self.kind]
        return f"{prefix}-{self.value}"


def transfer_extensions(cfg: HotlineConfig) -> dict[str, str]:
    """Named extension -> numeric alias, for every target."""
    out = {f"agent-{a.id}": str(6001 + i) for i, a in enumerate(cfg.agents)}
    out |= {f"queue-{q}": str(7001 + i) for i, q in enumerate(all_queues(cfg))}
    out |= {f"ext-{n}": f"9{n}" for n in cfg.routing.transfer_numbers}
    return out


def transfer_target(kind: str, value: str, cfg: HotlineConfig) -> TransferTarget:
    """Validate a transfer target against the config, with a message that says what is allowed."""
    if kind == "agent" and value in {a.id for a in cfg.agents}:
        return TransferTarget("agent", value)
    if kind == "queue" and value in set(all_queues(cfg)):
        return TransferTarget("queue", value)
    if kind == "city" and value in set(cfg.queue_ids):
        return TransferTarget("city", value)
    if kind == "external" and value in cfg.routing.transfer_numbers:
        return TransferTarget("external", value)
    allowed = {"agent": "an agent id", "queue": "a queue id", "city": "a city id",
               "external": "one of " + ", ".join(cfg.routing.transfer_numbers)}
    if kind not in allowed:
        raise TransferError("target.type must be agent, queue, city or external")
    raise TransferError(f"unknown {kind} {value!r}: expected {allowed[kind]}")
