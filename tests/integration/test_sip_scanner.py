"""SIP scanner traffic from an address that is not the carrier's (127.0.0.2): OPTIONS sweeps, INVITEs
to international numbers and to 12348 claiming to be the trunk, password guessing on an agent's
account — all refused, while a live call between a caller and an agent goes on undisturbed."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from simulators.audio import wav_stats
from tests.helpers import ROOT, free_port

SCANNER_IP = "127.0.0.2"    # Linux routes all of 127/8 to loopback; the trunk matches 127.0.0.1/32 only


def sipp(stack, scenario: str, *args: str, calls: int, rate: int, cwd: Path) -> subprocess.Popen:
    a = stack.cfg.system.asterisk
    return subprocess.Popen(["sipp", f"127.0.0.1:{a.sip_port}", "-sf", str(ROOT / "tests/sipp" / scenario),
                             *args, "-m", str(calls), "-r", str(rate), "-l", "200", "-i", SCANNER_IP,
                             "-p", str(free_port()), "-mp", str(free_port() & ~1), "-timeout", "60s",
                             "-timeout_error", "-nostdin", "-nd", "-trace_err", "-trace_stat", "-stf",
                             f"{scenario}.csv", "-fd", "1"],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def outcome(proc: subprocess.Popen, cwd: Path, scenario: str) -> tuple[int, int, str]:
    out, _ = proc.communicate(timeout=120)
    rows = (cwd / f"{scenario}.csv").read_text().splitlines()
    head, last = rows[0].split(";"), rows[-1].split(";")
    stat = dict(zip(head, last))
    return int(stat["SuccessfulCall(C)"]), int(stat["FailedCall(C)"]), out[-1500:]


def test_scanner_traffic_is_refused_and_live_calls_go_on(clean_stack, audio, tmp_path):
    s = clean_stack
    s.agent("agent1001", play=audio["agent"], record_dir=tmp_path / "agent")
    heard = tmp_path / "caller.wav"
    # green channel (9, migrant worker): served before callbacks earlier tests left queued for Leshan
    caller = s.call("083312348", dtmf="2:1,4:9,6:1", play=audio["caller"], record=heard, hangup_after=70,
                    caller="13955550001")
    s.wait_record(lambda r: r["caller_number"] == "13955550001" and r["status"] == "talking", 60)

    inf = tmp_path / "guess.csv"
    inf.write_text("SEQUENTIAL\n" + "".join(
        f"agent1001;[authentication username=agent1001 password=guess{i}]\n" for i in range(150)))
    t0 = time.monotonic()
    scans = {
        "scanner_options.xml": sipp(s, "scanner_options.xml", "-s", "100", calls=600, rate=200, cwd=tmp_path),
        "scanner_invite.xml": sipp(s, "scanner_invite.xml", "-s", "9011441234567", "-key", "from", "scan",
                                   calls=200, rate=100, cwd=tmp_path),
        "scanner_register.xml": sipp(s, "scanner_register.xml", "-inf", str(inf), calls=150, rate=50, cwd=tmp_path),
    }
    results = {name: outcome(proc, tmp_path, name) for name, proc in scans.items()}
    # then INVITEs claiming to be the trunk by name: before identify_by = ip they were taken for the carrier
    trunk_dir = tmp_path / "trunk"
    trunk_dir.mkdir()
    results["scanner_invite.xml#trunk"] = outcome(
        sipp(s, "scanner_invite.xml", "-s", "083312348", "-key", "from", s.cfg.system.trunk.name,
             calls=50, rate=50, cwd=trunk_dir), trunk_dir, "scanner_invite.xml")
    flood_seconds = time.monotonic() - t0
    for name, (ok, failed, log) in results.items():
        # a scenario succeeds only if every request got a refusal (a 200 to an INVITE fails it)
        assert failed == 0 and ok > 0, f"{name}: {ok} refused as expected, {failed} not: {log}"

    # nothing the scanners sent became a call or a record; the agent's registration still stands
    assert not [r for r in s.records(100) if r["caller_number"].startswith("scan")
                or r["caller_number"] == s.cfg.system.trunk.name]
    assert "agent1001" in s.asterisk.rx("pjsip show contacts")
    # the password guessing got the scanner's address blocked (finding 13): its later guesses had a 403
    assert [e for e in s.api("/api/audit?limit=200") if e["action"] == "sip_blocked" and e["target"] == f"{SCANNER_IP}/32"]

    # the live call went on throughout: answered, full length, and the agent's voice reached the caller
    res = caller.result(90)
    assert res["answered"]
    rec = s.wait_record(lambda r: r["caller_number"] == "13955550001" and r["status"] == "ended")
    assert rec["outcome"] == "answered" and rec["agent"] == "agent1001" and rec["talk_seconds"] > 10
    assert wav_stats(heard).active_seconds > 2
    print(f"\n[scanner] {sum(r[0] for r in results.values())} scanner requests refused in {flood_seconds:.1f} s "
          "while a call stayed up")
