"""A real cluster for tests and the bench: Kamailio (the edge) and two or more Asterisk nodes, each with
its own controller, sharing one database (PostgreSQL in the tests) and one Redis prefix.

Every cluster gets its own 127.a.b.0/24 (all of 127/8 is local on Linux): Kamailio on .1, node i on
.1+i, each on port 5060, so parallel test workers never collide and the dispatcher tells the nodes
apart by address as it would on separate hosts. Callers and phones come from 127.0.0.1 (the carrier's
trunk.match) and talk to Kamailio only."""
from __future__ import annotations

import contextlib
import random
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from callcenter.edge.runtime import KamailioInstance
from tests.helpers import ROOT, Stack, free_port, wait_for
from tests.sipp_load import SIPP_DIR, free_udp_port, sipp_trace_messages


def _free_subnet() -> str:
    for _ in range(50):
        net = f"127.{random.randint(20, 250)}.{random.randint(1, 250)}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((f"{net}.1", 5060))
            except OSError:
                continue
        return net
    raise RuntimeError("no free 127.x.y.0/24 for a cluster")


class Cluster:
    def __init__(self, tmp: Path, db_url: str, cities: dict[str, list[str]] | None = None,
                 agents_file: Path | None = None, rtp_ports: int = 100, browser: list[str] | None = None):
        self.tmp = tmp
        net = _free_subnet()
        cities = cities or {"na": ["chengdu", "meishan", "ziyang", "leshan"], "nb": ["ganzi", "aba", "mianyang"]}
        self.kamailio_address = f"{net}.1"
        taken: set[int] = set()

        def port() -> int:          # free now, and not handed to another of this cluster's sockets
            p = free_port()
            while p in taken:
                p = free_port()
            taken.add(p)
            return p
        nodes = [{"name": name, "address": f"{net}.{i}", "sip_port": 5060, "ami_port": port(),
                  "http_port": port(), "cities": list(cs)}
                 for i, (name, cs) in enumerate(cities.items(), start=2)]
        self.cluster = {"nodes": nodes, "kamailio": {"address": self.kamailio_address, "sip_port": 5060}}
        if browser:
            # the desks' browser phones register at the edge's secure WebSocket
            self.cluster["kamailio"]["wss_port"] = port()
        prefix = f"hlcl{random.randint(10**6, 10**7 - 1)}"
        self.stacks: dict[str, Stack] = {}
        for n in nodes:
            (tmp / n["name"]).mkdir(parents=True, exist_ok=True)
            s = Stack(tmp / n["name"], db_url=db_url)
            s.overrides["state_dir"] = str(tmp / "state")        # one install: the same secrets
            s.overrides["redis"]["prefix"] = prefix
            s.overrides["cluster"] = {**self.cluster, "node": n["name"]}
            if browser:
                s.overrides["asterisk"]["wss_port"] = port()
                s.overrides["phones"] = {"browser": list(browser)}
            if agents_file:
                s.overrides["agents_file"] = str(agents_file)
            if rtp_ports > 100:
                # every node binds RTP to its own address: the nodes may share one range
                s.overrides["asterisk"].update({"rtp_start": 30000, "rtp_end": 30000 + rtp_ports - 1})
            s.reconfigure()
            self.stacks[n["name"]] = s
        self.edge = KamailioInstance(self.first.cfg, tmp / "kamailio")

    @property
    def first(self) -> Stack:
        return next(iter(self.stacks.values()))

    def node(self, name: str) -> Stack:
        return self.stacks[name]

    def start(self) -> None:
        started: list[Stack] = []
        try:
            for s in self.stacks.values():
                s.start()
                started.append(s)
            self.edge.install(self.first.secrets)
            self.edge.start()
            self.wait_nodes_active()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.edge.stop()
        for s in self.stacks.values():
            with contextlib.suppress(Exception):
                s.close()

    # ---- the edge's view
    def dispatcher(self) -> dict[str, str]:
        """{node address: dispatcher flags}: 'AP' active, 'IP' inactive (probing), ... (set 1's view)."""
        out = self.edge.rpc("dispatcher.list")
        return {m.group(1): m.group(2) for m in re.finditer(r"URI: sip:([0-9.]+):\d+\s+FLAGS: (\w+)", out)}

    def node_state(self, name: str) -> str:
        addr = next(n["address"] for n in self.cluster["nodes"] if n["name"] == name)
        return self.dispatcher().get(addr, "")

    def wait_nodes_active(self, names: list[str] | None = None, timeout: float = 30) -> None:
        for name in names or list(self.stacks):
            wait_for(lambda: self.node_state(name).startswith("A"), timeout, f"node {name} active at the edge")

    def registered(self) -> set[str]:
        """The phones Kamailio has a binding for (usrloc)."""
        out = self.edge.rpc("ul.dump", "brief")
        return set(re.findall(r"AoR: (\S+)", out))

    def agent_dialogs(self, agent: str) -> int:
        out = self.edge.rpc("dlg.profile_get_size", "agent", agent)
        m = re.search(r"(\d+)", out)
        return int(m.group(1)) if m else 0

    # ---- faults
    def kill_asterisk(self, name: str) -> None:
        self.stacks[name].asterisk.kill()

    def restart_asterisk(self, name: str) -> None:
        s = self.stacks[name]
        s.asterisk.start()
        s.wait_controller(90)

    def kill_controller(self, name: str) -> None:
        s = self.stacks[name]
        if s.controller and s.controller.poll() is None:
            s.controller.send_signal(signal.SIGKILL)
            s.controller.wait()


