"""The one path by which the controller places calls: voicemail callbacks (agents/callbacks.py) and
follow-up surveys (backoffice/followups.py) describe an Outbound call and hand it here. A number
outside the numbering plan (core/numbering.py) is never dialled: refused, audited, OutboundRefused."""
from __future__ import annotations

import logging

from core.config import HotlineConfig
from core.numbering import may_dial
from core.outbound import Outbound, OutboundRefused

log = logging.getLogger("hotline.originate")


class Originator:
    def __init__(self, ami, cfg: HotlineConfig, audit_log=None):
        """``audit_log``: store/auth.py AuditLog, where refused numbers are written."""
        self.ami, self.cfg, self.audit_log = ami, cfg, audit_log

    async def __call__(self, call: Outbound) -> bool:
        """True once Asterisk accepted the call; it then runs in the dialplan, not here. Raises
        OutboundRefused (after auditing it) for a number the numbering plan does not allow."""
        reason = may_dial(call.number, self.cfg)
        if reason:
            log.warning("%s %s: %r refused, not dialled: %s", call.purpose, call.ref, call.number, reason)
            if self.audit_log is not None:
                await self.audit_log.audit("system", "", f"{call.purpose}_refused", "", call.ref, allowed=False,
                                           detail=f"{call.purpose} task {call.ref}: number {call.number!r} "
                                                  f"is outside the numbering plan: {reason}")
            raise OutboundRefused(reason)
        resp = await self.ami.action(call.action())
        if resp.get("Response") != "Success":
            log.warning("%s %s not started: %s", call.purpose, call.ref, resp.get("Message"))
            return False
        log.info("%s %s: calling %s", call.purpose, call.ref, call.number)
        return True
