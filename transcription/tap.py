"""Live transcription, controller side: when an agent answers, Asterisk is asked (AMI Originate)
to stream each speaker to the transcriber's AudioSocket server — an AudioSocket channel running
ChanSpy on the leg with option ``o`` (only what that leg says), quiet, ending with the call.

The tap is a listener on the call; it never touches the caller's or the agent's channel, so a
missing transcriber, model or Redis costs the live text and nothing else."""
from __future__ import annotations

import asyncio
import logging
import uuid

from store.bus import Bus
from core.config import HotlineConfig
from transcription.models import ModelRegistry

log = logging.getLogger("hotline.tap")
TAP_TTL = 12 * 3600


class LiveTap:
    def __init__(self, cfg: HotlineConfig, ami, bus: Bus, models: ModelRegistry):
        ts = cfg.system.transcription
        self.enabled = ts.enabled and ts.live.enabled
        self.address = f"{ts.live.host}:{ts.live.port}"
        # "auto" is sized from this machine's cores: the transcriber runs beside the controller
        self.max_calls = ts.live.calls()
        if self.enabled:
            log.info("live transcription for up to %d calls at once (live.max_calls %s)", self.max_calls,
                     ts.live.max_calls)
        self.ami, self.bus, self.models = ami, bus, models
        self.tapped: set[tuple[str, str]] = set()     # (call id, channel) already streamed
        self.skipped: set[str] = set()                  # calls over the live limit (logged once)
        self.tasks: set[asyncio.Task] = set()

    def on_call(self, call: dict) -> None:
        if not self.enabled:
            return
        if call.get("status") == "ended":
            self.tapped = {t for t in self.tapped if t[0] != call["call_id"]}
            self.skipped.discard(call["call_id"])
            return
        if call.get("status") != "talking" or not call.get("agent_channel") or not call.get("channel"):
            return
        if not self.models.locate(call.get("language", "")):
            return
        live_calls = {cid for cid, _ in self.tapped}
        if call["call_id"] not in live_calls and len(live_calls) >= self.max_calls:
            if call["call_id"] not in self.skipped:
                self.skipped.add(call["call_id"])
                log.warning("call %s: %d calls already transcribed live (live.max_calls); post-call only",
                            call["call_id"], len(live_calls))
            return
        for speaker, channel in (("caller", call["channel"]), ("agent", call["agent_channel"])):
            if (call["call_id"], channel) in self.tapped:
                continue
            self.tapped.add((call["call_id"], channel))
            task = asyncio.get_running_loop().create_task(self._tap(call, speaker, channel))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _tap(self, call: dict, speaker: str, channel: str) -> None:
        stream = str(uuid.uuid4())
        info = {"call_id": call["call_id"], "speaker": speaker, "language": call.get("language", ""),
                "city": call.get("city", ""), "agent": call.get("agent", ""), "channel": channel}
        if not await self.bus.put(f"live:{stream}", info, TAP_TTL):
            log.warning("no live transcript for %s: Redis unavailable", call["call_id"])
            return
        try:
            r = await self.ami.action({"Action": "Originate", "Channel": f"AudioSocket/{self.address}/{stream}",
                                       "Application": "ChanSpy", "Data": f"{channel},qEoS", "Async": "true",
                                       "Timeout": "5000", "CallerID": f'"transcribe {speaker}" <{call["call_id"]}>',
                                       "Variable": f"HOTLINE_TAP={speaker}:{call['call_id']}"}, timeout=5)
            if r.get("Response") != "Success":
                log.warning("live transcript tap for %s (%s) refused: %s", call["call_id"], speaker, r.get("Message"))
        except Exception as e:
            log.warning("live transcript tap for %s (%s) failed: %s", call["call_id"], speaker, e)
