"""The single, ordered record writer: call saves and their side effects (callback tasks, follow-up
answers) are applied in the order the AMI events came, retried on database errors and never dropped.
Saves queued back to back go out as one batch, and only the newest queued state of a call is written."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

log = logging.getLogger("hotline.records")
WRITE_BATCH = 200   # call saves written in one statement at most

Op = Callable[[], Awaitable[object]]


class RecordWriter:
    def __init__(self, save: Callable[[list[str]], Awaitable[None]], on_error: Callable[[], None] = lambda: None):
        """``save(call_ids)`` writes the newest state of those calls (and may call ``retrying``);
        ``on_error`` counts a failed write (a Prometheus counter)."""
        self._save, self._on_error = save, on_error
        self._queue: asyncio.Queue = asyncio.Queue()   # call ids to save, or ("op", key, effect)
        self._pending: dict[str, int] = {}              # queued saves per call: only the newest is written
        self._writing = False                           # the writer holds items taken off the queue

    def save(self, call_id: str) -> None:
        self._pending[call_id] = self._pending.get(call_id, 0) + 1
        self._queue.put_nowait(call_id)

    def effect(self, key: str, op: Op) -> None:
        """A side effect applied after every save queued before it (key names it in the log)."""
        self._queue.put_nowait(("op", key, op))

    def newest(self, call_id: str) -> bool:
        """Called by ``save`` for each id of its batch: False when a later save of that call is queued
        (that one will write the newest state)."""
        left = self._pending.get(call_id, 1) - 1
        if left > 0:
            self._pending[call_id] = left
            return False
        self._pending.pop(call_id, None)
        return True

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def drain(self) -> None:
        while not self._queue.empty() or self._writing:
            await asyncio.sleep(0.05)

    async def run(self) -> None:
        carry = None
        while True:
            item = carry if carry is not None else await self._queue.get()
            carry = None
            self._writing = True
            try:
                if isinstance(item, tuple):  # ("op", key, coroutine factory): a side effect, in order
                    await self.retrying(item[2], item[1])
                    continue
                batch = [item]
                while len(batch) < WRITE_BATCH and not self._queue.empty():
                    nxt = self._queue.get_nowait()
                    if isinstance(nxt, tuple):    # an effect waits for the saves queued before it
                        carry = nxt
                        break
                    batch.append(nxt)
                await self._save(batch)
            finally:
                self._writing = carry is not None

    async def retrying(self, op: Op, key: str) -> None:
        delay = 0.2
        while True:
            try:
                await op()
                return
            except Exception as e:
                self._on_error()
                log.warning("writing call %s failed (%s); retrying in %.1fs", key, e, delay)
                await asyncio.sleep(delay)
                # capped low: once the database is back, records catch up within ~2 s (fault suite)
                delay = min(delay * 2, 2)
