"""The edge and two nodes, measured in one run on one machine (tests/cluster.py: Kamailio + two Asterisk
nodes + their controllers, one PostgreSQL database, one Redis prefix).

    .venv/bin/python bench/bench_cluster.py [--calls 30] [--rates 4,8,12] [--seconds 10] [--agents 12]

Prints:
  1. call setup (INVITE -> 200 OK at the caller) through Kamailio against straight to the node's
     Asterisk, interleaved in rounds, as medians and their ratio;
  2. failover: sipp calls at 2/s, one Asterisk SIGKILLed: seconds until the first new call is answered
     on the other node, the slowest new call's setup, how many calls failed (only those in progress on
     the dead node may);
  3. capacity: the highest of --rates (calls/s for --seconds) with zero failed calls, with every call
     to one node, and with the calls split over both nodes' cities, and the ratio.

On one machine both nodes share its cores, so (3) shows what the edge and the sharding cost, not the
capacity separate hosts add (docs/scale-out.md).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cluster import Background, Cluster, EdgePhones, edge_callers, write_roster  # noqa: E402
from tests.helpers import postgres_database  # noqa: E402

LESHAN, MIANYANG = "083312348", "081612348"     # na first, nb first


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def setup_ratio(c: Cluster, tmp: Path, calls: int, rounds: int = 3) -> tuple[float, float]:
    """Median setup through the edge and straight to na, alternating rounds of ``calls`` calls at 2/s.
    Straight calls leave from Kamailio's address (another port), which is what na takes for the trunk."""
    na = next(n for n in c.cluster["nodes"] if n["name"] == "na")
    edge, direct = [], []
    for r in range(rounds):
        res = edge_callers(c, tmp, LESHAN, rate=2, calls=calls, hold_ms=500, prefix=f"15{r}1000")
        edge += [x.setup_ms for x in res.calls if x.setup_ms is not None]
        res = edge_callers(c, tmp, LESHAN, rate=2, calls=calls, hold_ms=500, prefix=f"15{r}2000",
                           target=f"{na['address']}:5060", local_ip=c.kamailio_address)
        direct += [x.setup_ms for x in res.calls if x.setup_ms is not None]
    return _median(edge), _median(direct)


def failover(c: Cluster, tmp: Path) -> tuple[float, float, int, int, int]:
    na = next(n["address"] for n in c.cluster["nodes"] if n["name"] == "na")
    nb = next(n["address"] for n in c.cluster["nodes"] if n["name"] == "nb")
    load = Background(lambda: edge_callers(c, tmp, LESHAN, rate=2, calls=40, hold_ms=2000, prefix="1560000"))
    time.sleep(8)
    killed = time.time()
    c.kill_asterisk("na")
    res = load.result(400)
    after = [x for x in res.calls if x.invited > killed]
    on_nb = [x for x in after if x.node == nb and x.answered]
    first = min(x.answered for x in on_nb) - killed if on_nb else float("nan")
    worst = max(x.setup_ms for x in on_nb) / 1000 if on_nb else float("nan")
    failed = sum(1 for x in res.calls if not x.ended)
    in_progress = sum(1 for x in res.calls if x.invited <= killed and x.node == na)
    new_failed = sum(1 for x in after if not x.ended)
    c.restart_asterisk("na")
    c.wait_nodes_active(["na"])
    return first, worst, failed, in_progress, new_failed


def capacity(c: Cluster, tmp: Path, rates: list[float], seconds: float, split: bool) -> float:
    best = 0.0
    for rate in rates:
        n = int(rate * seconds)
        tag = "2" if split else "1"
        if split:
            a = Background(lambda: edge_callers(c, tmp, LESHAN, rate=rate / 2, calls=n // 2, hold_ms=3000,
                                                prefix=f"16{tag}{int(rate):02d}0"))
            b = Background(lambda: edge_callers(c, tmp, MIANYANG, rate=rate / 2, calls=n // 2, hold_ms=3000,
                                                prefix=f"16{tag}{int(rate):02d}5"))
            results = [a.result(600), b.result(600)]
        else:
            results = [edge_callers(c, tmp, LESHAN, rate=rate, calls=n, hold_ms=3000, prefix=f"16{tag}{int(rate):02d}0")]
        failed = sum(sum(1 for x in r.calls if not x.ended) for r in results)
        total = sum(len(r.calls) for r in results)
        print(f"  {'two nodes' if split else 'one node '} {rate:5.1f} calls/s: {total} calls, {failed} failed",
              flush=True)
        if failed or total < n - 1:
            break
        best = rate
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=10, help="calls per setup-latency round")
    ap.add_argument("--rates", default="4,8,12")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--agents", type=int, default=12)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    roster = tmp / "agents.yaml"
    agents = write_roster(roster, args.agents, ["leshan", "mianyang"])
    with postgres_database() as url:
        c = Cluster(tmp, url, agents_file=roster, rtp_ports=2000)
        c.start()
        phones = EdgePhones(c, tmp / "phones", agents)
        try:
            phones.start()
            for s in c.stacks.values():
                for a in agents:
                    s.api(f"/api/agents/{a}/login", "POST", {"ready": True})
            edge_ms, direct_ms = setup_ratio(c, tmp, args.calls)
            print(f"call setup: through Kamailio {edge_ms:.1f} ms, straight to Asterisk {direct_ms:.1f} ms "
                  f"(medians): ratio {edge_ms / direct_ms:.2f}", flush=True)
            first, worst, failed, in_progress, new_failed = failover(c, tmp)
            print(f"failover: first new call answered on the standby {first:.2f} s after the SIGKILL; slowest new "
                  f"call setup {worst:.2f} s; failed {failed} (in progress on the dead node {in_progress}; "
                  f"new calls failed {new_failed})", flush=True)
            rates = [float(r) for r in args.rates.split(",")]
            print("capacity (zero failed calls):", flush=True)
            c.stacks["nb"].asterisk.stop()           # one node: nb down, Leshan on na
            c.wait_nodes_active(["na"])
            time.sleep(3)
            one = capacity(c, tmp, rates, args.seconds, split=False)
            c.restart_asterisk("nb")
            c.wait_nodes_active()
            two = capacity(c, tmp, rates, args.seconds, split=True)
            ratio = f"{two / one:.2f}" if one else "n/a"
            print(f"capacity: one node {one:.0f} calls/s, two nodes {two:.0f} calls/s (ratio {ratio}; one machine: "
                  f"both nodes share its cores)", flush=True)
        finally:
            phones.stop()
            c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