def wait_time(pred, timeout: float) -> float:
    """Seconds until ``pred()`` is true (a measurement, never asserted against a time)."""
    t0 = time.monotonic()
    wait_for(pred, timeout, "condition")
    return time.monotonic() - t0


def write_roster(path: Path, count: int, queues: list[str], first: int = 3001) -> list[str]:
    """config/agents.yaml plus ``count`` load-test agents in ``queues``: the file for ``agents_file``."""
    data = yaml.safe_load((ROOT / "config" / "agents.yaml").read_text(encoding="utf-8"))
    ids = [f"agent{first + i}" for i in range(count)]
    data["agents"] += [{"id": a, "name": f"压测坐席{i + 1}", "queues": list(queues), "languages": ["zh"], "gender": "m"}
                       for i, a in enumerate(ids)]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return ids


class EdgePhones:
    """Many agents' phones on one UDP port, registered at the edge by sipp (digest auth), answered by a
    sipp UAS that keeps Kamailio's Record-Route (so BYEs pass the edge)."""

    def __init__(self, cluster: Cluster, workdir: Path, agents: list[str]):
        self.cluster, self.workdir, self.agents = cluster, workdir, agents
        self.port = free_udp_port()
        self.uas: subprocess.Popen | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float = 60) -> None:
        pw = self.cluster.first.secrets.agent_passwords
        inf = self.workdir / "agents.csv"
        inf.write_text("SEQUENTIAL\n" + "".join(
            f"{a};[authentication username={a} password={pw[a]}]\n" for a in self.agents))
        res = subprocess.run(["sipp", f"{self.cluster.kamailio_address}:5060", "-sf",
                              str(SIPP_DIR / "register_agent.xml"), "-inf", str(inf), "-m", str(len(self.agents)),
                              "-r", "50", "-i", "127.0.0.1", "-p", str(self.port), "-timeout", f"{int(timeout)}s",
                              "-timeout_error", "-nostdin", "-trace_err"],
                             capture_output=True, text=True, timeout=timeout + 30, cwd=self.workdir)
        if res.returncode != 0:
            raise AssertionError(f"registration at the edge failed ({res.returncode}): {res.stdout[-1500:]}")
        self.uas = subprocess.Popen(["sipp", "-sf", str(SIPP_DIR / "uas_agent_edge.xml"), "-i", "127.0.0.1",
                                     "-p", str(self.port), "-mp", str(free_udp_port() & ~1), "-nostdin", "-aa",
                                     "-nd", "-trace_err"],
                                    cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: set(self.agents) <= self.cluster.registered(), 20, "phones registered at the edge")

    def stop(self) -> None:
        if self.uas and self.uas.poll() is None:
            self.uas.terminate()
            try:
                self.uas.wait(10)
            except subprocess.TimeoutExpired:
                self.uas.kill()
                self.uas.wait()


