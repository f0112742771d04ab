"""A day of the province in an hour (issue 22 §3): a Sichuan 12348 day compressed into --minutes.

    .venv/bin/python bench/bench_soak.py [--minutes 60] [--calls 2000] [--viewers 500] [--json out.json]
    .venv/bin/python bench/bench_soak.py --minutes 5 --calls 300        # the short form (the slow test's)

The day itself (traffic shape, callers, rotas, desks) is tests/soak.py, shared with
tests/integration/test_soak.py. Figures:
  lost         a planned caller whose call has no ended record, or whose sipp scenario failed (sipp
               counts a call failed on any unexpected message, a request unanswered past its SIP
               transaction timer, or an error)
  writer lag   a record's last write (updated_at) after the call's end (ended_at), per ended record
  memory       RSS of the controller, the transcriber (its recognisers included) and the interop daemon,
               sampled all run: median of the last quarter over the first (the night: warm-up included),
               and the end over the highest up to 17:00, after the afternoon peak (a leak goes on
               growing) (goal: growth <= 10 %)
  wallboard    --viewers WebSockets held open all day in a process of their own; latency = the update's
               arrival at the viewer's socket (the kernel's receive time stamp) - the AMI event's time
               (event_at) (goal: p99 <= 50 ms with 500 viewers); also to when the viewers' process read
               it, which adds its own wait for a core on the machine it shares with the stack
  DB size      the SQLite file (after a WAL checkpoint) per 1,000 calls of the day
  statistics   per city: live (the last state of each call as the wallboard feed showed it, counted with
               core/kpi.py), the wallboard's today and /api/stats (backoffice/stats.py over the stored
               records): identical or not
"""
from __future__ import annotations

import argparse
import faulthandler
import json
import signal
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.soak import HOURLY_WEIGHTS, STAT_KEYS, DayResult, hour_counts, pct, run_day  # noqa: E402

console = Console(width=200)


def report(res: DayResult) -> dict:
    """Print the tables; return the figures (for --json and the test)."""
    n = len(res.calls)
    t = Table(title=f"A day of the province: {n} calls in {res.minutes:g} min ({res.wall_seconds:.0f} s of day)")
    for col in ("hour", *[f"{h:02d}" for h in range(24)]):
        t.add_column(col, justify="right")
    t.add_row("weight", *[str(w) for w in HOURLY_WEIGHTS])
    t.add_row("calls", *[str(c) for c in hour_counts(n)])
    t.add_row("agents", *[str(a) for a in res.agents_by_hour])
    console.print(t)

    lag = res.writer_lag_s
    g = {k: res.growth(k) for k in ("controller", "transcriber", "interop", "asterisk")}
    g2 = {k: res.growth_after_peak(k) for k in g}
    rss = {k: (v[0][1], v[-1][1], max(x for _, x in v)) if v else None for k, v in res.rss.items()}
    figures = {
        "calls_offered": n, "records_ended": n - len(res.lost), "lost": len(res.lost),
        "closed_unheard": res.closed_unheard,
        "sipp_ok": res.sipp_ok, "sipp_failed": res.sipp_failed, "outcomes": dict(res.outcomes),
        "writer_lag_p50_s": pct(lag, 50), "writer_lag_p99_s": pct(lag, 99), "writer_lag_max_s": max(lag, default=None),
        "rss_growth": g, "rss_growth_after_peak": g2, "rss_first_last_max_mb": rss, "wallboard": res.wallboard,
        "controller_delays": res.controller_delays,
        "db_bytes": res.db_bytes, "db_bytes_empty": res.db_bytes_empty,
        "db_kb_per_1000_calls": (res.db_bytes - res.db_bytes_empty) / 1024 / max(1, n) * 1000,
        "records_total": res.records_total, "stats_match": res.stats_match, "features": res.features,
    }
    t = Table(title="Calls")
    for col in ("offered", "ended records", "lost", "sipp ok / failed", "outcomes"):
        t.add_column(col)
    t.add_row(str(n), str(figures["records_ended"]), f"[{'green' if not res.lost else 'red'}]{len(res.lost)}[/]",
              f"{res.sipp_ok} / {res.sipp_failed}", ", ".join(f"{k or '-'} {v}" for k, v in res.outcomes.most_common()))
    console.print(t)
    for why in res.sipp_failures[:10]:
        console.print(f"[red]sipp:[/] {why}")
    if res.lost:
        console.print(f"[red]lost:[/] {res.lost[:20]}")
    if res.closed_unheard:
        console.print(f"[yellow]closed by the controller's reconciliation (their Hangup never reached it):[/] "
                      f"{res.closed_unheard[:20]}")
    console.print(f"lost calls and transfers traced in {res.diagnostics}")

    f = res.features
    t = Table(title="The mix")
    for col in ("cities", "numbers dialled", "languages", "green", "callback tasks (reason, status)",
                "transfers done/asked", "12345 handoffs taken/asked", "surveys done/asked"):
        t.add_column(col)
    t.add_row(str(f.get("cities")), str(f.get("dids")), str(f.get("languages")), str(f.get("green")),
              ", ".join(f"{k} {c}" for k, c in f.get("callback_tasks", {}).items()),
              "%d/%d" % f.get("transfers", (0, 0)), "%d/%d" % f.get("handoffs_12345", (0, 0)),
              "%d/%d" % f.get("surveys", (0, 0)))
    console.print(t)
    for e in f.get("errors", []):
        console.print(f"[yellow]desk:[/] {e}")

    t = Table(title="Figures (goals from issue 22)")
    for col in ("figure", "value", "goal"):
        t.add_column(col)
    t.add_row("record writer lag p50 / p99 / max", f"{pct(lag, 50):.2f} / {pct(lag, 99):.2f} / "
              f"{max(lag, default=float('nan')):.2f} s", "")
    for k in ("controller", "transcriber", "interop", "asterisk"):
        if rss.get(k):
            first, last, peak = rss[k]
            t.add_row(f"{k} RSS first → last (peak); growth first→last quarter, after the peak",
                      f"{first} → {last} ({peak}) MiB; " + " , ".join(f"{100 * x:+.1f} %" if x is not None else "n/a"
                                                                       for x in (g[k], g2[k])),
                      "≤ 10 %" if k != "asterisk" else "")
    w = res.wallboard
    nan = float("nan")
    t.add_row(f"wallboard p50 / p99 / max, {w.get('viewers')} viewers ({w.get('open_at_end')} open at the end): "
              "at the viewer's socket",
              f"{w.get('p50', nan):.1f} / {w.get('p99', nan):.1f} / {w.get('max', nan):.1f} ms"
              f" over {w.get('updates', 0):,} updates", "p99 ≤ 50 ms")
    t.add_row("wallboard p50 / p99 / max: read by the viewers' process (it shares the cores)",
              f"{w.get('read_p50', nan):.1f} / {w.get('read_p99', nan):.1f} / {w.get('read_max', nan):.1f} ms", "")
    d = res.controller_delays
    for key, what in (("arrival", "AMI events more than 0.2 s / 1 s old when read off the socket (Asterisk's part)"),
                      ("handled", "AMI events more than 0.2 s / 1 s old when handled by the controller"),
                      ("loop_lag", "controller loop timer more than 0.2 s / 1 s late")):
        if key in d:
            t.add_row(what, f"{d[key]['over_0.2']:,} / {d[key]['over_1']:,} of {d[key]['count']:,}", "")
    t.add_row("database growth per 1,000 calls of the day", f"{figures['db_kb_per_1000_calls']:.0f} KiB "
              f"({res.db_bytes_empty / 1024:.0f} → {res.db_bytes / 1024:.0f} KiB; {res.records_total} call records, "
              "callbacks and surveys included)", "")
    t.add_row("statistics live == stored", "[green]identical[/]" if res.stats_match else "[red]differ[/]", "identical")
    console.print(t)

    t = Table(title="Statistics of the day per city: live (wallboard feed) | wallboard today | stored (/api/stats)")
    t.add_column("city")
    for k in STAT_KEYS:
        t.add_column(k)
    for city in sorted(set(res.stats_live) | set(res.stats_stored)):
        lv, wb, st = res.stats_live.get(city, {}), res.stats_wallboard.get(city, {}), res.stats_stored.get(city, {})
        cells = []
        for k in STAT_KEYS:
            a, b, c = lv.get(k), wb.get(k, "·"), st.get(k)
            same = a == c and (b == "·" or b == c)
            cells.append(f"{'' if same else '[red]'}{a} | {b} | {c}")
        t.add_row(city, *cells)
    console.print(t)
    return figures


