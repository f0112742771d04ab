"""Live state and pub/sub on Redis. Optional by design: a Redis outage never touches a call."""
from __future__ import annotations

import json
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("hotline.bus")


class Bus:
    def __init__(self, url: str | None, prefix: str):
        self.prefix = prefix
        self.client = aioredis.from_url(url, socket_timeout=1, socket_connect_timeout=1) if url else None
        self.healthy = False
        self.failures = 0

    async def publish_call(self, call: dict) -> None:
        if self.client is None:
            return
        key = f"{self.prefix}:call:{call['call_id']}"
        try:
            async with self.client.pipeline(transaction=False) as p:
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
            self.failures += 1
            if self.healthy or self.failures == 1:
                log.warning("Redis unavailable, live state not published: %s", e)
            self.healthy = False

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
