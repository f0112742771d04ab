"""SIPp load against a Stack: agent phones registered and auto-answering from one sipp UAS, callers
from a sipp UAC through the carrier trunk (IVR with RFC 2833 DTMF pcaps, audio, queue).

Used by the load benchmark (bench/bench_load.py) and the fault suite (tests/integration/test_faults.py).
"""
from __future__ import annotations

import csv
from datetime import datetime
import os
import re
import signal
import socket
import struct
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
    setup_ms: list[float] = field(default_factory=list)   # INVITE -> 200 OK per call, as sipp saw it
    wire_setup_ms: list[float] = field(default_factory=list)   # the same on the wire (WireCapture)
    seconds: float = 0.0
    log_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.successful == self.calls

    def percentile(self, p: float, wire: bool = False) -> float:
        xs = sorted(self.wire_setup_ms if wire else self.setup_ms)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _stat_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


def run_callers(workdir: Path, sip_port: int, rate: float, calls: int, hold_ms: int, caller_prefix: str,
                timeout: float = 300, on_progress=None, wire: bool = False) -> LoadResult:
    """``calls`` callers at ``rate`` per second, each staying ``hold_ms`` after the IVR; waits for them all.
    ``wire``: also time each setup on the wire (``WireCapture``)."""
    run = workdir / f"uac-{caller_prefix}"
    run.mkdir(parents=True, exist_ok=True)
    port = free_udp_port()
    cmd = ["sipp", f"127.0.0.1:{sip_port}", "-sf", str(SIPP_DIR / "uac_ivr_queue.xml"), "-s", CALLER_DID,
           "-key", "caller", caller_prefix, "-d", str(hold_ms), "-r", str(rate), "-m", str(calls),
           "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_udp_port() & ~1),
           "-timeout", f"{int(timeout)}s", "-timeout_error", "-nostdin", "-nd", "-max_socket", "2048",
           "-trace_stat", "-stf", "stat.csv", "-fd", "1", "-trace_msg", "-trace_err"]
    capture = WireCapture(run / "wire.pcap", port) if wire else None
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
        if capture is not None:
            capture.stop()
    res = LoadResult(rate=rate, calls=calls, seconds=time.monotonic() - t0, log_tail=out[-2000:])
    rows = _stat_rows(run / "stat.csv")
    if rows:
        last = rows[-1]
        res.successful = int(last.get("SuccessfulCall(C)", 0) or 0)
        res.failed = int(last.get("FailedCall(C)", 0) or 0)
        res.max_concurrent = max(int(r.get("CurrentCall", 0) or 0) for r in rows)
    for trace in run.glob("*_messages.log"):
        res.setup_ms = setup_times(trace)
    if capture is not None:
        res.wire_setup_ms = capture.setup_times()
    if proc.returncode not in (0, 1) and not rows:
        raise AssertionError(f"sipp failed to run ({proc.returncode}): {out[-2000:]}")
    return res


def _setup_ms(messages) -> list[float]:
    """INVITE -> 200 OK per call in ms, from (time, sent by the caller, SIP text) in time order: the first
    INVITE of each Call-ID (a retransmission does not restart the clock), its first 200 OK to INVITE."""
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    for at, outgoing, body in messages:
        call_id = re.search(r"^(?:Call-ID|i):\s*(\S+)", body, re.M | re.I)
        if not call_id:
            continue
        cid = call_id.group(1)
        if outgoing and body.startswith("INVITE "):
            sent.setdefault(cid, at)
        elif not outgoing and body.startswith("SIP/2.0 200") and re.search(r"^CSeq:\s*\d+ INVITE", body, re.M | re.I):
            answered.setdefault(cid, at)
    return [1000 * (answered[c] - sent[c]) for c in sent if c in answered]


