"""SIPp load through the carrier trunk into IVR, queue and auto-answering agents, at rising call rates:
our stack against the same Asterisk running a pure-dialplan IVR+queue, all measured in one run.

    .venv/bin/python bench/bench_load.py [--rates 10,20,30] [--seconds 15] [--hold 10000] [--agents 100]
                                         [--layouts shared,pinned] [--setups dialplan,controller]
                                         [--repeat 3] [--no-wire]

Four setups on one Asterisk instance, restarted between runs, interleaved per rate so that a noisy
neighbour on the machine affects all alike:
  baseline    a hand-written dialplan: answer, the same two menus and prompts (Read), recording, Queue()
              with static members — what Asterisk alone does for an IVR+queue
  dialplan    our generated dialplan (hours, priority, overflow, wait announcements, events) with the
              controller stopped: what our routing costs Asterisk
  ami         our dialplan, the controller stopped, and a bare AMI client with the controller's login
              reading every event and doing nothing with it: what the AMI session alone costs Asterisk
  controller  our dialplan with the controller up (AMI events, records, tickets, wallboard, metrics)
Each caller: INVITE, DTMF 1 (Mandarin) and 2 (legal aid) from sip-tester's RFC 2833 pcaps, 7 s of G.711
audio, then ``--hold`` ms in the queue or with an agent, then BYE. Agents: one sipp UAS answering for
``--agents`` registered accounts.

Two CPU layouts (``--layouts``), each run in turn for every rate and setup:
  shared      every process on both cores, as the kernel likes (a development box)
  pinned      Asterisk on core 0 alone; sipp, the agents' UAS, the AMI client and the controller on core 1
              (taskset): what production sees, where Asterisk has cores of its own
Events per call: what the AMI session received (the ``ami`` client's count; the controller's
``hotline_ami_events_total`` by event name) divided by the calls offered.

Setup latency = INVITE -> 200 OK, twice: as sipp saw it (its message trace: when sipp got to the 200 OK, so
its own wait for a busy core is in it), and on the wire (tcpdump on the loopback: kernel timestamps of the
caller's INVITE and of Asterisk's 200 OK, which is what Asterisk took). ``--repeat N`` runs every setup N
times, interleaved; the goals take the median of the N ratios, each against the dialplan run of its repeat.
Concurrency = calls open at once (sipp's CurrentCall). Zero failures = every call completed its scenario (sipp) and, with the controller,
every call has its ended record in the database.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from callcenter.asterisk.confgen import REC_OPTIONS  # noqa: E402
from tests.helpers import Stack  # noqa: E402
from tests.sipp_load import LAYOUTS, CALLER_DID, AgentPhones, LoadResult, ProcSampler, load_stack, pin, pin_asterisk, run_callers  # noqa: E402

SETUPS = ("baseline", "dialplan", "ami", "controller")
console = Console(width=230)


def baseline_configs(stack: Stack, agents: list[str]) -> dict[str, str]:
    """extensions.conf and queues.conf of a pure-dialplan IVR+queue doing the same job for these callers."""
    snd = stack.asterisk.paths.sounds
    langs = [l.code for l in stack.cfg.ivr.languages if not l.cities]   # offered on every number (not Yi)
    first = "&".join([f"{snd}/zh/greeting"] + [f"{snd}/{c}/lang_offer" for c in langs])
    q = stack.cfg.system.queues
    extensions = f"""[general]
[globals]
[hotline-trunk]
exten => _X.,1,Answer()
 same => n,Read(LANG,{first},1,,1,5)
 same => n,Set(CHANNEL(language)=zh)
 same => n,Read(SVC,{snd}/zh/service_menu,1,,1,5)
 same => n,Set(HOTLINE_REC=${{STRFTIME(${{EPOCH}},,%Y%m%d)}}/${{UNIQUEID}}.wav)
 same => n,MixMonitor(${{HOTLINE_REC}},{REC_OPTIONS})
 same => n,Playback({snd}/zh/please_hold)
 same => n,Queue(leshan,t,,,600)
 same => n,Hangup()
