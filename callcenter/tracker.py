"""Follow calls through AMI events: a pure state machine, no I/O.

A call is keyed by Asterisk's ``Linkedid`` (the caller's channel uniqueid). ``CallTracker.apply``
takes one event (a mapping of AMI headers) and returns the call it changed, or None. Events that
are malformed or unrelated are ignored, never raised: the AMI stream is untrusted input. The event
and variable names are the dialplan contract's (core/contract.py).
"""
from __future__ import annotations

import collections
import dataclasses
import re
import time
from typing import Mapping

from core.calls import CallState, usable_epoch
from core.contract import TRUNK_CONTEXT, Ev, Var
from core.numbering import caller_id
from core.routing import parse_ivr_path

UNKNOWN_ENDS_KEPT = 1000


class _Headers:
    """An event's headers, each a single string. panoramisk turns a header repeated in one message
    into a list: which value is right cannot be told, so it reads as absent. (A list used to raise
    here, or land in a call's fields, where the record writer cannot store it and retries forever.)"""
    __slots__ = ("ev",)

    def __init__(self, ev: Mapping[str, str]):
        self.ev = ev

    def get(self, key: str, default=None):
        v = self.ev.get(key, default)
        return v if isinstance(v, str) else default


# 9999-12-31 23:59:59 UTC: the last instant a datetime, so a call record, can hold
def _ts(ev: Mapping[str, str], now: float) -> float:
    # manager.conf has timestampevents=yes: Asterisk's own clock, immune to our backlog
    return usable_epoch(ev.get("Timestamp")) or now


def _agent_from(value: str) -> str:
    """'PJSIP/agent1001' or 'PJSIP/agent1001-0000002a' -> 'agent1001'."""
    v = value.split("/", 1)[-1]
    head, sep, tail = v.rpartition("-")
    return head if sep and len(tail) == 8 and all(c in "0123456789abcdef" for c in tail) else v


