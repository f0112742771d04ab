"""extensions.conf, cluster mode only: one hint per agent combining the agent's phone on this node with
the custom device state the other nodes' controllers relay (Custom:agent-<id>). Queue members read it as
their state interface (``hint:<agent>@hotline-agent-state``), so a node never offers a call to an agent
who is busy on another node; the phone's own state holds without any Python process."""
from __future__ import annotations

from core.cluster import custom_device, hint_context
from core.config import HotlineConfig


def agent_state_context(cfg: HotlineConfig) -> str:
    if not cfg.system.cluster.nodes:
        return ""
    lines = [f"\n[{hint_context()}]\n; hints only: nothing dials into this context\n"]
    for a in cfg.agents:
        lines.append(f"exten => {a.id},hint,PJSIP/{a.id}&{custom_device(a.id)}\n")
    return "".join(lines)
