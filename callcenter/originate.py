"""The one path by which the controller places calls: voicemail callbacks (agents/callbacks.py) and
follow-up surveys (backoffice/followups.py) describe an Outbound call and hand it here."""
from __future__ import annotations

import logging

from core.outbound import Outbound

log = logging.getLogger("hotline.originate")


class Originator:
    def __init__(self, ami):
        self.ami = ami

    async def __call__(self, call: Outbound) -> bool:
        """True once Asterisk accepted the call; it then runs in the dialplan, not here."""
        resp = await self.ami.action(call.action())
        if resp.get("Response") != "Success":
            log.warning("%s %s not started: %s", call.purpose, call.ref, resp.get("Message"))
            return False
        log.info("%s %s: calling %s", call.purpose, call.ref, call.number)
        return True