def main() -> int:
    faulthandler.register(signal.SIGUSR1)     # kill -USR1 <pid>: where a long run is
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60, help="wall-clock length of the simulated day")
    ap.add_argument("--calls", type=int, default=2000, help="calls in the day (a real one: 1,400-3,000)")
    ap.add_argument("--viewers", type=int, default=500, help="wallboard WebSockets held open")
    ap.add_argument("--seed", type=int, default=12348)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--ami-nudge-ms", type=int, help="the controller's Pings on its AMI event session, every N ms "
                    "(0: none; default: the config's, asterisk.ami_nudge_ms)")
    ap.add_argument("--watch-ami-threads", action="store_true",
                    help="sample Asterisk's AMI session threads from /proc and say, for each episode of late events, "
                    "what they were doing (tests/ami_threads.py; needs root)")
    ap.add_argument("--ami-thread-policy", default="none",
                    help="with --watch-ami-threads, an experiment: fifo (SCHED_FIFO 10) or nice-N for Asterisk's "
                    "thread that writes the controller's events")
    ap.add_argument("--layout", default="shared", choices=("shared", "pinned"),
                    help="shared: every process on both cores; pinned: Asterisk alone on core 0, the rest "
                    "(controller, transcriber, interop, callers, agents, viewers) on core 1, as bench_load.py")
    ap.add_argument("--viewers-nice", type=int, default=0,
                    help="run the viewers' process at this nice value (19: their reads never preempt the stack's "
                    "processes, as browsers on other machines would not; the arrival stamps are the kernel's)")
    args = ap.parse_args()
    res = run_day(Path(tempfile.mkdtemp(prefix="bench-soak-")), args.calls, args.minutes, args.viewers, args.seed,
                  log=console.print, ami_nudge_ms=args.ami_nudge_ms,
                  watch_ami_threads=args.watch_ami_threads,
                  ami_thread_policy=args.ami_thread_policy, layout=args.layout, viewers_nice=args.viewers_nice)
    figures = report(res)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0 if not res.lost and res.stats_match else 1


if __name__ == "__main__":
    sys.exit(main())