class CallTracker:
    def __init__(self, clock=time.time, aliases: Mapping[str, str] | None = None):
        self.aliases = dict(aliases or {})   # numeric transfer alias -> named target ("912345" -> "ext-12345")
        self.calls: dict[str, CallState] = {}
        self.bridges: dict[str, set[str]] = {}   # bridge id -> channels in it (hotline calls' channels)
        self.clock = clock
        # the Hangup of a call we did not know yet (a restart's resynchronisation lists a channel, then
        # the call ends before it is adopted): kept for adopt(), oldest dropped first
        self._unknown_ends: collections.OrderedDict[str, Mapping[str, str]] = collections.OrderedDict()

    def live(self) -> list[CallState]:
        return [c for c in self.calls.values() if c.status != "ended"]

    def forget(self, call_id: str) -> None:
        self.calls.pop(call_id, None)

    def unlisted(self, listed: set[str], suspects: dict[str, float], now: float) -> tuple[dict[str, float], dict[str, float]]:
        """Live calls Asterisk's channel listing has nothing of: ``listed`` holds every listed channel's
        Uniqueid and Linkedid (the caller's channel is the call's id; a bridge merged into an older call's
        takes that call's Linkedid, so both count). Absent once makes a call a suspect, with the time of
        that listing: its Hangup may still be on its way to us. Returns (absent again: {call id: first
        missed}, the suspects now)."""
        absent = {c.call_id for c in self.live() if c.call_id not in listed}
        again = {i: suspects[i] for i in absent if i in suspects}
        return again, {**again, **{i: now for i in absent - suspects.keys()}}

    def close_unheard(self, call: CallState, from_cdr: CallState | None, missed_at: float, why: str) -> CallState:
        """End a live call whose Hangup never reached us. What we followed stays (transfers, the 110 leg,
        a later agent, the outcome); the CDR line, written by the caller's hangup handler, adds the end
        (time, cause) and fills what we had not heard. No CDR line (a callback's Local channel has none):
        ended when the first listing missed it, outcome "unobserved" unless we had one."""
        if from_cdr is not None:
            for f in dataclasses.fields(CallState):
                if f.name not in ("call_id", "events", "status", "ringing") and not getattr(call, f.name):
                    setattr(call, f.name, getattr(from_cdr, f.name))
            call.hangup_cause = from_cdr.hangup_cause
            call.hangup_cause_text = from_cdr.hangup_cause_text or call.hangup_cause_text
        call.ended_at = (from_cdr.ended_at if from_cdr is not None else None) or call.ended_at or missed_at
        call.hangup_cause_text = call.hangup_cause_text or why
        call.outcome = call.outcome or "unobserved"
        call.status, call.ringing = "ended", ""
        return call

    def apply(self, ev: Mapping[str, str]) -> CallState | None:
        ev = _Headers(ev)
        name = ev.get("Event", "")
        linkedid = ev.get("Linkedid", "")
        if name in ("AttendedTransfer", "BlindTransfer"):   # channel snapshots carry prefixes here
            linkedid = (ev.get("TransfereeLinkedid") or ev.get("OrigTransfererLinkedid")
                        or ev.get("TransfererLinkedid") or "")
        if name in ("BridgeEnter", "BridgeLeave"):
            self._bridge_membership(name, ev)
        if name == "UserEvent" and ev.get("UserEvent") == Ev.EMERGENCY:
            linkedid = ev.get("Call") or ""      # the originated 110/120 leg has a linkedid of its own
        if not name or not linkedid:
            return None
        now = _ts(ev, self.clock())
        if name == "UserEvent" and ev.get("UserEvent") == Ev.CALLBACK:
            return self._callback_leg(linkedid, ev, now)
        if name == "Newchannel":
            if ev.get("Context") != TRUNK_CONTEXT or ev.get("Uniqueid") != linkedid:
                return None
            call = self.calls.setdefault(linkedid, CallState(call_id=linkedid))
            call.channel = ev.get("Channel", call.channel)
            call.dialed_number = call.dialed_number or ev.get("Exten", "")
            call.caller_number = call.caller_number or caller_id(ev.get("CallerIDNum", ""))
            call.started_at = call.started_at or now
            return self._touched(call)
        call = self.calls.get(linkedid)
        if call is None and name == "Hangup" and ev.get("Uniqueid") == linkedid:
            self._unknown_ends[linkedid] = ev
            while len(self._unknown_ends) > UNKNOWN_ENDS_KEPT:
                self._unknown_ends.popitem(last=False)
        if call is None or call.status == "ended":
            return None
        handler = getattr(self, f"_on_{name}", None)
        if handler is None:
            return None
        changed = handler(call, ev, now)
        return self._touched(call) if changed is not False else None

    def _callback_leg(self, linkedid: str, ev: Mapping[str, str], now: float) -> CallState:
        """A callback placeholder joined a queue: a new (outbound) call, linked to the request."""
        call = self.calls.setdefault(linkedid, CallState(call_id=linkedid))
        call.dialed_number = ev.get("Number", "") or call.dialed_number
        call.caller_number = call.dialed_number
        call.city = ev.get("City", "") or call.city
        call.language = ev.get("Lang", "") or call.language
        call.queue = ev.get("Queue", "") or call.queue
        call.callback_of = ev.get("Origin", "")
        call.service = call.service or "callback"
        call.started_at = call.started_at or now
        call.queued_at = call.queued_at or now
        call.status = "queued"
        return self._touched(call)

    def _touched(self, call: CallState) -> CallState:
        call.events += 1
        return call

    # ---- dialplan user events
    def _on_UserEvent(self, call: CallState, ev: Mapping[str, str], now: float) -> bool:
        kind = ev.get("UserEvent", "")
        if kind == Ev.CALL:
            call.dialed_number = ev.get("DID", "") or call.dialed_number
            call.city = ev.get("City", "") or call.city
            call.area_code = ev.get("Area", "") or call.area_code
        elif kind == Ev.IVR_INVALID:
            return False
        elif kind == Ev.QUEUE:
            call.queue = ev.get("Queue", "") or call.queue
            self._routing_facts(call, ev)
        elif kind == Ev.OVERFLOW:
            call.overflow = ev.get("Path", "") or call.overflow
        elif kind == Ev.VOICEMAIL:
            call.outcome = "voicemail"
            call.status = "voicemail"
        elif kind == Ev.UNKNOWN_NUMBER:
            call.outcome = "unknown_number"
        elif kind == Ev.CALLBACK_REQUEST:
            call.outcome = "callback_requested"
        elif kind == Ev.CALLBACK_DIAL:
            call.recording = ev.get("Recording", "") or call.recording
        elif kind == Ev.CALLBACK_RESULT:
            call.outcome = f"callback_{ev.get('Result', 'unknown')}"
        elif kind == Ev.EMERGENCY:
            # every state reaches the desk: a 110 that is busy or never answers must not look like "dialling"
            status, number = ev.get("Status", ""), ev.get("Number", "")
            if status not in ("ringing", "answered", "left", "failed"):
                return False
            reason = ev.get("Reason", "") if status == "failed" else ""
            call.emergency = ":".join(x for x in (status, number, reason) if x)[:64]
            if status != "answered":
                return True
            # handed to 110/120 with the agent still on the line: the call's own outcome
            call.outcome = "emergency"
            entry = f"emergency:{call.agent}>{ev.get('Number', '')}"
            call.transfers = (f"{call.transfers}/{entry}" if call.transfers else entry)[-255:]
        elif kind == Ev.CALL_END:
            call.voicemail = ev.get("Voicemail", "") or call.voicemail
            call.city = call.city or ev.get("City", "")
            call.overflow = ev.get("Overflow", "") or call.overflow
            self._routing_facts(call, ev)
        else:
            return False
        return True

    def _routing_facts(self, call: CallState, ev: Mapping[str, str]) -> None:
        """What HotlineQueue and HotlineCallEnd both carry: the IVR path, service, recording, green channel,
        hours."""
        self._apply_path(call, ev.get("Path", ""))
        call.service = ev.get("Service", "") or call.service     # the green channel's service is not in the path
        call.recording = ev.get("Recording", "") or call.recording
        call.green = ev.get("Green", "") or call.green
        if ev.get("Open") in ("0", "1"):
            call.after_hours = ev.get("Open") == "0"

    @staticmethod
    def _apply_path(call: CallState, path: str) -> None:
        call.ivr_path = path or call.ivr_path
        for key, value in parse_ivr_path(call.ivr_path):
            value = value.split("~", 1)[0]
            if key == "lang":
                call.language = value
            elif key == "city":
                call.city = value
            elif key == "svc" and value != "green":
                call.service = value
            elif key == "green":
                call.green = value

    # ---- app_queue
    def _on_QueueCallerJoin(self, call: CallState, ev, now) -> bool:
        call.queue = ev.get("Queue", call.queue)
        call.queued_at = call.queued_at or now
        call.status = "queued"
        return True

    def _on_AgentCalled(self, call: CallState, ev, now) -> bool:
        call.ringing = _agent_from(ev.get("Interface", "") or ev.get("MemberName", ""))
        return True

    def _on_AgentRingNoAnswer(self, call: CallState, ev, now) -> bool:
        call.ringing = ""
        return True

    def _on_AgentConnect(self, call: CallState, ev, now) -> bool:
        call.ringing = ""
        call.agent_channel = ev.get("DestChannel", "") or call.agent_channel
        call.agent = _agent_from(ev.get("Interface", "") or ev.get("MemberName", "")) or call.agent
        call.queue = ev.get("Queue", call.queue)
        if call.answered_at is None:
            call.answered_at = now
        call.status = "talking"
        call.outcome = "answered"
        return True

    # ---- who the caller is talking to, through holds and transfers
    def _bridge_membership(self, name: str, ev: Mapping[str, str]) -> None:
        bridge, chan = ev.get("BridgeUniqueid", ""), ev.get("Channel", "")
        if not bridge or not chan:
            return
        members = self.bridges.setdefault(bridge, set())
        if name == "BridgeEnter":
            members.add(chan)
        else:
            members.discard(chan)
            if not members:
                self.bridges.pop(bridge, None)

    def _on_BridgeEnter(self, call: CallState, ev, now) -> bool:
        """A caller bridged one-to-one with a phone is talking to that agent (after a transfer too).
        Three or more (interpreter, supervisor barging) leave the agent as it was."""
        members = self.bridges.get(ev.get("BridgeUniqueid", ""), set())
        if call.channel not in members or len(members) != 2 or call.answered_at is None:
            return False
        other = next(iter(members - {call.channel}))
        if not other.startswith("PJSIP/") or other == call.agent_channel:
            return False
        call.agent_channel, call.agent = other, _agent_from(other)
        return True

    def _on_AttendedTransfer(self, call: CallState, ev, now) -> bool:
        raw = ev.get("TransferTargetChannel", "") or ev.get("SecondTransfererConnectedLineNum", "")
        local = re.match(r"Local/([^@]+)@hotline-transfer", raw)
        # the desk's consultation leg is a Local channel into [hotline-transfer]: name its target
        target = self.aliases.get(local.group(1), local.group(1)) if local else _agent_from(raw)
        return self._transferred(call, "attended", _agent_from(ev.get("OrigTransfererChannel", "")), target, ev)

    def _on_BlindTransfer(self, call: CallState, ev, now) -> bool:
        return self._transferred(call, "blind", _agent_from(ev.get("TransfererChannel", "")),
                                 ev.get("Extension", ""), ev)

    @staticmethod
    def _transferred(call: CallState, kind: str, by: str, to: str, ev) -> bool:
        if ev.get("Result", "Success") != "Success":
            return False
        entry = f"{kind}:{by}>{to}"
        call.transfers = (f"{call.transfers}/{entry}" if call.transfers else entry)[-255:]
        return True

    def _on_QueueCallerAbandon(self, call: CallState, ev, now) -> bool:
        call.outcome = "abandoned"
        return True

    def _on_Hangup(self, call: CallState, ev, now) -> bool:
        if ev.get("Uniqueid") != call.call_id:
            return False  # an agent's leg ending is not the call ending
        call.ended_at = now
        call.status = "ended"
        try:
            call.hangup_cause = int(ev.get("Cause", ""))
        except ValueError:
            call.hangup_cause = None
        if call.hangup_cause is not None and not 0 <= call.hangup_cause < 2 ** 31:
            call.hangup_cause = None   # the record's INTEGER column cannot hold it: the writer would stall
        call.hangup_cause_text = ev.get("Cause-txt", "")
        if not call.outcome:
            call.outcome = ("answered" if call.answered_at else
                            "abandoned" if call.queued_at else "ivr_hangup")
        return True

    # ---- resynchronisation after a controller restart
    def adopt(self, call_id: str, channel: str, vars: Mapping[str, str], bridged_to: str = "",
              started_at: float | None = None) -> CallState:
        """Rebuild (or complete) a call from its live channel's variables (see the dialplan)."""
        vars = _Headers(vars)   # Getvar answers: a repeated Value header would be a list
        call = self.calls.setdefault(call_id, CallState(call_id=call_id))
        if call.status == "ended":
            return call          # it hung up after Asterisk listed it: its Hangup is the truth
        call.channel = channel or call.channel
        call.dialed_number = vars.get(Var.DID) or call.dialed_number
        call.city = vars.get(Var.CITY) or call.city
        call.area_code = vars.get(Var.AREA) or call.area_code
        call.caller_number = caller_id(vars.get("CALLERID(num)")) or call.caller_number
        self._apply_path(call, vars.get(Var.IVR_PATH, ""))
        call.language = vars.get(Var.LANG) or call.language
        call.service = vars.get(Var.SERVICE) or call.service
        call.queue = vars.get(Var.QUEUE) or call.queue
        call.recording = vars.get(Var.REC) or call.recording
        if vars.get(Var.OVERFLOW):
            call.overflow = vars.get(Var.OVERFLOW)
        call.green = vars.get(Var.GREEN) or call.green
        if vars.get(Var.OPEN) == "0":
            call.after_hours = True
        call.started_at = call.started_at or usable_epoch(vars.get(Var.START)) or usable_epoch(started_at)
        call.queued_at = call.queued_at or usable_epoch(vars.get(Var.QUEUED_AT))
        answered = usable_epoch(vars.get(Var.ANSWERED_AT))
        agent = vars.get(Var.AGENT) or (_agent_from(bridged_to) if bridged_to else "")
        if answered or bridged_to:
            call.answered_at = call.answered_at or answered
            call.agent = agent or call.agent
            call.agent_channel = bridged_to or call.agent_channel
            call.status, call.outcome = "talking", "answered"
        elif call.queued_at:
            call.status = "queued"
        ended = self._unknown_ends.pop(call_id, None)
        if ended is not None:
            self._on_Hangup(call, ended, _ts(ended, self.clock()))
        return self._touched(call)
