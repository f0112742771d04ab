"""AMI event -> wallboard WebSocket latency, with 1 and with 100 connected viewers, in one run.

    .venv/bin/python bench/bench_wallboard.py [--viewers 100] [--rate 5] [--seconds 20] [--reader raw|aiohttp]

A real stack (Asterisk + controller) takes sipp calls through IVR and queue to auto-answering agents
while N viewers hold the wallboard's WebSocket (/ws) open, as the wallboard page does. Every call update
carries ``event_at``, the Timestamp Asterisk put on the AMI event that produced it; a viewer's latency is
its receive time minus that (same host clock). The run with one viewer is the baseline for the ratio.
Viewers only store what arrives; decoding happens after the run, so the measuring side stays light.

``--reader raw`` (the default): each viewer is a bare asyncio protocol after the HTTP upgrade, which only
timestamps each TCP read (frames are parsed after the run; a frame's time is the read holding its last
byte). ``--reader aiohttp``: aiohttp's client, one task per viewer, as before 2026-12-07. With 500 viewers
in one Python process the aiohttp reader's own work per message (frame parsing, a message object, a task
wake-up) was the larger part of the figure: the last of 500 readers waited for the 499 before it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.helpers import Stack  # noqa: E402
from tests.sipp_load import AgentPhones, ProcSampler, load_stack, run_callers  # noqa: E402
from tests.ws_viewer import client_frame, open_viewers  # noqa: E402

console = Console(width=160)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


async def watch(stack: Stack, viewers: int, load) -> tuple[list[float], int]:
    """Open ``viewers`` WebSockets, run ``load`` (blocking) in a thread, return latencies in ms."""
    got: list[list[tuple[float, str]]] = [[] for _ in range(viewers)]
    url = stack.base_url.replace("http", "ws", 1) + "/ws"
    headers = {"Authorization": f"Bearer {stack.secrets.service_token}"}
    # no pool limit: aiohttp's default of 100 connections would queue the 101st viewer until one closes
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = [await http.ws_connect(url, headers=headers, heartbeat=None) for _ in range(viewers)]

        async def read(i, ws):
            async for msg in ws:
                got[i].append((time.time(), msg.data))
        readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(sockets)]
        await asyncio.to_thread(load)
        await asyncio.sleep(2)
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
    lat, messages = [], 0
    for per_viewer in got:
        for at, raw in per_viewer:
            m = json.loads(raw)
            if m.get("type") == "call" and m["call"].get("event_at"):
                messages += 1
                lat.append(1000 * (at - float(m["call"]["event_at"])))
    return lat, messages


async def watch_raw(stack: Stack, viewers: int, load, at: str = "read") -> tuple[list[float], int]:
    protos = await open_viewers("127.0.0.1", stack.cfg.system.controller.http_port, stack.secrets.service_token,
                                viewers, keep_reads=True)

    async def keepalive():
        # stored reads are cut after the run, so pings go unanswered: an unsolicited pong (RFC 6455
        # §5.5.3) tells the server's heartbeat the viewer is there
        while True:
            await asyncio.sleep(5)
            for p in protos:
                p.write(client_frame(0xA))
    pinger = asyncio.create_task(keepalive())
    await asyncio.to_thread(load)
    # until nothing has arrived for 2 s (at most 30 s): the last updates are in, however late
    quiet, last, deadline = 0.0, -1, time.monotonic() + 30
    while quiet < 2 and time.monotonic() < deadline:
        n = sum(len(p.reads) for p in protos)
        quiet, last = (quiet + 0.25 if n == last else 0.0), n
        await asyncio.sleep(0.25)
    pinger.cancel()
    lost_early = sum(p.closed.done() for p in protos)
    for p in protos:
        p.close()
    lat, messages, per_viewer = [], 0, []
    for p in protos:
        assert p.upgraded, p.reads[:1]
        mine = 0
        for at, raw in p.frames(arrival=(at == "socket")):
            m = json.loads(raw)
            if m.get("type") == "call" and m["call"].get("event_at"):
                mine += 1
                lat.append(1000 * (at - float(m["call"]["event_at"])))
        messages += mine
        per_viewer.append(mine)
    short = sum(n < max(per_viewer) for n in per_viewer)
    if short or lost_early:
        console.print(f"[red]{short} viewer(s) got fewer updates than the most ({min(per_viewer)} against "
                      f"{max(per_viewer)}); {lost_early} connection(s) ended before the run did[/]")
    return lat, messages



def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--viewers", type=int, default=100)
    ap.add_argument("--rate", type=float, default=5, help="calls per second")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--agents", type=int, default=40)
    ap.add_argument("--reader", choices=("raw", "aiohttp"), default="raw",
                    help="how the viewers read (see above); raw: bare sockets, timestamps only")
    ap.add_argument("--at", choices=("read", "socket"), default="read",
                    help="raw reader: a frame's time is when the viewers' process read it (read), or the kernel's "
                         "time stamp of its arrival at the socket (socket: without the viewers' own wait for a core)")
    args = ap.parse_args()

    stack, agents = load_stack(Path(tempfile.mkdtemp(prefix="bench-wallboard-")), args.agents)
    tmp = stack.tmp
    rows = []
    try:
        stack.start()
        phones = AgentPhones(tmp, stack.cfg.system.asterisk.sip_port, agents, stack.secrets.agent_passwords)
        phones.start(stack.asterisk.rx)
        for a in agents:
            stack.api(f"/api/agents/{a}/login", "POST", {"ready": True})
        calls = int(args.rate * args.seconds)
        for i, n in enumerate((1, args.viewers)):
            sampler = ProcSampler({"controller": stack.controller.pid})

            def load(prefix=f"1380{i}"):
                res = run_callers(tmp, stack.cfg.system.asterisk.sip_port, args.rate, calls, 4000, prefix,
                                  on_progress=sampler.sample)
                if res.failed:
                    console.print(f"[red]{res.failed} calls failed[/]")
            console.print(f"{n} viewer(s), {calls} calls at {args.rate:g}/s …")
            lat, messages = asyncio.run(watch_raw(stack, n, load, args.at) if args.reader == "raw" else watch(stack, n, load))
            cpu, rss = sampler.result()["controller"]
            rows.append((n, messages, pct(lat, 50), pct(lat, 99), max(lat, default=float("nan")), cpu, rss))
        phones.stop()
    finally:
        stack.close()

    table = Table(title="AMI event -> wallboard WebSocket latency")
    for col in ("viewers", "call updates received", "p50 ms", "p99 ms", "max ms", "p99 vs 1 viewer",
                "controller CPU %", "controller RSS MB"):
        table.add_column(col)
    for n, messages, p50, p99, mx, cpu, rss in rows:
        table.add_row(str(n), str(messages), f"{p50:.1f}", f"{p99:.1f}", f"{mx:.1f}", f"{p99 / rows[0][3]:.2f}×",
                      f"{cpu:.0f}", str(rss))
    console.print(table)
    console.print(f"updates per call per viewer: {rows[-1][1] / max(1, args.viewers) / (args.rate * args.seconds):.1f} "
                  f"({args.reader} reader" + (f", time at the {args.at})" if args.reader == "raw" else ")"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
