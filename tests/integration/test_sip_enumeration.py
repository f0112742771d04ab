"""Security review 16 §13: SIP accounts cannot be enumerated, and password guessing is stopped.

Raw SIP over UDP from addresses that are not the carrier's (the trunk matches 127.0.0.1/32 only), so the
whole answer can be compared: real accounts (agent1001, sup_leshan), the trunk's name and a made-up account
(agent9999) get the same status, headers and challenge to REGISTER, INVITE, OPTIONS and SUBSCRIBE, also after a wrong
password. Wrong passwords from one address block it (403 for every request, whatever account) while
agents on 127.0.0.1 go on registering; each failure is logged, the block audited and lifted in time."""
from __future__ import annotations

import re
import subprocess
import sys
import urllib.request

from tests.helpers import ROOT, wait_for
from tests.sip_probe import SipProbe, SipResponse

METHODS = ("REGISTER", "INVITE", "OPTIONS", "SUBSCRIBE")
GUESSER = "127.0.0.2"
# the parity test's addresses, one per method: four wrong passwords each stay below the block
PROBERS = {m: f"127.0.0.{3 + i}" for i, m in enumerate(METHODS)}


def shape(r: SipResponse) -> tuple:
    """What may not differ between accounts: status, reason, which headers, the challenge's parameters
    and their fixed values (realm, algorithm, qop); nonce and opaque are per request for everyone."""
    ch = r.challenge
    fixed = {k: v for k, v in ch.items() if k not in ("nonce", "opaque")}
    return r.status, r.reason, tuple(r.names()), tuple(sorted(ch)), tuple(sorted(fixed.items())), r.get("Server")


def probe(stack, src: str, method: str, user: str, password: str | None = None) -> list[SipResponse]:
    a = stack.cfg.system.asterisk
    with SipProbe((a.sip_bind, a.sip_port), src) as p:
        return p.request(method, user, password=password, target="083312348" if method == "INVITE" else None)


def test_real_and_made_up_accounts_get_the_same_answers(clean_stack):
    s = clean_stack
    answers = {}
    for method in METHODS:
        for user in ("agent1001", "sup_leshan", "carrier", "agent9999"):
            # the first answer (no credentials), then the answer to a wrong password
            got = probe(s, PROBERS[method], method, user, password="not-the-password")
            answers[method, user] = [shape(r) for r in got]
    for method in METHODS:
        real, other, trunk, made_up = (answers[method, u] for u in ("agent1001", "sup_leshan", "carrier", "agent9999"))
        assert real == other == trunk == made_up, \
            f"{method}: agent1001 {real}\nsup_leshan {other}\ncarrier {trunk}\nagent9999 {made_up}"
        # both steps are a digest challenge (never a 404, 403 or 489 that only a made-up account gets)
        assert [a[0] for a in real] == [401, 401], method
        assert dict(real[0][4]) == {"realm": "hotline12348", "algorithm": "MD5", "qop": "auth"}
    assert s.sip_blocklist.blocked() == {}


def test_password_guessing_blocks_the_address_not_the_agents(clean_stack, tmp_path):
    s = clean_stack
    g = s.cfg.system.sip_guard
    log = s.tmp / "controller.log"
    seen_before = log.read_text(errors="replace").count(f"from {GUESSER} ")
    # (a failure or two from an earlier test may still be in the window: then the block comes sooner)
    answers = {tuple(r.status for r in probe(s, GUESSER, "REGISTER", "agent1001", f"guess{i}"))
               for i in range(g.max_failures)}
    assert answers <= {(401, 401), (403,)} and (401, 401) in answers
    # the controller blocks the address when Asterisk's security events have reached it
    wait_for(lambda: probe(s, GUESSER, "OPTIONS", "agent9999")[0].status == 403, 10, "the guesser blocked")
    blocked = {}
    for method in METHODS:
        for user in ("agent1001", "agent9999"):
            blocked[method, user] = [shape(r) for r in probe(s, GUESSER, method, user, "guess")]
        assert blocked[method, "agent1001"] == blocked[method, "agent9999"]
        assert [b[0] for b in blocked[method, "agent1001"]] == [403], method
    # even the right password is refused from a blocked address ...
    password = s.secrets.agent_passwords["agent1002"]
    assert [r.status for r in probe(s, GUESSER, "REGISTER", "agent1002", password)] == [403]
    # ... while an agent's phone on 127.0.0.1 registers as usual
    s.agent("agent1001", login=False)
    assert "agent1001" in s.asterisk.rx("pjsip show contacts")

    # every failure logged with address and account; the block logged and audited
    text = log.read_text(errors="replace")
    assert text.count(f"SIP authentication failed: account agent1001 from {GUESSER} ") - seen_before >= g.max_failures
    assert re.search(rf"SIP address {re.escape(GUESSER)}/32 blocked for 15 s after {g.max_failures} failed", text)
    rows = [e for e in s.api("/api/audit?limit=200") if e["action"] == "sip_blocked" and e["target"] == f"{GUESSER}/32"]
    assert rows and not rows[0]["allowed"] and "last for account agent1001" in rows[0]["detail"]

    assert f"{GUESSER}/32" in hotline(s, "sip-blocks")
    with urllib.request.urlopen(s.base_url + "/metrics", timeout=10) as r:
        metrics = r.read().decode()
    assert re.search(r"^hotline_sip_blocks_total [1-9]", metrics, re.M)
    assert re.search(r'^hotline_ami_events_total\{event="ChallengeResponseFailed"\} [1-9]', metrics, re.M)

    # the block ends by itself: the address is challenged again, like any other
    wait_for(lambda: probe(s, GUESSER, "REGISTER", "agent9999")[0].status == 401, g.block_seconds + 15,
             "the block lifted")
    assert s.sip_blocklist.blocked() == {}

    # an operator can lift a block at once (an office locked out by one misconfigured phone), audited
    guess_until_blocked(s, g.max_failures + 1)
    assert "let in again" in hotline(s, "sip-blocks", "--unblock", GUESSER)
    assert [r.status for r in probe(s, GUESSER, "REGISTER", "agent9999")] == [401]
    assert [e for e in s.api("/api/audit?limit=50") if e["action"] == "sip_unblocked" and e["target"] == GUESSER]


def hotline(stack, *args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "hotline.cli", *args], cwd=ROOT, env=stack.env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=True, timeout=60)
    return res.stdout


def guess_until_blocked(stack, attempts: int) -> None:
    for i in range(attempts):
        if probe(stack, GUESSER, "REGISTER", "agent1002", f"again{i}")[0].status == 403:
            return
    wait_for(lambda: probe(stack, GUESSER, "OPTIONS", "agent9999")[0].status == 403, 10, "blocked again")