def sipp_trace_messages(trace: Path):
    """(time, sent by sipp, SIP text) of each message in a sipp message trace (-trace_msg), in order."""
    text = trace.read_text(errors="replace")
    for block in text.split("----------------------------------------------- ")[1:]:
        head, _, msg = block.partition("\n")
        try:
            at = datetime.strptime(head.strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        except ValueError:
            continue
        body = msg.split("\n\n", 1)[1] if "\n\n" in msg else msg
        yield at, "sent" in msg.split("\n", 1)[0], body


def setup_times(trace: Path) -> list[float]:
    """INVITE sent -> 200 OK received per call, in ms, from sipp's message trace (microsecond times;
    its response-time statistics tick in 4 ms steps, too coarse for a few-ms setup). The 200 OK's time is
    when sipp got to it: its own scheduling on a busy core is in the figure."""
    return _setup_ms(sipp_trace_messages(trace))


class WireCapture:
    """The callers' SIP on the loopback, captured by tcpdump (kernel timestamps, ns) while they run.

    A packet is stamped when its sender hands it to the loopback: an INVITE when sipp sends it, a 200 OK
    when Asterisk does. So INVITE -> 200 OK on the wire is Asterisk's own setup time, whatever else waits
    for the core sipp runs on (sipp's own figure also has how long sipp took to read the answer)."""

    def __init__(self, path: Path, port: int):
        self.path, self.port = path, port
        self.proc = subprocess.Popen(["tcpdump", "-i", "lo", "-nn", "-Z", "root", "-B", "8192",
                                      "--time-stamp-precision=nano", "-w", str(path), "udp", "port", str(port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()          # "listening on lo, …" once the filter is in place
        if "listening" not in line:
            self.proc.kill()
            raise RuntimeError(f"tcpdump did not start: {line.strip() or self.proc.wait()}")

    def stop(self) -> None:
        # tcpdump reads the kernel's ring in blocks handed over after at most its 1 s timeout, and a block
        # still open at SIGINT is not written: wait that out (not --immediate-mode: a wake-up per packet,
        # on sipp's core when pinned, just as a 200 OK arrives)
        time.sleep(1.2)
        self.proc.send_signal(signal.SIGINT)        # flushes the file and reports drops
        try:
            err = self.proc.communicate(timeout=15)[1]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            err = self.proc.communicate()[1]
        dropped = re.search(r"(\d+) packets dropped by kernel", err or "")
        if dropped and int(dropped.group(1)):
            raise RuntimeError(f"tcpdump: {dropped.group(0)}: the wire timing would miss calls")

    def setup_times(self) -> list[float]:
        return _setup_ms(read_pcap_udp(self.path, self.port))


def read_pcap_udp(path: Path, port: int):
    """(time, sent from ``port``, payload) of each IPv4/UDP packet of a pcap file (Ethernet framing, as on lo)."""
    data = path.read_bytes()
    magic = data[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    scale = 1e-9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e-6
    linktype = struct.unpack(order + "I", data[20:24])[0]
    if linktype != 1:
        raise ValueError(f"{path}: link type {linktype}, not Ethernet")
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(order + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(pkt) < 42 or pkt[12:14] != b"\x08\x00" or pkt[23] != 17:
            continue
        ip = 14 + 4 * (pkt[14] & 0x0F)
        src = struct.unpack(">H", pkt[ip:ip + 2])[0]
        yield sec + frac * scale, src == port, pkt[ip + 8:].decode("utf-8", "replace")


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


LAYOUTS = ("shared", "pinned")
ASTERISK_CORE, OTHERS_CORE = 0, 1


def pin(layout: str) -> None:
    """This process (and so every child started from now on: sipp, the controller, the AMI client) on core
    1 when pinned, on every core when shared. Asterisk is moved to core 0 once started (pin_asterisk)."""
    cores = set(range(os.cpu_count() or 1))
    os.sched_setaffinity(0, {OTHERS_CORE} if layout == "pinned" and len(cores) > 1 else cores)


def pin_asterisk(stack: Stack, layout: str) -> None:
    pid = stack.asterisk.pid()
    if layout != "pinned" or not pid or (os.cpu_count() or 1) < 2:
        return
    # every thread Asterisk has now (taskset -a, but a thread ending meanwhile is no failure); threads it
    # starts later inherit their creator's affinity
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), {ASTERISK_CORE})
        except (ProcessLookupError, FileNotFoundError):
            pass
