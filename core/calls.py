"""A call as the platform knows it (CallState): what the record writer stores, the desk shows and
the figures are computed from. Built from AMI events by callcenter/tracker.py."""
from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass
class CallState:
    call_id: str                        # Asterisk linkedid
    channel: str = ""
    dialed_number: str = ""
    caller_number: str = ""
    city: str = ""
    area_code: str = ""
    language: str = ""
    ivr_path: str = ""
    service: str = ""
    queue: str = ""
    overflow: str = ""                  # queues left and why: "leshan:TIMEOUT/leshan-near:EMPTY"
    green: str = ""                     # green-channel category, "" for none
    after_hours: bool = False
    agent: str = ""
    agent_channel: str = ""             # the agent's leg (what hold, transfer and ChanSpy act on)
    ringing: str = ""                   # agent being offered the call right now (screen-pop before answer)
    transfers: str = ""                 # "blind:agent1001>queue-leshan/attended:agent1001>agent1002"
    emergency: str = ""                 # the 110/120 leg: "failed:110:BUSY" (state:number[:reason]), for the desk
    recording: str = ""
    voicemail: str = ""                 # message file left in voicemail, if any
    callback_of: str = ""               # for a callback leg: the call that asked for it
    status: str = "ivr"                 # ivr -> queued -> talking -> ended
    outcome: str = ""                   # answered, abandoned, voicemail, unknown_number, ivr_hangup, ...
    hangup_cause: int | None = None
    hangup_cause_text: str = ""
    started_at: float | None = None
    queued_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    events: int = field(default=0, compare=False)

    @property
    def wait_seconds(self) -> float | None:
        if self.queued_at is None:
            return None
        end = self.answered_at or self.ended_at
        return round(end - self.queued_at, 3) if end else None

    @property
    def talk_seconds(self) -> float | None:
        if self.answered_at is None or self.ended_at is None:
            return None
        return round(self.ended_at - self.answered_at, 3)

    def as_dict(self) -> dict:
        # every field is a scalar: a flat copy (dataclasses.asdict deep-copies, and this runs per event)
        d = {name: getattr(self, name) for name in _FIELDS}
        d["wait_seconds"], d["talk_seconds"] = self.wait_seconds, self.talk_seconds
        return d


_FIELDS = tuple(f.name for f in fields(CallState) if f.name != "events")


_LATEST = 253402300799.0


def usable_epoch(v) -> float | None:
    """A usable Unix time, else None. nan, inf, 1e400 or a year past 9999 would reach the record
    writer as a datetime it cannot build, and stall it (it retries a failed write forever)."""
    try:
        t = float(v)
    except (TypeError, ValueError):
        return None
    return t if 0 < t <= _LATEST else None
