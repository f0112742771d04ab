"""SIPp load against a Stack: agent phones registered and auto-answering from one sipp UAS, callers
from a sipp UAC through the carrier trunk (IVR with RFC 2833 DTMF pcaps, audio, queue).

Used by the load benchmark (bench/bench_load.py) and the fault suite (tests/integration/test_faults.py).
"""
from __future__ import annotations

import csv
from datetime import datetime
import os
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.helpers import Stack

ROOT = Path(__file__).resolve().parent.parent
SIPP_DIR = ROOT / "tests" / "sipp"
CALLER_DID = "083312348"      # Leshan: one city for its area code, so no city menu


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_stack(tmp: Path, agents: int, db_url: str | None = None, redis_url: str | None = None,
               rtp_ports: int = 10000) -> tuple[Stack, list[str]]:
    """A Stack (not started) whose roster has ``agents`` load-test agents, with RTP ports for many calls."""
    stack = Stack(tmp, db_url=db_url)
    ids = write_roster(tmp / "agents.yaml", agents)
    stack.overrides["agents_file"] = str(tmp / "agents.yaml")
    start = 30000 if rtp_ports > 1000 else stack.overrides["asterisk"]["rtp_start"]
    stack.overrides["asterisk"].update({"rtp_start": start, "rtp_end": start + rtp_ports - 1})
    if redis_url:
        stack.overrides["redis"]["url"] = redis_url
    stack.reconfigure()
    return stack, ids


def write_roster(path: Path, count: int, city: str = "leshan", first: int = 3001) -> list[str]:
    """config/agents.yaml plus ``count`` load-test agents in ``city``: the file for ``agents_file``."""
    data = yaml.safe_load((ROOT / "config" / "agents.yaml").read_text(encoding="utf-8"))
    ids = [f"agent{first + i}" for i in range(count)]
    data["agents"] += [{"id": a, "name": f"压测坐席{i + 1}", "queues": [city], "languages": ["zh"], "gender": "m"}
                       for i, a in enumerate(ids)]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return ids


