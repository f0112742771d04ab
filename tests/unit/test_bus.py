"""Issue 16, finding 11: what the daemons send each other over Redis is signed with the install's bus
key; the receiving side keeps only genuine, fresh, first-seen messages for the channel they were
signed for (tested over real Redis and a real desk socket in tests/integration/test_redis_security.py)."""
from __future__ import annotations

import json
import time

import pytest

from store.bus import MESSAGE_MAX_AGE, Bus, acl_rules

CHANNEL = "hotline:transcription"
BODY = {"type": "alert", "alert": {"city": "leshan", "detail": "家暴"}}


def test_a_genuine_message_is_taken_once():
    bus = Bus(None, "hotline", key="k")
    wire = bus._seal(CHANNEL, BODY, time.time())
    assert bus._unseal(CHANNEL, wire, message=True) == BODY
    assert bus._unseal(CHANNEL, wire, message=True) is None          # the same message again: a replay
    assert bus.refused == 1


@pytest.mark.parametrize("forge", [
    lambda bus, w: json.dumps(BODY).encode(),                                           # unsigned, as before
    lambda bus, w: w.replace("家暴".encode(), "平安".encode()),                           # body changed
    lambda bus, w: b"0" * 64 + w[64:],                                                  # signature made up
    lambda bus, w: Bus(None, "hotline", key="another install")._seal(CHANNEL, BODY, time.time()),
    lambda bus, w: bus._seal("hotline:interop", BODY, time.time()),                     # signed for another channel
    lambda bus, w: bus._seal(CHANNEL, BODY, time.time() - MESSAGE_MAX_AGE - 5),         # too old
    lambda bus, w: bus._seal(CHANNEL, BODY, None),                                      # a stored value, not a message
    lambda bus, w: "\udcff.{}".encode("utf-8", "surrogateescape"),                      # not UTF-8
    lambda bus, w: b"",
], ids=["unsigned", "changed", "made-up", "other-key", "other-channel", "old", "value", "garbage", "empty"])
def test_a_forged_or_moved_message_is_dropped_and_counted(forge):
    bus = Bus(None, "hotline", key="k")
    wire = bus._seal(CHANNEL, BODY, time.time())
    assert bus._unseal(CHANNEL, forge(bus, wire), message=True) is None
    assert bus.refused == 1


def test_a_stored_value_is_bound_to_its_key():
    bus = Bus(None, "hotline", key="k")
    value = bus._seal("hotline:live:s1", {"call_id": "c1"}, None)
    assert bus._unseal("hotline:live:s1", value, message=False) == {"call_id": "c1"}
    assert bus._unseal("hotline:live:s2", value, message=False) is None


def test_a_bus_on_redis_needs_the_key():
    with pytest.raises(ValueError):
        Bus("redis://127.0.0.1:6379/0", "hotline", key="")


def test_the_installs_user_gets_its_prefix_and_the_bus_commands_only():
    rules = acl_rules("hotline", "pw")
    assert rules[:3] == ["reset", "on", ">pw"]
    assert "~hotline:*" in rules and "&hotline:*" in rules and "-@all" in rules
    assert not any(r in rules for r in ("+@all", "~*", "&*", "allkeys", "allchannels", "+flushall", "+config", "+keys"))


def test_taken_messages_are_forgotten_after_the_replay_window(monkeypatch):
    """The replay memory stays bounded: a signature is kept only while its message could still pass."""
    now = [1_000_000.0]
    monkeypatch.setattr("store.bus.time.time", lambda: now[0])
    bus = Bus(None, "hotline", key="k")
    for _ in range(3):
        assert bus._unseal(CHANNEL, bus._seal(CHANNEL, BODY, now[0]), message=True) == BODY
        now[0] += MESSAGE_MAX_AGE
    assert len(bus._seen) == 2 and len(bus._seen_order) == 2
