"""Texts over SMPP against the SMSC simulator on loopback (SQLite): how many texts and parts per second
one worker submits (one submit_sm outstanding at a time, each part stored before the next), how long
from queueing to the delivered receipt, and the same with the throughput limit at its default (10/s).

    .venv/bin/python bench/bench_sms.py [--texts 300]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.config import load_config  # noqa: E402
from interop.sms import SmsSender  # noqa: E402
from simulators.smsc import Smsc  # noqa: E402
from store.engine import Database, migrate  # noqa: E402
from store.sms import SmsStore  # noqa: E402

SHORT = "【12348】您的法律援助预约已确认，预约号A1B2C3D4。"                 # one UCS-2 part
LONG = "ཁྲིམས་རྩོད་རོགས་རམ་ལྟེ་གནས་ཀྱི་བསྡུར་ཚོད་གཏན་འཁེལ་བྱུང་། " * 5                   # several parts


async def run(texts: int, rate: float, body: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        migrate(url, ROOT)
        center = await Smsc({"bench": "pw"}, receipt_delay=0.0).start()
        cfg = load_config(ROOT, {"state_dir": tmp, "database": {"url": url},
                                 "sms": {"enabled": True, "host": "127.0.0.1", "port": center.port,
                                         "system_id": "bench", "throughput_per_second": rate, "poll_seconds": 0.05}})
        db = Database(url, ROOT)
        store = SmsStore(db)
        noon = datetime.now(ZoneInfo("Asia/Shanghai")).replace(hour=12).astimezone(timezone.utc)
        sender = SmsSender(cfg, "pw", db=db, clock=lambda: noon)
        ids = [(await store.queue(to_number=f"138{i:08d}", body=body, kind="bench"))["id"] for i in range(texts)]
        stop = asyncio.Event()
        started = time.monotonic()
        task = asyncio.create_task(sender.run(stop))
        while (await store.counts()).get("delivered", 0) < texts:
            await asyncio.sleep(0.05)
        took = time.monotonic() - started
        stop.set()
        await task
        parts = len(center.received)
        await center.close()
        await db.close()
        assert len(ids) == texts and len(center.texts()) == texts
    return {"texts": texts, "parts": parts, "seconds": took}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=300)
    a = ap.parse_args()
    for label, rate, body, n in (("short, unlimited", 1000, SHORT, a.texts), ("long, unlimited", 1000, LONG, a.texts // 3),
                                 ("short, 10/s limit", 10, SHORT, 30)):
        r = asyncio.run(run(n, rate, body))
        print(f"{label:18} {r['texts']:4} texts {r['parts']:4} parts in {r['seconds']:6.2f} s: "
              f"{r['texts'] / r['seconds']:7.1f} texts/s {r['parts'] / r['seconds']:7.1f} parts/s (to delivered)")


if __name__ == "__main__":
    main()
