"""The controller's periodic jobs: callbacks and follow-ups run while the AMI session is resynced
(``ready``); housekeeping that needs no Asterisk (the audit log's retention) runs regardless."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable


async def run_every(ready: asyncio.Event | None, interval: float, tick: Callable[[], Awaitable], log: logging.Logger,
                    what: str) -> None:
    while True:
        if ready is not None:
            await ready.wait()
        try:
            await tick()
        except Exception as e:   # Asterisk or the database away: try again next round
            log.warning("%s: %s", what, e)
        await asyncio.sleep(interval)
