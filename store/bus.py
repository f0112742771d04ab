"""Live state and pub/sub on Redis. Optional by design: a Redis outage never touches a call.

Every daemon of an install logs in as the install's own ACL user: its name is the prefix, its password
is generated in the secrets file, and `provision` (run by `hotline setup`) limits it to the prefix's
keys and channels and to the commands this module sends. Pub/sub does not say who published, and a
Redis whose default user is left open lets any local process publish, so the messages the daemons send
each other (live transcript lines, alerts) and the values they leave each other are signed with the
install's bus key (HMAC-SHA256 over the channel or key name, the time and the body); the receiving side
drops, counts and logs whatever fails the check, and a message seen before or older than a minute.
Call state (`<prefix>:call:*`, `<prefix>:events`) stays plain JSON for outside readers: nothing in the
project reads it back."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections import deque
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from core.config.system import RedisSettings
from store.secrets import Secrets

log = logging.getLogger("hotline.bus")

# what the bus sends (and redis-py on connecting): the install's user may run these and nothing else.
# Not CLIENT SETINFO (unknown before Redis 7.2): redis-py ignores its refusal.
COMMANDS = ("get", "set", "del", "sadd", "srem", "publish", "subscribe", "unsubscribe", "ping", "select", "hello")
MESSAGE_MAX_AGE = 60.0    # seconds: an older message is a replay (the daemons' clocks are the host's or NTP's)


def acl_rules(prefix: str, password: str) -> list[str]:
    """ACL SETUSER rules of the install's user (the prefix is validated: letters, digits, ``_.-``)."""
    return ["reset", "on", f">{password}", f"~{prefix}:*", f"&{prefix}:*", "-@all", *(f"+{c}" for c in COMMANDS)]


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def provision(admin_url: str, url: str, prefix: str, password: str) -> list[str]:
    """Create (or update) the install's ACL user through an administrator's connection, keep it in
    Redis's aclfile, and check what a client without a password can reach. Returns warnings for the
    operator; raises RedisError/OSError when Redis cannot be reached or refuses."""
    notes = []
    admin = redis.Redis.from_url(admin_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        admin.execute_command("ACL", "SETUSER", prefix, *acl_rules(prefix, password))
        try:
            admin.execute_command("ACL", "SAVE")
        except ResponseError as e:   # no aclfile: the user lives until Redis restarts
            notes.append(f"ACL SAVE refused ({str(e).split('.')[0]}): the user {prefix!r} is lost when Redis "
                         "restarts; run `hotline setup` again then, or give Redis an aclfile")
    finally:
        admin.close()
    anonymous = redis.Redis.from_url(_without_credentials(url), socket_timeout=5, socket_connect_timeout=5)
    try:
        anonymous.exists(f"{prefix}:calls")
        notes.append("Redis lets a client without a password read this install's keys and channels: turn its "
                     "default user off (`user default off` in the aclfile); messages between the daemons are "
                     "signed, but live call state is readable")
    except (RedisError, OSError):
        pass      # refused: as it should be
    finally:
        anonymous.close()
    return notes


def _signature(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).hexdigest().encode()


class Bus:
    def __init__(self, url: str | None, prefix: str, *, key: str, username: str | None = None,
                 password: str | None = None):
        if url and not key:
            raise ValueError("the bus needs the install's bus key (secrets file)")
        self.prefix = prefix
        self.key = key.encode()
        # credentials in the URL (an operator's own user) take precedence over these
        self.client = aioredis.from_url(url, username=username, password=password, socket_timeout=1,
                                        socket_connect_timeout=1) if url else None
        self.healthy = False
        self.failures = 0
        self._retry_at = 0.0   # while Redis is away, try again only after this (monotonic) time
        self.refused = 0                  # messages and values dropped: not signed by this install
        self._refusal_logged_at = -1e9
        # signatures of the messages taken in the last 2 * MESSAGE_MAX_AGE (a replay is refused), and
        # (expiry, signature) in arrival order to forget them cheaply: live text comes many times a second
        self._seen: set[bytes] = set()
        self._seen_order: deque[tuple[float, bytes]] = deque()

    @classmethod
    def for_install(cls, settings: RedisSettings, secrets: Secrets) -> Bus:
        """The bus every daemon of the install uses: its ACL user, its key."""
        return cls(settings.url, settings.prefix, key=secrets.bus_key, username=settings.prefix,
                   password=secrets.redis_password)

    # ---- signing
    def _seal(self, name: str, body: dict, at: float | None) -> bytes:
        payload = json.dumps({"name": name, "at": at, "body": body}, ensure_ascii=False, default=str).encode()
        return _signature(self.key, payload) + b"." + payload

    def _unseal(self, name: str, raw, message: bool) -> dict | None:
        """The body of a sealed message or value; None (counted, logged) if it is not this install's."""
        wire = raw.encode() if isinstance(raw, str) else raw
        sig, _, payload = wire.partition(b".")
        if not hmac.compare_digest(sig, _signature(self.key, payload)):
            return self._refuse(name, "not signed with this install's key")
        try:
            data = json.loads(payload)
        except ValueError:
            return self._refuse(name, "malformed")
        if not isinstance(data, dict) or data.get("name") != name or not isinstance(data.get("body"), dict):
            return self._refuse(name, "signed for another channel or key")
        if message:
            now = time.time()
            at = data.get("at")
            if not isinstance(at, (int, float)) or abs(now - at) > MESSAGE_MAX_AGE:
                return self._refuse(name, "too old")
            while self._seen_order and self._seen_order[0][0] <= now:
                self._seen.discard(self._seen_order.popleft()[1])
            if sig in self._seen:
                return self._refuse(name, "replayed")
            self._seen.add(sig)
            self._seen_order.append((now + 2 * MESSAGE_MAX_AGE, sig))
        return data["body"]

    def _refuse(self, name: str, why: str) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._refusal_logged_at >= 60:     # a flood of forgeries must not flood the log
            self._refusal_logged_at = now
            log.warning("dropped a message on %s (%s); %d dropped so far", name, why, self.refused)
        return None

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
            channel = f"{self.prefix}:{topic}"
            await self.client.publish(channel, self._seal(channel, message, time.time()))
            self.healthy = True
            return True
        except (RedisError, OSError) as e:
            self._failed(e)
            return False

    async def put(self, key: str, value: dict, ttl_seconds: int) -> bool:
        if self._skip():
            return False
        try:
            name = f"{self.prefix}:{key}"
            await self.client.set(name, self._seal(name, value, None), ex=ttl_seconds)
            self.healthy = True
            return True
        except (RedisError, OSError) as e:
            self._failed(e)
            return False

    async def take(self, key: str) -> dict | None:
        if self._skip():
            return None
        name = f"{self.prefix}:{key}"
        try:
            raw = await self.client.get(name)
            self.healthy = True
        except (RedisError, OSError) as e:
            self._failed(e)
            return None
        return self._unseal(name, raw, message=False) if raw else None

    async def listen(self, topic: str, handler) -> None:
        """Call ``handler(dict)`` for every message on ``<prefix>:<topic>`` that this install's daemons
        signed, forever; reconnects after a Redis outage; anything else is dropped and counted."""
        if self.client is None:
            return
        channel = f"{self.prefix}:{topic}"
        delay = 0.5
        while True:
            try:
                async with self.client.pubsub() as ps:
                    await ps.subscribe(channel)
                    delay = 0.5
                    while True:
                        msg = await ps.get_message(ignore_subscribe_messages=True, timeout=5)
                        if msg is None or msg.get("type") != "message":
                            continue
                        data = self._unseal(channel, msg["data"], message=True)
                        if data is None:
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
