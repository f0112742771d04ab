"""Failed SIP authentications are logged, counted per source address, and block it for a while (security
review 16 §13). The events are Asterisk 22's, as seen over AMI on a real instance: a wrong password for a
real account gives ChallengeResponseFailed; a made-up account gives InvalidAccountID, then the same
ChallengeResponseFailed with AccountID <unknown>."""
import logging
from pathlib import Path

from callcenter.asterisk.acl import SipBlocklist
from callcenter.sipguard import SipGuard, safe, source_address
from core.config.system import SipGuardSettings
from store.auth import AuditLog
from store.engine import Database, migrate

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = SipGuardSettings(max_failures=3, window_seconds=60, block_seconds=300)


def failed(account: str, address: str, session: str) -> dict:
    return {"Event": "ChallengeResponseFailed", "Privilege": "security,all", "Service": "PJSIP",
            "AccountID": account, "SessionID": session, "LocalAddress": "IPV4/UDP/127.0.0.1/5060",
            "RemoteAddress": f"IPV4/UDP/{address}/40000", "Challenge": "1/abc", "Response": "x"}


def unknown(account: str, address: str, session: str) -> dict:
    return {"Event": "InvalidAccountID", "Privilege": "security,all", "Service": "PJSIP", "AccountID": account,
            "SessionID": session, "RemoteAddress": f"IPV4/UDP/{address}/40000"}


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_failures_are_logged_counted_per_address_and_block_it(db_url, tmp_path, caplog):
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    blocklist = SipBlocklist(tmp_path / "bl.sqlite3")
    blocklist.ensure()
    clock = Clock()
    blocks = []
    guard = SipGuard(SETTINGS, ["127.0.0.1/32"], blocklist, AuditLog(db), clock, on_block=lambda: blocks.append(1))
    caplog.set_level(logging.INFO, "hotline.sipguard")
    try:
        # a real account and a made-up one count alike: 2 failures, no block yet
        await guard.apply(failed("agent1001", "192.0.2.7", "c1"))
        await guard.apply(unknown("agent9999", "192.0.2.7", "c2"))
        await guard.apply(unknown("agent9999", "192.0.2.7", "c2"))    # Asterisk reports it twice
        await guard.apply(failed("<unknown>", "192.0.2.7", "c2"))
        assert blocklist.blocked() == {}
        lines = [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]
        assert lines == ["SIP authentication failed: account agent1001 from 192.0.2.7 (ChallengeResponseFailed)",
                         "SIP authentication failed: account agent9999 from 192.0.2.7 (ChallengeResponseFailed)"]
        # another address's failures are its own
        await guard.apply(failed("agent1001", "192.0.2.8", "c3"))
        await guard.apply(failed("agent1001", "192.0.2.7", "c4"))
        assert blocklist.blocked() == {"192.0.2.7/32": clock.now + 300}
        assert blocks == [1]
        entries = [e for e in await AuditLog(db).audit_entries() if e["action"] == "sip_blocked"]
        assert [(e["target"], e["allowed"], e["user_id"]) for e in entries] == [("192.0.2.7/32", False, "system")]
        assert "3 failed SIP authentications" in entries[0]["detail"]

        # failures spread wider than the window never add up
        for i in range(5):
            clock.now += 31
            await guard.apply(failed("agent1002", "192.0.2.9", f"d{i}"))
        assert "192.0.2.9/32" not in blocklist.blocked()

        # the block is lifted when its time is up
        clock.now += 300
        await guard.expire()
        assert blocklist.blocked() == {}
    finally:
        await db.close()


async def test_the_trunk_is_never_blocked_and_names_are_filtered(db_url, tmp_path, caplog):
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    blocklist = SipBlocklist(tmp_path / "bl.sqlite3")
    blocklist.ensure()
    guard = SipGuard(SipGuardSettings(max_failures=1, exempt=["10.1.0.0/16"]), ["127.0.0.1/32"], blocklist,
                     AuditLog(db), Clock())
    caplog.set_level(logging.WARNING, "hotline.sipguard")
    try:
        await guard.apply(failed("agent1001", "127.0.0.1", "t1"))       # the carrier's address
        await guard.apply(failed("agent1001", "10.1.2.3", "t2"))        # an exempt office network
        assert blocklist.blocked() == {}
        assert len([r for r in caplog.records if "authentication failed" in r.getMessage()]) == 2
        # an attacker-chosen account name reaches the log only as safe characters
        await guard.apply(failed("x\r\nFAKE LOG LINE\x1b[31m", "2001:db8::5", "t3"))
        assert "x??FAKE?LOG?LINE??31m" in caplog.records[-2].getMessage()
        assert blocklist.blocked() == {"2001:db8::/64": Clock().now + SipGuardSettings().block_seconds}
        # events without a usable address, or not PJSIP's, change nothing
        await guard.apply({**failed("a", "x", "t4"), "RemoteAddress": "garbage"})
        assert not SipGuard.wants({**failed("a", "192.0.2.1", "t5"), "Service": "AMI"})
        assert SipGuard.wants(failed("a", "192.0.2.1", "t5")) and SipGuard.wants(unknown("a", "192.0.2.1", "t5"))
    finally:
        await db.close()


def test_names_and_addresses_from_events():
    assert safe("agent1001") == "agent1001" and safe("a b;c") == "a?b?c" and len(safe("x" * 500)) == 64
    assert source_address("IPV4/UDP/127.0.0.2/5060") == "127.0.0.2"
    assert source_address("IPV6/UDP/2001:db8::1/5060") == "2001:db8::1"
    assert source_address("IPV4/UDP/not-an-ip/5060") is None and source_address("") is None
    assert source_address(["IPV4/UDP/127.0.0.2/5060", "IPV4/UDP/127.0.0.3/5060"]) is None   # a repeated header


def test_a_block_never_writes_a_malformed_rule(tmp_path):
    """An unparsable rule would make Asterisk drop the row: an attacker's address must be a network."""
    bl = SipBlocklist(tmp_path / "bl.sqlite3")
    bl.ensure()
    try:
        bl.block("192.0.2.1, 0.0.0.0/0", 1.0)
    except ValueError:
        pass
    assert bl.blocked() == {}
    bl.block("192.0.2.1", 5.0)
    assert bl.unblock("192.0.2.1/32") and bl.blocked() == {}


async def test_a_block_that_cannot_be_written_is_logged_not_fatal(tmp_path, caplog):
    """The controller may lack write access to Asterisk's lib directory: it says so and goes on."""
    (tmp_path / "file").write_text("")

    class NoAudit:
        async def audit(self, *a, **k):
            raise AssertionError("nothing was blocked: nothing to audit")

    guard = SipGuard(SipGuardSettings(max_failures=1), [], SipBlocklist(tmp_path / "file" / "bl.sqlite3"),
                     NoAudit(), Clock())
    caplog.set_level(logging.WARNING, "hotline.sipguard")
    await guard.apply(failed("agent1001", "192.0.2.7", "e1"))
    assert "could not block SIP address 192.0.2.7/32" in caplog.records[-1].getMessage()
