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
import time
from pathlib import Path

from callcenter.edge.runtime import KamailioInstance
from tests.helpers import Stack, free_port, wait_for


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
    def __init__(self, tmp: Path, db_url: str, cities: dict[str, list[str]] | None = None):
        self.tmp = tmp
        net = _free_subnet()
        cities = cities or {"na": ["chengdu", "meishan", "ziyang", "leshan"], "nb": ["ganzi", "aba", "mianyang"]}
        self.kamailio_address = f"{net}.1"
        nodes = [{"name": name, "address": f"{net}.{i}", "sip_port": 5060, "ami_port": free_port(),
                  "http_port": free_port(), "cities": list(cs)}
                 for i, (name, cs) in enumerate(cities.items(), start=2)]
        self.cluster = {"nodes": nodes, "kamailio": {"address": self.kamailio_address, "sip_port": 5060}}
        prefix = f"hlcl{random.randint(10**6, 10**7 - 1)}"
        self.stacks: dict[str, Stack] = {}
        for n in nodes:
            (tmp / n["name"]).mkdir(parents=True, exist_ok=True)
            s = Stack(tmp / n["name"], db_url=db_url)
            s.overrides["state_dir"] = str(tmp / "state")        # one install: the same secrets
            s.overrides["redis"]["prefix"] = prefix
            s.overrides["cluster"] = {**self.cluster, "node": n["name"]}
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
