"""Live state and pub/sub on Redis. Optional by design: a Redis outage never touches a call."""
from __future__ import annotations

import asyncio
import json
import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("hotline.bus")


class Bus:
    def __init__(self, url: str | None, prefix: str):
        self.prefix = prefix
        self.client = aioredis.from_url(url, socket_timeout=1, socket_connect_timeout=1) if url else None
        self.healthy = False
        self.failures = 0
        self._retry_at = 0.0   # while Redis is away, try again only after this (monotonic) time

    def _skip(self) -> bool:
        """True while Redis is known to be away: the record writer must not wait on every call for a
        connect timeout (up to 1 s each) — a few seconds of live state are lost instead, nothing else."""
        return self.client is None or (not self.healthy and self.failures > 0 and time.monotonic() < self._retry_at)

    async def publish_calls(self, calls: list[dict]) -> None:
        """Live call state for other processes (dashboards, the transcriber): one round trip per batch."""
        if not calls or self._skip():
            return
        try:
            async with self.client.pipeline(transaction=False) as p:
                for call in calls:
                    key = f"{self.prefix}:call:{call['call_id']}"
                    if call["status"] == "ended":
                        p.delete(key)
                        p.srem(f"{self.prefix}:calls", call["call_id"])
                    else:
                        p.set(key, json.dumps(call, ensure_ascii=False), ex=6 * 3600)
                        p.sadd(f"{self.prefix}:calls", call["call_id"])
                    p.publish(f"{self.prefix}:events", json.dumps({"type": "call", "call": call}, ensure_ascii=False))
                await p.execute()
            self.healthy = True
        except (RedisError, OSError) as e:
            self._failed(e)

    def _failed(self, e: Exception) -> None:
        self.failures += 1
        if self.healthy or self.failures == 1:
            log.warning("Redis unavailable, live state not published until it is back: %s", e)
        self.healthy = False
        self._retry_at = time.monotonic() + 2.0

    async def publish(self, topic: str, message: dict) -> bool:
        """Publish on ``<prefix>:<topic>``; False (logged once) when Redis is away."""
        if self._skip():
            return False
        try:
            await self.client.publish(f"{self.prefix}:{topic}", json.dumps(message, ensure_ascii=False, default=str))
            self.healthy = True
            return True
        except (RedisError, OSError) as e:
            self._failed(e)
            return False

    async def put(self, key: str, value: dict, ttl_seconds: int) -> bool:
        if self._skip():
            return False
        try:
            await self.client.set(f"{self.prefix}:{key}", json.dumps(value, ensure_ascii=False), ex=ttl_seconds)
            self.healthy = True
            return True
        except (RedisError, OSError) as e:
            self._failed(e)
            return False

    async def take(self, key: str) -> dict | None:
        if self._skip():
            return None
        try:
            raw = await self.client.get(f"{self.prefix}:{key}")
            self.healthy = True
        except (RedisError, OSError) as e:
            self._failed(e)
            return None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            log.warning("ignoring malformed value at %s:%s", self.prefix, key)
            return None

    async def listen(self, topic: str, handler) -> None:
        """Call ``handler(dict)`` for every message on ``<prefix>:<topic>``, forever; reconnects after
        a Redis outage; malformed messages are logged and skipped."""
        if self.client is None:
            return
        delay = 0.5
        while True:
            try:
                async with self.client.pubsub() as ps:
                    await ps.subscribe(f"{self.prefix}:{topic}")
                    delay = 0.5
                    while True:
                        msg = await ps.get_message(ignore_subscribe_messages=True, timeout=5)
                        if msg is None or msg.get("type") != "message":
                            continue
                        try:
                            data = json.loads(msg["data"])
                            if not isinstance(data, dict):
                                raise ValueError("not an object")
                        except ValueError as e:
                            log.warning("ignoring malformed message on %s: %s", topic, e)
                            continue
                        try:
                            handler(data)
                        except Exception:
                            log.exception("handler for %s failed", topic)
            except (RedisError, OSError) as e:
                self._failed(e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
