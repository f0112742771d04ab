"""The controller's periodic jobs (callbacks, follow-ups): run while the AMI session is resynced."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable


async def run_every(ready: asyncio.Event, interval: float, tick: Callable[[], Awaitable], log: logging.Logger,
                    what: str) -> None:
    while True:
        await ready.wait()
        try:
            await tick()
        except Exception as e:   # Asterisk or the database away: try again next round
            log.warning("%s: %s", what, e)
        await asyncio.sleep(interval)
