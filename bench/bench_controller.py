"""Controller hot paths on one core: AMI parsing (panoramisk, the baseline), call tracking, routing
decisions, record writes. Prints figures and ratios measured in the same run.

    .venv/bin/python bench/bench_controller.py [--calls 2000]
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from panoramisk.message import Message  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from callcenter.tracker import CallTracker  # noqa: E402
from core.calls import CallState  # noqa: E402
from core.config import load_config  # noqa: E402
from store.calls import CallStore  # noqa: E402
from store.engine import Database, migrate  # noqa: E402
from core.workflow import CallFacts, QueueLive, first_target  # noqa: E402


def ami_text(i: int) -> list[str]:
    """One call's AMI story as Asterisk sends it (header lines), with realistic sizes."""
    L = f"1795600000.{i}"
    base = (f"Privilege: call,all\r\nTimestamp: {1795600000 + i}.000100\r\nChannel: PJSIP/carrier-{i:08x}\r\n"
            f"ChannelState: 6\r\nChannelStateDesc: Up\r\nCallerIDNum: 138{i:08d}\r\nCallerIDName: <unknown>\r\n"
            f"ConnectedLineNum: <unknown>\r\nLanguage: zh\r\nAccountCode: \r\nContext: hotline-trunk\r\n"
            f"Exten: 083312348\r\nPriority: 1\r\nUniqueid: {L}\r\nLinkedid: {L}\r\n")
    return [
        f"Event: Newchannel\r\n{base}",
        f"Event: UserEvent\r\n{base}UserEvent: HotlineCall\r\nDID: 083312348\r\nCity: leshan\r\nArea: 0833\r\n",
        f"Event: UserEvent\r\n{base}UserEvent: HotlineQueue\r\nQueue: leshan\r\nTarget: city\r\nWait: 60\r\n"
        f"Ahead: \r\nMinutes: \r\nPath: lang=zh/svc=consultation\r\nService: consultation\r\n"
        f"Recording: 20261125/{L}.wav\r\nOpen: 1\r\nGreen: \r\nPriority: 0\r\nRouted: {1795600000 + i}000\r\n",
        f"Event: QueueCallerJoin\r\n{base}Queue: leshan\r\nPosition: 1\r\nCount: 1\r\n",
        f"Event: AgentConnect\r\n{base}Queue: leshan\r\nInterface: PJSIP/agent1001\r\nMemberName: agent1001\r\n"
        f"HoldTime: 3\r\nRingTime: 1\r\n",
        f"Event: Newexten\r\n{base}Application: Queue\r\nAppData: leshan\r\n",
        f"Event: Hangup\r\n{base}Cause: 16\r\nCause-txt: Normal Clearing\r\n",
    ]


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()
    cfg = load_config(ROOT)
    raw = [line for i in range(args.calls) for line in ami_text(i)]
    parsed = [Message.from_line(x.rstrip("\r\n")) for x in raw]
    n = len(raw)

    t_parse = timed(lambda: [Message.from_line(x.rstrip("\r\n")) for x in raw])

    def track():
        tr = CallTracker()
        for ev in parsed:
            tr.apply(ev)
    t_track = timed(track)

    rnd = random.Random(1)
    cities = [c.id for c in cfg.cities]
    facts = [CallFacts(rnd.choice(cities), rnd.choice(["zh", "zh", "zh", "bo", "en"]),
                       rnd.choice(["consultation", "legal_aid", "notary_forensics"]),
                       rnd.choice(["", "", "", "elderly", "domestic_violence"]), rnd.random() > 0.2)
             for _ in range(5000)]
    live = {q: QueueLive(rnd.randint(0, 3), rnd.randint(0, 6)) for q in ["leshan", "province", "lang-bo"]}
    lat = []
    for f in facts:
        t = time.perf_counter()
        first_target(f, cfg, live)
        lat.append(time.perf_counter() - t)
    lat.sort()

    async def writes() -> float:
        with tempfile.TemporaryDirectory() as d:
            url = f"sqlite:///{d}/b.db"
            migrate(url, ROOT)
            db = Database(url, ROOT)
            store = CallStore(db)
            t = time.perf_counter()
            for i in range(500):
                await store.save_call(CallState(call_id=f"b{i}", city="leshan", status="ended", started_at=1e9))
            dt = time.perf_counter() - t
            await db.close()
            return dt
    t_db = asyncio.run(writes())

    tab = Table("measure", "value", title=f"controller hot paths, one core, {args.calls} calls ({n} AMI events)")
    tab.add_row("AMI parse (panoramisk, baseline)", f"{n / t_parse:,.0f} events/s")
    tab.add_row("call tracking (CallTracker.apply)", f"{n / t_track:,.0f} events/s")
    tab.add_row("parse + track", f"{n / (t_parse + t_track):,.0f} events/s")
    tab.add_row("tracking cost / parsing cost", f"{t_track / t_parse:.2f}×")
    tab.add_row("routing decision p50", f"{statistics.median(lat) * 1e6:.1f} µs")
    tab.add_row("routing decision p99", f"{lat[int(len(lat) * 0.99)] * 1e6:.1f} µs")
    tab.add_row("call record upsert (SQLite, aiosqlite)", f"{500 / t_db:,.0f} writes/s")
    Console().print(tab)


if __name__ == "__main__":
    main()
