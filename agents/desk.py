"""Call controls for the agent desk and supervisors, as AMI actions on live channels.

hang up: Hangup of the agent's leg. mute: MUTEAUDIO(in) set on the agent's leg (the caller stops hearing
the agent). hold: Redirect of both legs, the caller to music (hotline-hold), the agent to quiet
(hotline-held); resume: AMI Bridge puts them back together. transfers: BlindTransfer (the caller
goes straight to the target) and Atxfer (the agent consults the target first; hanging up the
agent's leg completes it, hanging up the target's cancels it). listen/whisper/barge: Originate to
the supervisor's phone running ChanSpy on the agent's leg (q quiet, E ends with the call,
d lets the supervisor switch mode with 4/5/6 on the keypad).

Routing of who may do what is core.access; this module only checks the call is in a state
where the action makes sense.
"""
from __future__ import annotations

import logging

from core.calls import CallState
from core.config import HotlineConfig
from core.transfers import TransferTarget, transfer_extensions

log = logging.getLogger("hotline.desk")

SPY_OPTIONS = {"listen": "qEd", "whisper": "qEdw", "barge": "qEdB"}


class DeskError(Exception):
    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


class CallControl:
    def __init__(self, cfg: HotlineConfig, ami):
        self.cfg, self.ami = cfg, ami
        self.numeric = transfer_extensions(cfg)
        self.held: dict[str, tuple[str, str]] = {}       # call id -> (caller channel, agent channel)
        self.consults: dict[str, str] = {}               # call id -> agent channel of an attended transfer

    async def _ok(self, action: dict, what: str) -> dict:
        resp = await self.ami.action(action)
        if resp.get("Response") != "Success":
            raise DeskError(f"{what} failed: {resp.get('Message', 'no reason given')}", 502)
        return resp

    @staticmethod
    def _agent_leg(call: CallState) -> str:
        if call.status != "talking" or not call.agent_channel:
            raise DeskError("the call is not connected to an agent")
        return call.agent_channel

    async def hangup(self, call: CallState) -> None:
        """The agent leaves the call (the caller is released by the dialplan as usual)."""
        await self._ok({"Action": "Hangup", "Channel": self._agent_leg(call), "Cause": "16"}, "hang up")

    async def mute(self, call: CallState, on: bool) -> None:
        """The caller stops hearing the agent (the agent still hears the caller). MUTEAUDIO() through
        Setvar needs only the `call` write class; the MuteAudio action would need `system`."""
        await self._ok({"Action": "Setvar", "Channel": self._agent_leg(call), "Variable": "MUTEAUDIO(in)",
                        "Value": "on" if on else "off"}, "mute")

    async def hold(self, call: CallState) -> None:
        agent = self._agent_leg(call)
        if call.call_id in self.held:
            raise DeskError("the call is already on hold")
        await self._ok({"Action": "Setvar", "Channel": agent, "Variable": "HOLD_PEER", "Value": call.channel}, "hold")
        await self._ok({"Action": "Redirect", "Channel": call.channel, "Context": "hotline-hold", "Exten": "s",
                        "Priority": "1", "ExtraChannel": agent, "ExtraContext": "hotline-held", "ExtraExten": "s",
                        "ExtraPriority": "1"}, "hold")
        self.held[call.call_id] = (call.channel, agent)

    async def resume(self, call: CallState) -> None:
        if call.call_id not in self.held:
            raise DeskError("the call is not on hold")
        caller, agent = self.held[call.call_id]
        for chan in (caller, agent):
            await self._ok({"Action": "Setvar", "Channel": chan, "Variable": "HOTLINE_UNHELD", "Value": "1"}, "resume")
        await self._ok({"Action": "Bridge", "Channel1": agent, "Channel2": caller, "Tone": "no"}, "resume")
        del self.held[call.call_id]

    async def transfer(self, call: CallState, target: TransferTarget, attended: bool) -> None:
        agent = self._agent_leg(call)
        if call.call_id in self.held:
            raise DeskError("take the call off hold before transferring it")
        if attended:
            if call.call_id in self.consults:
                raise DeskError("an attended transfer is already in progress")
            # Atxfer dials the extension as DTMF digits: the numeric alias
            await self._ok({"Action": "Atxfer", "Channel": agent, "Context": "hotline-transfer",
                            "Exten": self.numeric[target.exten]}, "attended transfer")
            self.consults[call.call_id] = agent
        else:
            await self._ok({"Action": "BlindTransfer", "Channel": agent, "Context": "hotline-transfer",
                            "Exten": target.exten}, "transfer")

    async def complete_transfer(self, call: CallState) -> None:
        """The agent steps out: the caller is joined to the consulted party."""
        agent = self.consults.pop(call.call_id, None)
        if agent is None:
            raise DeskError("no attended transfer in progress")
        await self._ok({"Action": "Hangup", "Channel": agent, "Cause": "16"}, "complete transfer")

    async def cancel_transfer(self, call: CallState) -> None:
        """Hang up the consulted party: the agent is back with the caller."""
        agent = self.consults.get(call.call_id)
        if agent is None:
            raise DeskError("no attended transfer in progress")
        # the consulted legs are the call's other channels (same linkedid): not caller, not agent
        chans = await self.ami.list_action({"Action": "CoreShowChannels"})
        others = [c["Channel"] for c in chans if c.get("Linkedid") == call.call_id
                  and c.get("Channel") not in (call.channel, agent) and not c.get("Channel", "").startswith("Local/")]
        if not others:
            raise DeskError("the consulted party is already gone")
        for chan in others:
            await self._ok({"Action": "Hangup", "Channel": chan, "Cause": "16"}, "cancel transfer")
        self.consults.pop(call.call_id, None)

    async def emergency(self, call: CallState, number: str) -> None:
        """Warm transfer to 110/120: the emergency service is dialled through the trunk and joins the
        caller–agent bridge when it answers (dialplan hotline-emergency-join); the agent stays on."""
        if number not in self.cfg.routing.emergency_numbers:
            raise DeskError(f"{number!r} is not a configured emergency number "
                            f"{sorted(self.cfg.routing.emergency_numbers)}", 400)
        self._agent_leg(call)
        if call.call_id in self.held:
            raise DeskError("take the call off hold first: the emergency service joins the conversation")
        await self._ok({"Action": "Originate", "Channel": f"Local/{number}@hotline-emergency-dial",
                        "Context": "hotline-emergency-join", "Exten": "s", "Priority": "1", "Timeout": "60000",
                        "Async": "true", "CallerID": f'"12348" <{call.dialed_number or "12348"}>',
                        # one header per variable (a comma inside one is refused by check_action)
                        "Variable": [f"JOIN={call.channel}", f"HL_CALL={call.call_id}", f"HL_NUMBER={number}"]},
                       "emergency transfer")

    async def spy(self, call: CallState, mode: str, supervisor_phone: str, supervisor_name: str) -> None:
        if mode not in SPY_OPTIONS:
            raise DeskError("mode must be listen, whisper or barge", 400)
        agent = self._agent_leg(call)
        await self._ok({"Action": "Originate", "Channel": f"PJSIP/{supervisor_phone}", "Application": "ChanSpy",
                        "Data": f"{agent},{SPY_OPTIONS[mode]}", "Timeout": "30000", "Async": "true",
                        "CallerID": f'"{mode} {call.agent}" <{supervisor_phone}>',
                        "Variable": f"HOTLINE_SPY={mode}:{call.call_id}"}, mode)

    def forget(self, call_id: str) -> None:
        self.held.pop(call_id, None)
        self.consults.pop(call_id, None)