[hotline-agents]
"""
    queues = f"""[general]
persistentmembers = no
[leshan]
strategy = {q.strategy}
timeout = {q.ring_seconds}
retry = 2
wrapuptime = {q.wrapup_seconds}
ringinuse = no
autofill = yes
musicclass = default
""" + "".join(f"member => PJSIP/{a}\n" for a in agents)
    return {"extensions.conf": extensions, "queues.conf": queues}


def listen_ami(port: int) -> None:
    """The ``ami`` setup's client (own process): the controller's AMI login and filters, events read and
    dropped; prints how many it read when stopped."""
    from callcenter.asterisk.ami import AmiClient

    async def run() -> None:
        ami = AmiClient("127.0.0.1", port, os.environ["HOTLINE_AMI_USER"], os.environ["HOTLINE_AMI_SECRET"])
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await ami.start()
        n = 0

        async def drain() -> None:
            nonlocal n
            while True:
                await ami.events.get()
                n += 1
        task = asyncio.create_task(drain())
        await stop.wait()
        task.cancel()
        ami.close()
        print(n, flush=True)
    asyncio.run(run())


def start_listener(stack: Stack) -> subprocess.Popen:
    env = {**os.environ, "HOTLINE_AMI_USER": stack.secrets.ami_user, "HOTLINE_AMI_SECRET": stack.secrets.ami_secret}
    proc = subprocess.Popen([sys.executable, __file__, "--listen-ami", str(stack.cfg.system.asterisk.ami_port)],
                            env=env, stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)    # logged in before the first call
    return proc


def stop_listener(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return int(out.strip() or 0)


def events_by_name(stack: Stack) -> dict[str, float]:
    """The controller's hotline_ami_events_total, by event name (UserEvents by their UserEvent name when
    the metric has them, else all together)."""
    req = urllib.request.Request(stack.base_url + "/metrics",
                                 headers={"Authorization": f"Bearer {stack.secrets.service_token}"})
    text = urllib.request.urlopen(req, timeout=10).read().decode()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^hotline_ami_events_total{event="([^"]+)"} ([0-9.e+]+)$', text, re.M)}


def prepare(stack: Stack, setup: str, phones: AgentPhones, agents: list[str], layout: str = "shared") -> None:
    """Restart Asterisk with this setup's dialplan; agents registered, logged in, answering."""
    pin(layout)
    phones.stop()
    stack.stop_controller()
    stack.asterisk.stop()
    stack.asterisk.install(stack.secrets, log=lambda *a: None)
    if setup == "baseline":
        for name, text in baseline_configs(stack, agents).items():
            stack.asterisk.paths.host(stack.asterisk.paths.etc / name).write_text(text)
    stack.asterisk.start()
    pin_asterisk(stack, layout)
    phones.start(stack.asterisk.rx)
    if setup != "baseline":
        stack.start_controller()
        for a in agents:
            stack.api(f"/api/agents/{a}/login", "POST", {"ready": True})
        if setup in ("dialplan", "ami"):
            stack.stop_controller()     # queue memberships stay in Asterisk (astdb)
    time.sleep(1)


def ended_records(db: Path, prefix: str) -> int:
    """Ended records of the run's incoming calls (voicemail callbacks dialled out have records too)."""
    with sqlite3.connect(db) as c:
        return c.execute("SELECT count(*) FROM call_records WHERE caller_number LIKE ? AND status = 'ended' "
                         "AND dialed_number = ?", (prefix + "%", CALLER_DID)).fetchone()[0]


