"""Issue 16, finding 11, on real Redis: the install's daemons log in as its own ACL user (password in
the secrets file, created by `hotline setup`), which reaches only the install's keys and channels and
the commands the bus uses; and the controller relays to desks only what the install's own daemons
published (signed with the bus key), not what any other process puts on its channels."""
from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import urllib.request

import aiohttp
import pytest
import redis
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from callcenter.asterisk.runtime import AsteriskInstance
from core.config import HotlineConfig, load_config
from store.secrets import load_or_create
from tests.helpers import ROOT, Stack
from tests.services import RedisServer

ADMIN_PASSWORD = "redis-admin-for-the-test"


@pytest.fixture
def closed_redis(tmp_path):
    """A Redis run as production should run it: an aclfile, the default user off, an administrator."""
    server = RedisServer(tmp_path / "redis", acl=["user default off",
                                                 f"user admin on >{ADMIN_PASSWORD} ~* &* +@all"])
    server.start()
    yield server
    server.stop()


def setup_install(tmp, redis_url: str, admin_url: str) -> HotlineConfig:
    """`hotline setup` of a fresh install on this Redis, given the administrator's URL."""
    name = f"r{os.getpid()}{random.randint(100, 999)}"
    overrides = {"state_dir": str(tmp / "state"), "asterisk": {"instance": name},
                 "database": {"url": f"sqlite:///{tmp}/hotline.db"},
                 "redis": {"url": redis_url, "prefix": f"hlsec{name}"}}
    env = {**os.environ, "HOTLINE_CONFIG_OVERRIDES": json.dumps(overrides), "HOTLINE_REDIS_ADMIN_URL": admin_url}
    done = subprocess.run([sys.executable, "-m", "hotline.cli", "setup"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return load_config(ROOT, overrides)


async def controller_bus_works(cfg: HotlineConfig) -> None:
    """The controller's bus (built as `hotline serve` builds it) writes, reads and hears its channel."""
    from callcenter.controller import Controller

    ctl = Controller(cfg, load_or_create(cfg))
    try:
        assert await ctl.bus.put("live:probe", {"call_id": "c1"}, 60), "the controller's bus could not write"
        assert await ctl.bus.take("live:probe") == {"call_id": "c1"}
        heard: list[dict] = []
        listener = asyncio.create_task(ctl.bus.listen("interop", heard.append))
        deadline = time.monotonic() + 15
        while not heard and time.monotonic() < deadline:   # until its subscription is in place
            assert await ctl.bus.publish("interop", {"type": "probe"})
            await asyncio.sleep(0.2)
        listener.cancel()
        assert heard and heard[0] == {"type": "probe"}
    finally:
        await ctl.bus.close()
        await ctl.db.close()


def subscribed(client: redis.Redis, channel: str) -> dict:
    """Subscribe and read the answer (a refusal comes back as the answer)."""
    ps = client.pubsub()
    ps.subscribe(channel)
    return ps.get_message(timeout=5)


def test_only_the_installs_user_reaches_its_keys_and_channels(tmp_path, closed_redis):
    admin_url = f"redis://admin:{ADMIN_PASSWORD}@127.0.0.1:{closed_redis.port}/0"
    cfg = setup_install(tmp_path, closed_redis.url, admin_url)
    try:
        # the daemons work on a Redis that refuses anyone without a password (before the fix they
        # logged in as nobody: NOAUTH)
        asyncio.run(controller_bus_works(cfg))

        prefix, secrets = cfg.system.redis.prefix, load_or_create(cfg)
        key, channel = f"{prefix}:calls", f"{prefix}:transcription"
        anonymous = redis.Redis(port=closed_redis.port, socket_timeout=5)
        for attempt in (lambda: anonymous.smembers(key), lambda: anonymous.set(key, "x"),
                        lambda: anonymous.publish(channel, "{}"), lambda: subscribed(anonymous, channel)):
            with pytest.raises((AuthenticationError, ResponseError)):
                attempt()
        wrong = redis.Redis(port=closed_redis.port, username=prefix, password="not-the-password", socket_timeout=5)
        with pytest.raises(AuthenticationError):
            wrong.get(key)

        # the install's own user: its keys and channels, the bus's commands, nothing else
        mine = redis.Redis(port=closed_redis.port, username=prefix, password=secrets.redis_password, socket_timeout=5)
        assert mine.set(f"{prefix}:probe", "1", ex=60) and mine.get(f"{prefix}:probe") == b"1"
        for denied in (lambda: mine.flushall(), lambda: mine.config_get("*"), lambda: mine.keys("*"),
                       lambda: mine.get("otherinstall:calls"), lambda: mine.publish("otherinstall:events", "{}"),
                       lambda: subscribed(mine, "otherinstall:transcription"),
                       lambda: mine.acl_list(), lambda: mine.execute_command("SHUTDOWN")):
            with pytest.raises(NoPermissionError):
                denied()

        # the user outlives a Redis crash: setup saved it into Redis's aclfile
        closed_redis.stop()
        closed_redis.start()
        asyncio.run(controller_bus_works(cfg))
    finally:
        AsteriskInstance(cfg).remove()


# ---------------------------------------------------------------- only the install's publishers reach desks
@pytest.fixture(scope="module")
def bus_stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("bus"))     # on the machine's Redis, whose default user is open
    s.start()
    yield s
    s.close()


def alert(marker: str) -> dict:
    return {"type": "alert", "alert": {"city": "leshan", "kind": "keyword", "topic": "violence", "term": marker,
                                       "severity": "high", "call_id": "", "detail": marker}}


def test_only_the_installs_own_publishers_reach_the_desks(bus_stack):
    s = bus_stack
    prefix = s.cfg.system.redis.prefix
    foreign = redis.Redis.from_url(s.cfg.system.redis.url, socket_timeout=5)   # any local process

    async def run():
        from store.bus import Bus

        genuine = Bus.for_install(s.cfg.system.redis, s.secrets)   # as the transcriber and interop daemons build it
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"{s.base_url}/ws", headers={"Authorization": f"Bearer {s.secrets.service_token}"})
            assert json.loads((await ws.receive(timeout=10)).data)["type"] == "hello"
            seen: list[str] = []

            async def until(marker: str, again: str = "") -> None:
                """Read the socket until ``marker`` came (publishing it genuinely every second on
                ``again``: the controller subscribes only after it starts)."""
                deadline = time.monotonic() + 20
                while marker not in seen and time.monotonic() < deadline:
                    if again:
                        assert await genuine.publish(again, alert(marker))
                    try:
                        msg = await ws.receive(timeout=1)
                    except asyncio.TimeoutError:
                        continue
                    data = json.loads(msg.data)
                    # only this test's alerts: the wallboard's own alarms (no agent logged in, ...) come too
                    if data.get("type") == "alert" and str(data["alert"].get("detail", "")).startswith(
                            ("ready-", "genuine-", "forged-")):
                        seen.append(data["alert"]["detail"])
                assert marker in seen, seen

            await until("ready-transcription", again="transcription")
            await until("ready-interop", again="interop")
            # forged: plain JSON as the daemons sent it before, a made-up signature, a message signed
            # with another install's key, on both relayed channels
            for topic in ("transcription", "interop"):
                foreign.publish(f"{prefix}:{topic}", json.dumps(alert(f"forged-plain-{topic}")))
                foreign.publish(f"{prefix}:{topic}", "0" * 64 + "." + json.dumps(alert(f"forged-sig-{topic}")))
            other = Bus(s.cfg.system.redis.url, prefix, key="another-installs-key")
            await other.publish("interop", alert("forged-other-key"))
            await other.close()
            # a genuine message on one channel replayed on it, and moved to the other
            recorder = foreign.pubsub()
            recorder.subscribe(f"{prefix}:interop")
            recorder.get_message(timeout=5)     # the subscribe confirmation
            assert await genuine.publish("interop", alert("genuine-1"))
            wire = None
            while wire is None:
                m = recorder.get_message(timeout=5)
                assert m is not None, "the genuine message was not seen on Redis"
                wire = m["data"] if m["type"] == "message" else None
            await until("genuine-1")
            foreign.publish(f"{prefix}:interop", wire)
            foreign.publish(f"{prefix}:transcription", wire)
            # Redis delivers one channel's messages in order: all of the above came before these
            assert await genuine.publish("interop", alert("genuine-2"))
            assert await genuine.publish("transcription", alert("genuine-3"))
            await until("genuine-2")
            await until("genuine-3")
            await ws.close()
            await genuine.close()
            recorder.close()
            return seen

    seen = asyncio.run(run())
    assert sorted(m for m in seen if not m.startswith("ready-")) == ["genuine-1", "genuine-2", "genuine-3"], seen
    assert s.api("/api/status")["redis"]["refused_messages"] >= 7
    with urllib.request.urlopen(s.base_url + "/metrics", timeout=10) as r:
        counted = [line for line in r.read().decode().splitlines() if line.startswith("hotline_bus_refused_messages_total ")]
    assert counted and float(counted[0].split()[1]) >= 7, counted