class AgentPhones:
    """Many agents' phones on one UDP port: registered with sipp (digest auth), then answered by a sipp UAS."""

    def __init__(self, workdir: Path, sip_port: int, agents: list[str], passwords: dict[str, str]):
        self.workdir, self.sip_port, self.agents, self.passwords = workdir, sip_port, agents, passwords
        self.port = free_udp_port()
        self.uas: subprocess.Popen | None = None

    def register(self, timeout: float = 60) -> None:
        inf = self.workdir / "agents.csv"
        inf.write_text("SEQUENTIAL\n" + "".join(
            f"{a};[authentication username={a} password={self.passwords[a]}]\n" for a in self.agents))
        res = subprocess.run(["sipp", f"127.0.0.1:{self.sip_port}", "-sf", str(SIPP_DIR / "register_agent.xml"),
                              "-inf", str(inf), "-m", str(len(self.agents)), "-r", "50", "-i", "127.0.0.1",
                              "-p", str(self.port), "-timeout", f"{int(timeout)}s", "-timeout_error", "-nostdin",
                              "-trace_err"], capture_output=True, text=True, timeout=timeout + 30, cwd=self.workdir)
        if res.returncode != 0:
            raise AssertionError(f"agent registration failed ({res.returncode}): {res.stdout[-1500:]}{res.stderr[-1500:]}")

    def start(self, rx, timeout: float = 60) -> None:
        """Register, then answer on the registered address (Asterisk rewrote the contacts to it).

        ``rx`` runs an Asterisk CLI command: Asterisk's first qualify OPTIONS went to the registering
        sipp, which ignores them, so every contact is qualified again once the UAS answers.
        """
        self.register()
        self.uas = subprocess.Popen(["sipp", "-sf", str(SIPP_DIR / "uas_agent.xml"), "-i", "127.0.0.1",
                                     "-p", str(self.port), "-mp", str(free_udp_port() & ~1), "-nostdin",
                                     "-nd", "-trace_err"],
                                    cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        deadline = time.monotonic() + timeout
        pending = set(self.agents)
        while pending:
            for a in sorted(pending):
                rx(f"pjsip qualify {a}")
            time.sleep(1)
            shown = rx("pjsip show contacts")
            pending = {a for a in pending if not re.search(rf"{a}/sip:\S+\s+\S+\s+Avail", shown)}
            if pending and time.monotonic() > deadline:
                raise AssertionError(f"agent phones not reachable: {sorted(pending)}\n{shown[-1500:]}")

    def stop(self) -> None:
        if self.uas and self.uas.poll() is None:
            self.uas.terminate()
            try:
                self.uas.wait(10)
            except subprocess.TimeoutExpired:
                self.uas.kill()
                self.uas.wait()


@dataclass
class LoadResult:
    rate: float
    calls: int
    successful: int = 0
    failed: int = 0
    max_concurrent: int = 0
    setup_ms: list[float] = field(default_factory=list)   # INVITE -> 200 OK per call
    seconds: float = 0.0
    log_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.successful == self.calls

    def percentile(self, p: float) -> float:
        xs = sorted(self.setup_ms)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _stat_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


def run_callers(workdir: Path, sip_port: int, rate: float, calls: int, hold_ms: int, caller_prefix: str,
                timeout: float = 300, on_progress=None) -> LoadResult:
    """``calls`` callers at ``rate`` per second, each staying ``hold_ms`` after the IVR; waits for them all."""
    run = workdir / f"uac-{caller_prefix}"
    run.mkdir(parents=True, exist_ok=True)
    cmd = ["sipp", f"127.0.0.1:{sip_port}", "-sf", str(SIPP_DIR / "uac_ivr_queue.xml"), "-s", CALLER_DID,
           "-key", "caller", caller_prefix, "-d", str(hold_ms), "-r", str(rate), "-m", str(calls),
           "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mp", str(free_udp_port() & ~1),
           "-timeout", f"{int(timeout)}s", "-timeout_error", "-nostdin", "-nd", "-max_socket", "2048",
           "-trace_stat", "-stf", "stat.csv", "-fd", "1", "-trace_msg", "-trace_err"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=run, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stop = threading.Event()
    if on_progress:
        threading.Thread(target=lambda: [on_progress() for _ in iter(lambda: stop.wait(0.5), True)],
                         daemon=True).start()
    try:
        out, _ = proc.communicate(timeout=timeout + 60)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    res = LoadResult(rate=rate, calls=calls, seconds=time.monotonic() - t0, log_tail=out[-2000:])
    rows = _stat_rows(run / "stat.csv")
    if rows:
        last = rows[-1]
        res.successful = int(last.get("SuccessfulCall(C)", 0) or 0)
        res.failed = int(last.get("FailedCall(C)", 0) or 0)
        res.max_concurrent = max(int(r.get("CurrentCall", 0) or 0) for r in rows)
    for trace in run.glob("*_messages.log"):
        res.setup_ms = setup_times(trace)
    if proc.returncode not in (0, 1) and not rows:
        raise AssertionError(f"sipp failed to run ({proc.returncode}): {out[-2000:]}")
    return res


def setup_times(trace: Path) -> list[float]:
    """INVITE sent -> 200 OK received per call, in ms, from sipp's message trace (microsecond times;
    its response-time statistics tick in 4 ms steps, too coarse for a few-ms setup)."""
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    text = trace.read_text(errors="replace")
    for block in text.split("----------------------------------------------- ")[1:]:
        head, _, msg = block.partition("\n")
        try:
            at = datetime.strptime(head.strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        except ValueError:
            continue
        body = msg.split("\n\n", 1)[1] if "\n\n" in msg else msg
        call_id = re.search(r"^Call-ID:\s*(\S+)", body, re.M | re.I)
        if not call_id:
            continue
        cid = call_id.group(1)
        if body.startswith("INVITE ") and "sent" in msg.split("\n", 1)[0]:
            sent.setdefault(cid, at)
        elif body.startswith("SIP/2.0 200") and re.search(r"^CSeq:\s*\d+ INVITE", body, re.M | re.I):
            answered.setdefault(cid, at)
    return [1000 * (answered[c] - sent[c]) for c in sent if c in answered]


class ProcSampler:
    """CPU seconds and peak RSS of some processes over a run, read from /proc every 0.5 s."""

    def __init__(self, pids: dict[str, int | None]):
        self.pids = {k: v for k, v in pids.items() if v}
        self.cpu0 = {k: self._cpu(p) for k, p in self.pids.items()}
        self.rss = {k: 0 for k in self.pids}
        self.t0 = time.monotonic()

    @staticmethod
    def _cpu(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def sample(self) -> None:
        for k, pid in self.pids.items():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.rss[k] = max(self.rss[k], int(line.split()[1]) // 1024)
            except FileNotFoundError:
                pass

    def result(self) -> dict[str, tuple[float, int]]:
        """name -> (average CPU in % of one core, peak RSS in MiB)."""
        dt = max(1e-6, time.monotonic() - self.t0)
        return {k: (100 * (self._cpu(p) - self.cpu0[k]) / dt, self.rss[k]) for k, p in self.pids.items()}
