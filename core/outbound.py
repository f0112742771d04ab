"""A call the platform places itself (a voicemail callback, a follow-up survey): what is dialled and
where it lands in the dialplan. Schedulers describe the call; callcenter/originate.py places every
one of them the same way."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Outbound:
    purpose: str                 # "callback" | "follow_up": logs and metrics
    ref: str                     # the task it serves, for the log
    number: str                  # the caller's number that will ring
    channel: str                 # Local/<id>@hotline-cb-hold, or PJSIP/<number>@<trunk>
    context: str                 # where the answered channel continues in the dialplan
    exten: str
    timeout_seconds: float       # how long the first leg may ring
    variables: dict[str, str] = field(default_factory=dict)   # names as the dialplan reads them
    caller_id: str = ""          # what the caller sees: "12348" <city DID>

    def action(self) -> dict:
        """The AMI Originate action (asynchronous: Asterisk reports the result in events)."""
        act = {"Action": "Originate", "Channel": self.channel, "Context": self.context, "Exten": self.exten,
               "Priority": "1", "Async": "true", "Timeout": str(int(self.timeout_seconds * 1000)),
               "Variable": [f"{k}={v}" for k, v in self.variables.items()]}
        if self.caller_id:
            act["CallerID"] = self.caller_id
        return act


class OutboundRefused(Exception):
    """The number is outside the numbering plan (core/numbering.py): the call was not placed, and
    the refusal is in the audit log. The scheduler marks its task failed."""
