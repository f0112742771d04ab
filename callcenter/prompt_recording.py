"""The controller's half of recording prompts by phone (the dialplan half is
callcenter/asterisk/confgen/prompt_recording.py): an accepted take is converted, installed in the
instance's sound directory (live for the next caller) and stored as a new version with who and when;
the dialplan is told the outcome on the supervisor's channel. Refusals are audited."""
from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from core.config import HotlineConfig
from core.contract import Ev
from core.paths import InstancePaths
from ivr_flows.prompts import BadRecording, install_recording, prompt_texts
from store.auth import AuditLog
from store.prompts import PromptStore

log = logging.getLogger(__name__)
STALE_TAKE_SECONDS = 86400     # takes never accepted (the call hung up) are removed after a day


class PromptRecorder:
    def __init__(self, cfg: HotlineConfig, ami, store: PromptStore, audit_log: AuditLog, paths: InstancePaths):
        self.cfg, self.ami, self.store, self.audit_log, self.paths = cfg, ami, store, audit_log, paths
        self.inbox = paths.host(paths.spool / "prompt-inbox")
        self.supervisors = {s.id for s in cfg.supervisors}

    @staticmethod
    def wants(ev) -> bool:
        return ev.get("Event") == "UserEvent" and ev.get("UserEvent") in (Ev.PROMPT_RECORDED, Ev.PROMPT_REFUSED)

    async def apply(self, ev) -> None:
        who = str(ev.get("By", ""))[:64]
        if ev.get("UserEvent") == Ev.PROMPT_REFUSED:
            await self.audit_log.refused("prompt_record", source=who or "unknown", user_id=who,
                                         detail=f"recording prompts by phone refused: {ev.get('Reason', '')}")
            return
        lang, pid, channel = str(ev.get("Lang", "")), str(ev.get("Prompt", "")), str(ev.get("Channel", ""))
        saved = "0"
        try:
            saved = "1" if await self._accept(who, lang, pid, str(ev.get("File", ""))) else "0"
        finally:
            if channel:
                try:
                    await self.ami.action({"Action": "Setvar", "Channel": channel, "Variable": "HL_PROMPT_SAVED",
                                           "Value": saved}, timeout=5)
                except Exception:
                    log.warning("could not tell %s whether prompt %s/%s was saved", channel, lang, pid)

    async def _accept(self, who: str, lang: str, pid: str, inner_file: str) -> bool:
        if who not in self.supervisors:
            await self.audit_log.refused("prompt_record", source=who or "unknown", user_id=who,
                                         target=f"{lang}/{pid}", detail="not a supervisor")
            return False
        src = self.paths.host(inner_file) if inner_file else None
        # the dialplan names the file; still, only a take in the inbox is ever read
        if src is None or src.resolve().parent != self.inbox.resolve() or (lang, pid) not in prompt_texts(self.cfg):
            await self.audit_log.refused("prompt_record", source=who, user_id=who, target=f"{lang}/{pid}",
                                         detail=f"no such prompt or take: {inner_file!r}")
            return False
        try:
            seconds = await asyncio.to_thread(install_recording, self.cfg, self.paths.host(self.paths.sounds),
                                              lang, pid, src)
        except BadRecording as e:
            await self.audit_log.refused("prompt_record", source=who, user_id=who, target=f"{lang}/{pid}", detail=str(e))
            return False
        row = await self.store.add(lang, pid, who, "phone", seconds)
        await self.audit_log.audit(who, "supervisor", "prompt_recorded", target=f"{lang}/{pid}",
                                   detail=f"version {row['version']} by phone, {seconds:.1f} s")
        log.info("prompt %s/%s version %d recorded by %s", lang, pid, row["version"], who)
        self._clean_inbox(src)
        return True

    def _clean_inbox(self, accepted: Path) -> None:
        # the call's other takes are of no use once one is accepted; abandoned ones after a day
        stem = accepted.stem.rsplit("-", 1)[0]
        old = time.time() - STALE_TAKE_SECONDS
        for take in self.inbox.glob("*.wav"):
            try:
                if take.name.startswith(f"{stem}-") or take.stat().st_mtime < old:
                    take.unlink(missing_ok=True)
            except OSError:
                pass
