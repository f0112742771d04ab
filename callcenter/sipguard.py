"""Failed SIP authentications, from Asterisk's security events (AMI class `security`): each one is logged
with its source address and the account tried; an address with too many in a window is blocked for a
while through the ACL table Asterisk reads on every request (callcenter/asterisk/acl.py), and the block
is audited.

Only failures that a real and a made-up account cause alike are counted (a wrong answer to a challenge,
``ChallengeResponseFailed``, or ``InvalidPassword``): counting ``InvalidAccountID`` too would block a
prober of made-up accounts sooner than one of real accounts, and tell it which are real. A block refuses
every request from the address with the same 403, whatever account it names. The trunk's networks are
never blocked (the carrier's calls would stop); their failures are logged.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import sqlite3
import time
from collections import OrderedDict, deque

from callcenter.asterisk.acl import SipBlocklist, network_of
from core.config.system import SipGuardSettings
from store.auth import AuditLog

log = logging.getLogger("hotline.sipguard")

FAILURES = frozenset({"ChallengeResponseFailed", "InvalidPassword"})
UNKNOWN_ACCOUNT = "InvalidAccountID"
MAX_TRACKED = 10_000       # addresses with failures in the window; the oldest are forgotten beyond this
MAX_SESSIONS = 1_000       # Call-IDs of unknown accounts, to name the account in the failure's log line


def safe(text: str, limit: int = 64) -> str:
    """An attacker-chosen name as it may reach a log line or an audit row."""
    return re.sub(r"[^A-Za-z0-9_.@+\-]", "?", text)[:limit]


def source_address(remote: str) -> str | None:
    """``IPV4/UDP/192.0.2.7/5060`` -> ``192.0.2.7``; None if it is not that."""
    parts = remote.split("/") if isinstance(remote, str) else []
    if len(parts) < 4:
        return None
    try:
        return str(ipaddress.ip_address(parts[2]))
    except ValueError:
        return None


class SipGuard:
    def __init__(self, settings: SipGuardSettings, trusted: list[str], blocklist: SipBlocklist,
                 audit_log: AuditLog, clock=time.time, on_block=lambda: None):
        self.settings = settings
        self.trusted = [ipaddress.ip_network(n, strict=False) for n in [*trusted, *settings.exempt]]
        self.blocklist = blocklist
        self.audit_log = audit_log
        self.clock = clock
        self.on_block = on_block        # the metric
        self.failures: OrderedDict[str, deque[float]] = OrderedDict()   # network -> failure times
        self.unknown: OrderedDict[str, str] = OrderedDict()             # Call-ID -> unknown account tried

    @staticmethod
    def wants(ev) -> bool:
        return ev.get("Service") == "PJSIP" and ev.get("Event") in FAILURES | {UNKNOWN_ACCOUNT}

    async def apply(self, ev) -> None:
        address = source_address(ev.get("RemoteAddress", ""))
        if address is None:
            log.warning("SIP security event %s without a usable address", safe(ev.get("Event", "")))
            return
        session = str(ev.get("SessionID", ""))[:128]     # the caller's Call-ID: bounded before it is kept
        if ev.get("Event") == UNKNOWN_ACCOUNT:
            self.unknown[session] = safe(ev.get("AccountID", ""))
            self.unknown.move_to_end(session)
            while len(self.unknown) > MAX_SESSIONS:
                self.unknown.popitem(last=False)
            return
        account = self.unknown.get(session) or safe(ev.get("AccountID", ""))
        log.warning("SIP authentication failed: account %s from %s (%s)", account, address, safe(ev["Event"]))
        await self._count(address, account)

    def _trusted(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in net for net in self.trusted)

    async def _count(self, address: str, account: str) -> None:
        if self._trusted(address):
            return
        s, now = self.settings, self.clock()
        net = network_of(address)
        times = self.failures.pop(net, deque())
        times.append(now)
        while times and times[0] <= now - s.window_seconds:
            times.popleft()
        if len(times) < s.max_failures:
            self.failures[net] = times          # re-inserted last: the most recently failing
            while len(self.failures) > MAX_TRACKED:
                self.failures.popitem(last=False)
            return
        try:
            await asyncio.to_thread(self.blocklist.block, net, now + s.block_seconds)
        except (OSError, sqlite3.Error):
            # e.g. the controller may not write Asterisk's lib directory: say so loudly, keep counting
            log.exception("could not block SIP address %s after %d failed authentications", net, len(times))
            return
        self.on_block()
        log.warning("SIP address %s blocked for %.0f s after %d failed authentications in %.0f s (last account %s)",
                    net, s.block_seconds, len(times), s.window_seconds, account)
        await self.audit_log.audit("system", "", "sip_blocked", target=net, allowed=False,
                                   detail=f"{len(times)} failed SIP authentications in {s.window_seconds:.0f} s, "
                                          f"last for account {account}; blocked {s.block_seconds:.0f} s")

    async def expire(self) -> None:
        for net in await asyncio.to_thread(self.blocklist.expire, self.clock()):
            log.info("SIP address %s let in again (block expired)", net)

    async def run(self, every: float = 5.0) -> None:
        """Lift blocks whose time is up, also those left from before a restart."""
        while True:
            try:
                await asyncio.to_thread(self.blocklist.ensure)
                await self.expire()
            except Exception:
                log.exception("could not lift expired SIP blocks; will retry")
            await asyncio.sleep(min(every, self.settings.block_seconds))