def histogram(stack: Stack, name: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of a Prometheus histogram from the controller's /metrics."""
    req = urllib.request.Request(stack.base_url + "/metrics",
                                 headers={"Authorization": f"Bearer {stack.secrets.service_token}"})
    text = urllib.request.urlopen(req, timeout=10).read().decode()
    out = []
    for m in re.finditer(rf'^{name}_bucket{{le="([^"]+)"}} ([0-9.e+]+)$', text, re.M):
        out.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2))))
    return out


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Upper bound of the bucket holding the q-quantile (Prometheus buckets: an upper estimate)."""
    total = buckets[-1][1] if buckets else 0
    if not total:
        return float("nan")
    for le, n in buckets:
        if n >= q * total:
            return le
    return float("inf")


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b > 0 else "n/a"


def both_ratios(r: dict, dial: dict, q: str) -> str:
    """``r``'s setup percentile against the dialplan's: as sipp saw it, and on the wire when captured."""
    sipp = ratio(r[f"setup_{q}_ms"], dial[f"setup_{q}_ms"])
    if f"wire_{q}_ms" not in r or f"wire_{q}_ms" not in dial:
        return sipp
    return f"{sipp} / {ratio(r[f'wire_{q}_ms'], dial[f'wire_{q}_ms'])}"


def goals(results: dict[tuple[float, str, str, int], dict]) -> None:
    """Issue 22's goals, against our own dialplan without the controller in the same repeat and layout:
    20 calls/s p50 <= 1.05x pinned and <= 1.2x shared; 30 calls/s p99 <= 2x with Asterisk's CPU within
    10 points. With repeats, the median of the repeats' ratios decides (and their range is shown); each is
    judged as sipp saw the setup and on the wire."""
    ratios: dict[tuple[str, str], list[float]] = {}
    for (rate, layout, setup, rep), r in results.items():
        dial = results.get((rate, layout, "dialplan", rep))
        if setup != "controller" or dial is None:
            continue
        for where, key in (("sipp", "setup"), ("wire", "wire")):
            if f"{key}_p50_ms" not in r or f"{key}_p50_ms" not in dial:
                continue
            if rate == 20:
                limit = 1.05 if layout == "pinned" else 1.2
                goal = f"20 calls/s, {layout}: setup p50 vs dialplan ≤ {limit}× ({where})"
                ratios.setdefault((goal, f"{limit}"), []).append(r[f"{key}_p50_ms"] / dial[f"{key}_p50_ms"])
            if rate == 30:
                goal = f"30 calls/s, {layout}: setup p99 vs dialplan ≤ 2× ({where})"
                ratios.setdefault((goal, "2"), []).append(r[f"{key}_p99_ms"] / dial[f"{key}_p99_ms"])
        if rate == 30:
            goal = f"30 calls/s, {layout}: Asterisk CPU within 10 points of dialplan"
            ratios.setdefault((goal, "+10"), []).append(r["asterisk_cpu"] - dial["asterisk_cpu"])
    if not ratios:
        return
    t = Table(title="Goals (issue 22): the median over the repeats, same run")
    for col in ("goal", "median", "repeats", "met"):
        t.add_column(col)
    for (goal, limit), xs in ratios.items():
        mid = statistics.median(xs)
        points = limit.startswith("+")
        fmt = (lambda x: f"{x:+.0f}") if points else (lambda x: f"{x:.2f}×")
        t.add_row(goal, fmt(mid), ", ".join(fmt(x) for x in xs),
                  "[green]yes[/]" if mid <= float(limit) else "[red]no[/]")
    console.print(t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="10,20,30", help="calls per second, comma separated")
    ap.add_argument("--seconds", type=float, default=15, help="how long each rate is offered")
    ap.add_argument("--hold", type=int, default=10000, help="ms each caller stays after the IVR")
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--setups", default=",".join(SETUPS), help="which of " + ",".join(SETUPS) + " to run")
    ap.add_argument("--layouts", default="shared", help="which of " + ",".join(LAYOUTS) + " (comma separated)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run every setup this many times, interleaved (the goals take the median ratio)")
    ap.add_argument("--no-wire", dest="wire", action="store_false",
                    help="sipp's own setup times only (no tcpdump capture of the callers' SIP)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--listen-ami", type=int, help=argparse.SUPPRESS)   # the ami setup's client process
    args = ap.parse_args()
    if args.listen_ami:
        listen_ami(args.listen_ami)
        return 0
    rates = [float(r) for r in args.rates.split(",")]
    layouts = [x for x in LAYOUTS if x in args.layouts.split(",")]
    if "pinned" in layouts and (os.cpu_count() or 1) < 2:
        console.print("[yellow]one core: the pinned layout is the shared one here[/]")

    stack, agents = load_stack(Path(tempfile.mkdtemp(prefix="bench-load-")), args.agents)
    tmp = stack.tmp
    results: dict[tuple[float, str, str, int], dict] = {}
    wire = args.wire and shutil.which("tcpdump") is not None
    if args.wire and not wire:
        console.print("[yellow]no tcpdump: setup times from sipp only (scripts/bootstrap.sh installs it)[/]")
    try:
        stack.start()
        phones = AgentPhones(tmp, stack.cfg.system.asterisk.sip_port, agents, stack.secrets.agent_passwords)
        db = Path(stack.cfg.system.database.url.removeprefix("sqlite:///"))
        setups = [x for x in SETUPS if x in args.setups.split(",")]
        # interleaved: each repeat runs every setup once, so a noisy moment of the machine hits all alike
        runs = [(ri, rate, li, layout, rep, setup) for ri, rate in enumerate(rates) for li, layout in enumerate(layouts)
                for rep in range(args.repeat) for setup in setups]
        for ri, rate, li, layout, rep, setup in runs:
            calls = max(1, int(rate * args.seconds))
            prepare(stack, setup, phones, agents, layout)
            prefix = f"139{rep}{ri}{li}{SETUPS.index(setup)}"
            pids = {"asterisk": stack.asterisk.pid()}
            listener = start_listener(stack) if setup == "ami" else None
            if setup == "controller":
                pids["controller"] = stack.controller.pid
            sampler = ProcSampler(pids)
            console.print(f"[bold]{rate:g} calls/s[/] × {calls} calls — {setup}, {layout} …")
            res: LoadResult = run_callers(tmp, stack.cfg.system.asterisk.sip_port, rate, calls, args.hold,
                                          prefix, timeout=args.seconds + args.hold / 1000 + 240,
                                          on_progress=sampler.sample, wire=wire)
            usage = sampler.result()
            row = {"rate": rate, "layout": layout, "setup": setup, "repeat": rep, "calls": calls,
                   "successful": res.successful, "failed": res.failed, "max_concurrent": res.max_concurrent,
                   "setup_p50_ms": res.percentile(50), "setup_p99_ms": res.percentile(99),
                   "asterisk_cpu": usage["asterisk"][0], "asterisk_rss_mb": usage["asterisk"][1]}
            if listener is not None:
                row["ami_events"] = stop_listener(listener)
                row["events_per_call"] = row["ami_events"] / calls
            if setup == "controller":
                t0 = time.monotonic()
                while time.monotonic() - t0 < 60 and ended_records(db, prefix) < calls:
                    time.sleep(0.5)
                row["records"] = ended_records(db, prefix)
                row["records_lag_s"] = time.monotonic() - t0
                row["controller_cpu"], row["controller_rss_mb"] = usage["controller"]
                by_name = events_by_name(stack)
                row["events_per_call"] = sum(by_name.values()) / calls
                row["events_by_name"] = {k: round(v / calls, 2) for k, v in
                                         sorted(by_name.items(), key=lambda kv: -kv[1])}
                for key, metric in (("routing", "hotline_routing_decision_seconds"),
                                    ("event_delay", "hotline_ami_event_delay_seconds")):
                    h = histogram(stack, metric)
                    row[f"{key}_p50_ms"] = 1000 * quantile(h, 0.5)
                    row[f"{key}_p99_ms"] = 1000 * quantile(h, 0.99)
                    row[f"{key}_n"] = h[-1][1] if h else 0
            if res.failed or res.successful < calls:
                console.print(f"  [red]{res.failed} failed[/] — sipp: {res.log_tail[-600:]}")
            if wire and not res.wire_setup_ms:
                console.print("  [red]the wire capture matched no setup[/]: sipp's times only for this run")
            elif wire:
                row["wire_calls"] = len(res.wire_setup_ms)
                row["wire_p50_ms"], row["wire_p99_ms"] = res.percentile(50, wire=True), res.percentile(99, wire=True)
            results[(rate, layout, setup, rep)] = row
            if args.json:       # after each run: a long bench that fails later keeps what it measured
                args.json.write_text(json.dumps(list(results.values()), indent=2))
        phones.stop()
    finally:
        stack.close()
        pin("shared")

    table = Table(title="SIPp load: our stack vs a pure-dialplan IVR+queue on the same Asterisk")
    for col in ("calls/s", "layout", "run", "setup", "ok / failed", "max conc.", "setup p50 / p99 ms (sipp)",
                "on the wire", "p50 vs baseline", "p50 vs dialplan (sipp / wire)", "p99 vs dialplan (sipp / wire)",
                "events/call", "Asterisk CPU %", "controller CPU % / RSS MB", "records", "routing p50/p99 ms",
                "event delay p50/p99 ms"):
        table.add_column(col)
    for (rate, layout, setup, rep), r in results.items():
        base = results.get((rate, layout, "baseline", rep), r)
        dial = results.get((rate, layout, "dialplan", rep), r)
        vs_dial = setup in ("ami", "controller")
        table.add_row(
            f"{rate:g}", layout, str(rep + 1), setup, f"{r['successful']} / {r['failed']}", str(r["max_concurrent"]),
            f"{r['setup_p50_ms']:.1f} / {r['setup_p99_ms']:.1f}",
            f"{r['wire_p50_ms']:.1f} / {r['wire_p99_ms']:.1f}" if "wire_p50_ms" in r else "",
            ratio(r["setup_p50_ms"], base["setup_p50_ms"]),
            both_ratios(r, dial, "p50") if vs_dial else "",
            both_ratios(r, dial, "p99") if vs_dial else "",
            f"{r['events_per_call']:.1f}" if "events_per_call" in r else "",
            f"{r['asterisk_cpu']:.0f}",
            f"{r['controller_cpu']:.0f} / {r['controller_rss_mb']}" if setup == "controller" else "",
            f"{r['records']}/{r['calls']} ({r['records_lag_s']:.1f} s)" if setup == "controller"
            else (f"{r['ami_events']} events read" if setup == "ami" else ""),
            f"{r['routing_p50_ms']:.1f} / {r['routing_p99_ms']:.1f}" if setup == "controller" else "",
            f"{r['event_delay_p50_ms']:.1f} / {r['event_delay_p99_ms']:.1f}" if setup == "controller" else "")
    console.print(table)
    goals(results)
    for (rate, layout, setup, rep), r in results.items():
        if r.get("events_by_name"):
            console.print(f"events per call, {rate:g} calls/s {layout}, run {rep + 1}: " +
                          ", ".join(f"{k} {v:g}" for k, v in r["events_by_name"].items()))
    for setup in sorted({s for _, _, s, _ in results}, key=SETUPS.index):
        clean = [r for (_, _, s, _), r in results.items() if s == setup and r["failed"] == 0
                 and r["successful"] == r["calls"] and r.get("records", r["calls"]) == r["calls"]]
        best = max((r["max_concurrent"] for r in clean), default=0)
        console.print(f"max concurrent calls with zero failures — {setup}: [bold]{best}[/]")
    console.print("routing and event delay come from Prometheus buckets: upper bounds of the bucket holding "
                  "the percentile (the controller restarts for each run)")
    if args.json:
        args.json.write_text(json.dumps([r for r in results.values()], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