@dataclass
class EdgeCall:
    call_id: str
    invited: float                    # INVITE first sent (epoch seconds)
    answered: float | None = None     # 200 OK to the INVITE
    node: str | None = None           # the address in the 200 OK's Contact: which Asterisk took it
    ended: bool = False               # 200 OK to our BYE
    caller: str = ""                  # the calling number (the record's caller_number)

    @property
    def setup_ms(self) -> float | None:
        return None if self.answered is None else 1000 * (self.answered - self.invited)


@dataclass
class EdgeLoad:
    calls: list[EdgeCall] = field(default_factory=list)
    successful: int = 0
    failed: int = 0
    log_tail: str = ""


def edge_callers(cluster: Cluster, workdir: Path, did: str, rate: float, calls: int, hold_ms: int,
                 prefix: str, timeout: float = 300, target: str | None = None,
                 local_ip: str = "127.0.0.1") -> EdgeLoad:
    """``calls`` sipp callers at ``rate``/s to ``did`` through the edge (or ``target`` host:port, e.g. a
    node directly), each staying ``hold_ms`` after the IVR; per call: when invited, answered, by which
    node, whether its BYE was answered."""
    run = workdir / f"uac-{prefix}"
    run.mkdir(parents=True, exist_ok=True)
    cmd = ["sipp", target or f"{cluster.kamailio_address}:5060", "-sf", str(SIPP_DIR / "uac_ivr_queue_edge.xml"),
           "-s", did, "-key", "caller", prefix, "-d", str(hold_ms), "-r", str(rate), "-m", str(calls),
           "-i", local_ip, "-p", str(free_udp_port()), "-mp", str(free_udp_port() & ~1),
           "-timeout", f"{int(timeout)}s", "-timeout_error", "-nostdin", "-nd", "-max_socket", "2048",
           "-trace_stat", "-stf", "stat.csv", "-fd", "1", "-trace_msg", "-trace_err", "-aa"]
    proc = subprocess.Popen(cmd, cwd=run, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    res = EdgeLoad(log_tail=out[-2000:])
    stat = run / "stat.csv"
    if stat.exists():
        last = stat.read_text().strip().splitlines()[-1].split(";")
        head = stat.read_text().splitlines()[0].split(";")
        row = dict(zip(head, last))
        res.successful = int(row.get("SuccessfulCall(C)", 0) or 0)
        res.failed = int(row.get("FailedCall(C)", 0) or 0)
    for trace in run.glob("*_messages.log"):
        res.calls = _calls(trace)
    return res


def _calls(trace: Path) -> list[EdgeCall]:
    calls: dict[str, EdgeCall] = {}
    for at, sent, body in sipp_trace_messages(trace):
        cid = re.search(r"^Call-ID:\s*(\S+)", body, re.M | re.I)
        if not cid:
            continue
        c = calls.get(cid.group(1))
        if body.startswith("INVITE ") and sent and c is None:
            frm = re.search(r"^From:\s*<?sip:([^@>]+)@", body, re.M | re.I)
            calls[cid.group(1)] = EdgeCall(cid.group(1), at, caller=frm.group(1) if frm else "")
        elif c and body.startswith("SIP/2.0 200") and re.search(r"^CSeq:\s*\d+ INVITE", body, re.M | re.I):
            if c.answered is None:
                c.answered = at
                m = re.search(r"^Contact:\s*<?sip:(?:[^@>]*@)?([0-9.]+)", body, re.M | re.I)
                c.node = m.group(1) if m else None
        elif c and body.startswith("SIP/2.0 200") and re.search(r"^CSeq:\s*\d+ BYE", body, re.M | re.I):
            c.ended = True
    return sorted(calls.values(), key=lambda c: c.invited)


class Background(threading.Thread):
    """Run ``fn`` in a thread; ``result()`` waits for it and re-raises its error."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.value, self.error = fn, None, None
        self.start()

    def run(self):
        try:
            self.value = self.fn()
        except BaseException as e:      # handed to the test thread
            self.error = e

    def result(self, timeout: float):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError(f"background work still running after {timeout}s")
        if self.error:
            raise self.error
        return self.value
