"""Bad input on the AMI side, property-based (hypothesis).

(a) garbage events never raise out of CallTracker and never touch a well-formed call tracked
    alongside them; whatever arrives, a call's fields keep types the record writer can store;
(b) a call's story shuffled, duplicated or cut keeps the state machine's invariants;
(c) raw AMI bytes take the production path: the protocol our AmiClient's event session builds ->
    AmiClient's queue -> Controller._consume -> CallTracker.

Derandomized, without an example database: CI sees the same examples on every run. Each test is
bounded by max_examples; the file runs in seconds.
"""
from __future__ import annotations

import asyncio
import json
import math
import tempfile
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from panoramisk.message import Message

from callcenter.tracker import CallTracker
from core.calls import CallState
from core.contract import RESYNC_VARS

ROOT = Path(__file__).resolve().parents[2]


def fuzz(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])


class Clock:
    """Deterministic stand-in for time.time (events without a usable Timestamp fall back to it)."""

    def __init__(self, t: float = 1795599000.0):
        self.t = t

    def __call__(self) -> float:
        self.t += 0.25
        return self.t


# ------------------------------------------------------------------ well-formed call stories
KINDS = ("answered", "transferred", "abandoned", "voicemail", "ivr_hangup")
CITIES = ("leshan", "chengdu", "ganzi")
AGENTS = ("agent1001", "agent1002", "agent1005")


def ids(n: int) -> dict[str, str]:
    """Everything that identifies call n: Asterisk ids, channel names, bridge."""
    agent = AGENTS[(n - 1) % 3]
    return {"call": f"1795600{n:03d}.{10 * n}", "leg": f"1795600{n:03d}.{10 * n + 1}",
            "caller": f"PJSIP/carrier-{10 * n:08x}", "agent": agent,
            "agent_chan": f"PJSIP/{agent}-{10 * n + 1:08x}", "agent2_chan": f"PJSIP/agent1008-{10 * n + 2:08x}",
            "bridge": f"5d3c9a1e-0000-4000-8000-{n:012d}", "city": CITIES[(n - 1) % 3], "number": f"1380000{n:04d}"}


def story(n: int, kind: str) -> list[dict]:
    """One call's AMI events as Asterisk sends them (trimmed to the headers that matter), in order,
    with Asterisk's timestamps."""
    i = ids(n)
    cid, t0 = i["call"], 1795600000.0 + 1000 * n
    out: list[dict] = []

    def ev(name, **kw):
        out.append({"Event": name, "Timestamp": f"{t0 + len(out):.6f}", "Linkedid": cid, "Uniqueid": cid,
                    "Channel": i["caller"], **kw})

    ev("Newchannel", Context="hotline-trunk", Exten="083312348", CallerIDNum=i["number"])
    ev("UserEvent", UserEvent="HotlineCall", DID="083312348", City=i["city"], Area="0833")
    if kind != "ivr_hangup":
        ev("UserEvent", UserEvent="HotlineQueue", Queue=i["city"], Target="city", Path="lang=zh/svc=consultation",
           Recording=f"20261125/{cid}.wav", Open="1", Green="", Routed=f"{int(t0 * 1000)}")
        ev("QueueCallerJoin", Queue=i["city"], Position="1", Count="1")
    if kind in ("answered", "transferred"):
        agent_leg = {"Uniqueid": i["leg"], "Channel": i["agent_chan"]}
        ev("AgentCalled", Queue=i["city"], Interface=f"PJSIP/{i['agent']}", MemberName=i["agent"])
        ev("AgentConnect", Queue=i["city"], Interface=f"PJSIP/{i['agent']}", MemberName=i["agent"],
           DestChannel=i["agent_chan"], HoldTime="3")
        ev("BridgeEnter", BridgeUniqueid=i["bridge"])
        ev("BridgeEnter", BridgeUniqueid=i["bridge"], **agent_leg)
        if kind == "transferred":
            ev("AttendedTransfer", Result="Success", TransfereeLinkedid=cid,
               OrigTransfererChannel=i["agent_chan"], TransferTargetChannel="Local/912345@hotline-transfer-0001;1")
            ev("BridgeLeave", BridgeUniqueid=i["bridge"], **agent_leg)
            ev("BridgeEnter", BridgeUniqueid=i["bridge"], Uniqueid=f"{i['leg']}2", Channel=i["agent2_chan"])
            ev("BridgeLeave", BridgeUniqueid=i["bridge"], Uniqueid=f"{i['leg']}2", Channel=i["agent2_chan"])
        else:
            ev("BridgeLeave", BridgeUniqueid=i["bridge"], **agent_leg)
        ev("BridgeLeave", BridgeUniqueid=i["bridge"])
        ev("Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **agent_leg)
    elif kind == "abandoned":
        ev("QueueCallerAbandon", Queue=i["city"], HoldTime="22")
    elif kind == "voicemail":
        ev("UserEvent", UserEvent="HotlineVoicemail", Mailbox=i["city"])
        ev("UserEvent", UserEvent="HotlineCallEnd", Voicemail=f"{i['city']}/INBOX/msg0000")
    ev("Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"})
    return out


def clean_run(events) -> CallTracker:
    t = CallTracker(clock=Clock())
    for e in events:
        t.apply(e)
    return t


# ------------------------------------------------------------------ garbage
TRACKED = ids(1)
PROTECTED = {TRACKED[k] for k in ("call", "leg", "caller", "agent_chan", "agent2_chan", "bridge")} | {
    f"{TRACKED['leg']}2"}
EVENT_NAMES = ("Newchannel", "UserEvent", "Hangup", "QueueCallerJoin", "QueueCallerAbandon", "AgentCalled",
               "AgentRingNoAnswer", "AgentConnect", "AgentComplete", "BridgeEnter", "BridgeLeave",
               "AttendedTransfer", "BlindTransfer", "Newexten", "VarSet", "QueueMemberPause", "FullyBooted",
               "apply", "_callback_leg", "__class__", "UserEvent ", "hangup", "")
USER_EVENTS = ("HotlineCall", "HotlineIVRInvalid", "HotlineQueue", "HotlineOverflow", "HotlineVoicemail", "HotlineUnknownNumber", "HotlineCallbackRequest",
               "HotlineCallbackDial", "HotlineCallbackResult", "HotlineCallEnd", "HotlineCallback",
               "HotlineSurvey", "hotlinecall", "")
HEADERS = ("Event", "UserEvent", "Linkedid", "Uniqueid", "Timestamp", "Channel", "Context", "Exten", "CallerIDNum",
           "DID", "City", "Area", "Path", "Recording", "Green", "Open", "Queue", "Agent", "Interface", "MemberName",
           "DestChannel", "BridgeUniqueid", "Cause", "Cause-txt", "Result", "Extension", "TransfererChannel",
           "OrigTransfererChannel", "TransferTargetChannel", "SecondTransfererConnectedLineNum",
           "TransfereeLinkedid", "OrigTransfererLinkedid", "TransfererLinkedid", "Number", "Lang", "Origin",
           "Voicemail", "Attempt", "Paused", "linkedid", "LINKEDID", "timestamp", "ActionID", "ChanVariable")
NASTY = ("", " ", "0", "-0", "-1", "1", "16", "nan", "NaN", "inf", "-inf", "1e400", "1e12", "1_000", "٣", "１６",
         "9" * 400, "9" * 5000, "99999999999999999999", "1795600000.5", "soon", "None", "true",
         "hotline-trunk", "Success", "Fail", "0\x00", "\r\n", "\u202e", "城市", "ཁྲེང་ཏུའུ", "\ud7ff", "=", "/",
         "=/==/lang=", "lang=zh/city=/svc=green/green=", "lang=" + "x" * 3000, "a~b/c=~",
         "PJSIP/", "PJSIP/agent1001", "PJSIP/agent1001-0000002a", "PJSIP/-", "Local/@hotline-transfer",
         "Local/912345@hotline-transfer-0002;1", "x" * 100_000)
GARBAGE_IDS = ("9.1", "9.2", "1795600000.5", " ", "x" * 300, "城市", "0")

text = st.text(max_size=40)
value = st.one_of(st.sampled_from(NASTY), text, st.integers().map(str),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr)).filter(lambda v: v not in PROTECTED)
# panoramisk turns a header repeated in one message into a list of its values
header_value = st.one_of(value, value, value, st.lists(value, min_size=2, max_size=3))


@st.composite
def garbage_event(draw) -> dict:
    ev = draw(st.dictionaries(st.one_of(st.sampled_from(HEADERS), text), header_value, max_size=10))
    ev = {k: v for k, v in ev.items() if k.lower() not in ("linkedid", "uniqueid", "transfereelinkedid",
                                                         "origtransfererlinkedid", "transfererlinkedid")}
    if draw(st.integers(0, 9)):
        ev["Event"] = draw(st.one_of(st.sampled_from(EVENT_NAMES), text))
    if ev.get("Event") == "UserEvent" or not draw(st.integers(0, 4)):
        ev["UserEvent"] = draw(st.one_of(st.sampled_from(USER_EVENTS), text))
    if draw(st.integers(0, 4)):   # mostly about some call (a garbage one: never the tracked call)
        own = draw(st.sampled_from(GARBAGE_IDS))
        ev["Linkedid"] = own
        ev["Uniqueid"] = own if draw(st.booleans()) else draw(st.sampled_from(GARBAGE_IDS))
        if not draw(st.integers(0, 3)):
            ev["Context"] = "hotline-trunk"
    if not draw(st.integers(0, 6)):
        ev[draw(st.sampled_from(("TransfereeLinkedid", "OrigTransfererLinkedid", "TransfererLinkedid")))] = \
            draw(st.sampled_from(GARBAGE_IDS))
    return ev


as_message = st.booleans()   # a plain dict, or a case-insensitive panoramisk Message


def message(ev: dict, wrap: bool):
    return Message(dict(ev)) if wrap else ev


# ------------------------------------------------------------------ invariants
TIMES = ("started_at", "queued_at", "answered_at", "ended_at")
STATUSES = {"ivr", "queued", "talking", "voicemail", "ended"}


def assert_storable(c: CallState) -> None:
    """Field types the record writer (store/calls.py) and the JSON API can take: a float
    it cannot turn into a datetime, a list, or a cause beyond INTEGER would make it retry forever."""
    for f in fields(CallState):
        v = getattr(c, f.name)
        if f.name in TIMES:
            assert v is None or (isinstance(v, float) and math.isfinite(v)), (f.name, v)
            if v:
                datetime.fromtimestamp(v, tz=timezone.utc)
        elif f.name == "hangup_cause":
            assert v is None or (type(v) is int and -2 ** 31 <= v < 2 ** 31), v
        elif f.name == "after_hours":
            assert type(v) is bool
        elif f.name == "events":
            assert type(v) is int
        else:
            assert type(v) is str, (f.name, v)
    json.dumps(c.as_dict(), allow_nan=False)


def assert_tracker_sane(t: CallTracker) -> None:
    for cid, c in t.calls.items():
        assert cid == c.call_id        # one record per call, under its own id
        assert c.status in STATUSES
        assert_storable(c)
    assert all(members for members in t.bridges.values())    # an emptied bridge is dropped
    assert {c.call_id for c in t.live()} == {cid for cid, c in t.calls.items() if c.status != "ended"}


# ------------------------------------------------------------------ (a) garbage events
@fuzz(200)
@given(st.lists(st.tuples(garbage_event(), as_message), max_size=30))
def test_garbage_events_never_raise_and_leave_storable_calls(events):
    t = CallTracker(clock=Clock())
    for ev, wrap in events:
        t.apply(message(ev, wrap))
    assert_tracker_sane(t)


@fuzz(120)
@given(kind=st.sampled_from(KINDS), garbage=st.lists(st.tuples(garbage_event(), as_message), max_size=25),
       data=st.data())
def test_garbage_does_not_touch_a_well_formed_call(kind, garbage, data):
    events = story(1, kind)
    expected = clean_run(events)
    mixed: list = list(events)
    for ev, wrap in garbage:
        mixed.insert(data.draw(st.integers(0, len(mixed)), label="at"), message(ev, wrap))
    t = CallTracker(clock=Clock())
    for ev in mixed:
        t.apply(ev)
    cid = TRACKED["call"]
    assert t.calls[cid].as_dict() == expected.calls[cid].as_dict()
    assert t.calls[cid].status == "ended" and cid not in {c.call_id for c in t.live()}
    assert TRACKED["bridge"] not in t.bridges     # everyone left it
    assert_tracker_sane(t)


@fuzz(150)
@given(call_id=st.sampled_from(GARBAGE_IDS + ("1795600001.10",)),
       channel=value, bridged_to=value,
       values=st.dictionaries(st.one_of(st.sampled_from(RESYNC_VARS), text), header_value, max_size=12),
       started_at=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
       then=st.lists(st.tuples(garbage_event(), as_message), max_size=5))
def test_adopt_after_a_restart_takes_any_channel_variables(call_id, channel, bridged_to, values, started_at, then):
    """resync() feeds adopt() what Getvar answered for each variable: any text (or a list, when
    a response repeated its Value header)."""
    t = CallTracker(clock=Clock())
    c = t.adopt(call_id, channel, values, bridged_to, started_at)
    assert c is t.calls[call_id]
    for ev, wrap in then:
        t.apply(message(ev, wrap))
    assert_tracker_sane(t)


# ------------------------------------------------------------------ (b) mangled stories
@st.composite
def mangled_stories(draw):
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3))
    events = [(n, e) for n, kind in enumerate(kinds, start=1) for e in story(n, kind)]
    if draw(st.booleans()):
        events = list(draw(st.permutations(events)))
    else:     # Asterisk's order, interleaving the calls
        queues = {n: [e for m, e in events if m == n] for n in range(1, len(kinds) + 1)}
        events = []
        while any(queues.values()):
            n = draw(st.sampled_from(sorted(k for k, q in queues.items() if q)))
            events.append((n, queues[n].pop(0)))
    drop = draw(st.sets(st.integers(0, len(events) - 1), max_size=len(events) // 4))
    events = [e for i, e in enumerate(events) if i not in drop]
    for _ in range(draw(st.integers(0, 6))):
        if events:
            dup = events[draw(st.integers(0, len(events) - 1))]
            events.insert(draw(st.integers(0, len(events))), dup)
    return len(kinds), events


@fuzz(300)
@given(mangled_stories(), as_message)
def test_mangled_stories_keep_the_state_machine_invariants(case, wrap):
    """Several calls' events shuffled, duplicated or dropped. After every event: an ended call never
    changes again; queued/answered/ended are never before started; wait and talk are never negative;
    status is 'ended' exactly when ended_at is set, and then there is an outcome; 'answered' means
    answered_at; nothing leaks from one call into another. At the end: one record per call whose
    Newchannel was seen; a call ended exactly when its caller's Hangup came after that; a bridge
    holds the channels whose last word about it was BridgeEnter."""
    ncalls, events = case
    t = CallTracker(clock=Clock())
    ended: dict[str, dict] = {}
    created: dict[str, int] = {}     # call -> index of the first Newchannel applied
    own = {ids(n)["call"]: ids(n) for n in range(1, ncalls + 1)}
    for idx, (n, ev) in enumerate(events):
        cid = ids(n)["call"]
        if ev["Event"] == "Newchannel":
            created.setdefault(cid, idx)
        t.apply(message(ev, wrap))
        for done, snapshot in ended.items():
            assert t.calls[done].as_dict() == snapshot       # an ended call never changes again
        for c in t.calls.values():
            i = own[c.call_id]
            assert c.started_at is not None
            assert all(getattr(c, f) is None or getattr(c, f) >= c.started_at for f in TIMES)
            assert c.wait_seconds is None or c.wait_seconds >= 0
            assert c.talk_seconds is None or c.talk_seconds >= 0
            assert (c.status == "ended") == (c.ended_at is not None)
            assert c.outcome != "answered" or c.answered_at is not None
            assert c.status != "ended" or c.outcome
            # nothing leaks from one call into another
            assert c.city in ("", i["city"]) and c.caller_number in ("", i["number"])
            assert c.agent in ("", i["agent"], "agent1008") and c.channel == i["caller"]
            if c.status == "ended" and c.call_id not in ended:
                ended[c.call_id] = c.as_dict()
    assert_tracker_sane(t)
    # one record per call that began (its Newchannel was seen), none for the others
    assert set(t.calls) == set(created)
    for cid, first in created.items():
        hung_up = any(ev["Event"] == "Hangup" and ev["Uniqueid"] == cid and idx > first
                      for idx, (_, ev) in enumerate(events))
        assert (t.calls[cid].status == "ended") == hung_up
    # a bridge holds exactly the channels whose last word about it was BridgeEnter
    last: dict[tuple[str, str], str] = {}
    for _, ev in events:
        if ev["Event"] in ("BridgeEnter", "BridgeLeave"):
            last[(ev["BridgeUniqueid"], ev["Channel"])] = ev["Event"]
    model: dict[str, set] = {}
    for (b, ch), what in last.items():
        if what == "BridgeEnter":
            model.setdefault(b, set()).add(ch)
    assert t.bridges == model


@fuzz(40)
@given(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4))
def test_live_calls_empty_once_every_channel_hung_up(kinds):
    events = [e for n, kind in enumerate(kinds, start=1) for e in story(n, kind)]
    t = clean_run(events)
    assert t.live() == [] and t.bridges == {}
    assert len(t.calls) == len(kinds)


# ------------------------------------------------------------------ (c) raw AMI bytes
BANNER = b"Asterisk Call Manager/9.0.0\r\n"


def wire(ev: dict) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in ev.items()).encode() + b"\r\n"


class Transport(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.written: list[bytes] = []

    def write(self, data):
        self.written.append(data)

    def close(self):
        pass

    def is_closing(self):
        return False


def connect(client):
    """What the event session's manager does with a new TCP connection, minus the TCP: build the
    protocol with its protocol factory and hand it over through connection_made (which sends the Login
    action)."""
    loop = asyncio.get_running_loop()
    session = client.event_session
    session.loop = loop
    proto = session.config["protocol_factory"]()
    proto.connection_made(Transport())
    fut = loop.create_future()
    fut.set_result((proto.transport, proto))
    session.connection_made(fut)
    return proto


def feed(proto, data: bytes, cuts: list[int]) -> None:
    prev = 0
    for cut in sorted(set(c % (len(data) + 1) for c in cuts)) + [len(data)]:
        if cut > prev:
            proto.data_received(data[prev:cut])
            prev = cut


def drain(client) -> list:
    out = []
    while not client.events.empty():
        out.append(client.events.get_nowait())
    return out


def ami_client():
    from callcenter.asterisk.ami import AmiClient
    return AmiClient("127.0.0.1", 5038, "hotline", "secret")


def run(coro_fn):
    async def main():
        client = ami_client()
        proto = connect(client)
        try:
            return await coro_fn(client, proto)
        finally:
            client.close()
    return asyncio.run(main())


line_junk = st.one_of(
    st.sampled_from([b"Event: UserEvent", b"Event: Hangup", b"Event: A", b"Event:", b"Event: ", b": ", b":",
                     b"Response: Success", b"Response: Follows", b"Response: Error", b"ActionID: 1",
                     b"ActionID: 2", b"Linkedid: 9.1", b"Uniqueid: 9.1", b"Timestamp: nan", b"Cause: 1e9",
                     b"Context: hotline-trunk", b"UserEvent: HotlineQueue", b"Path: lang=\xff\xfe",
                     b"--END COMMAND--", b"\x00\x01\x02", b"\xe5\x9f\x8e", b"\xe5\x9f", b"\r", b"\n"]),
    st.binary(max_size=30),
    st.tuples(st.text(max_size=12), st.text(max_size=30)).map(lambda kv: f"{kv[0]}: {kv[1]}".encode()))
block_junk = st.lists(line_junk, max_size=8).map(lambda lines: b"\r\n".join(lines) + b"\r\n\r\n")
byte_stream = st.one_of(st.binary(max_size=400),
                        st.lists(st.one_of(block_junk, block_junk, st.binary(max_size=40)), max_size=12).map(b"".join))
cuts = st.lists(st.integers(0, 10 ** 6), max_size=8)


@fuzz(200)
@given(byte_stream, cuts)
def test_random_bytes_never_break_the_adapter(data, where):
    async def go(client, proto):
        feed(proto, BANNER + data, where)
        got = drain(client)
        assert all(isinstance(m, Message) and "event" in m for m in got)
        t = CallTracker(clock=Clock())
        for m in got:
            t.apply(m)
        assert_tracker_sane(t)
    run(go)


ascii_junk = st.lists(st.tuples(st.sampled_from(HEADERS + ("X-Junk", "Response")),
                                st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)),
                      min_size=1, max_size=6).map(lambda kvs: "".join(f"{k}: {v}\r\n" for k, v in kvs).encode() + b"\r\n")


@fuzz(100)
@given(kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=2), junk=st.lists(ascii_junk, max_size=6),
       where=cuts, data=st.data())
def test_where_reads_split_the_stream_changes_nothing(kinds, junk, where, data):
    """TCP delivers the stream in arbitrary pieces: the messages parsed (and so the calls) are the
    same however it is cut. (ASCII only: panoramisk decodes each read on its own and drops a
    multi-byte character cut in two.)"""
    blocks = [wire(e) for n, kind in enumerate(kinds, start=1) for e in story(n, kind)]
    for j in junk:
        blocks.insert(data.draw(st.integers(0, len(blocks)), label="at"), j)
    stream = BANNER + b"".join(blocks)

    def parse(cut_at):
        async def go(client, proto):
            feed(proto, stream, cut_at)
            return [dict(m.items()) for m in drain(client)]
        return run(go)

    whole, pieces = parse([]), parse(where)
    assert pieces == whole
    assert len(whole) >= sum(len(story(n, k)) for n, k in enumerate(kinds, start=1))
    t = clean_run(Message(m) for m in pieces)
    for n in range(1, len(kinds) + 1):
        assert t.calls[ids(n)["call"]].status == "ended"


# ---- through the controller's own event loop (Controller._consume), no Asterisk needed
@pytest.fixture(scope="module")
def cfg():
    from core.config import load_config
    d = tempfile.mkdtemp(prefix="fuzz-ami-")
    return load_config(ROOT, {"database": {"url": f"sqlite:///{d}/t.db"}, "redis": {"url": None}, "state_dir": d,
                              "transcription": {"live": {"enabled": False}}})


timestamp_mangle = st.sampled_from([None, None, None, None, "", "soon", "nan", "inf", "1e400", "-5", "0"])


@fuzz(100)
@given(kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=2), junk=st.lists(block_junk, max_size=5),
       stamps=st.lists(timestamp_mangle, max_size=40),
       repeats=st.lists(st.tuples(st.integers(0, 40), st.sampled_from(
           ("Event", "UserEvent", "Linkedid", "Uniqueid", "Timestamp", "Channel", "Queue"))), max_size=4),
       where=cuts, data=st.data())
def test_controller_hands_every_event_to_the_tracker(cfg, kinds, junk, stamps, repeats, where, data):
    """Whatever comes in (bad timestamps or a repeated header on a call's own events, junk in
    between), the controller's view of the calls is exactly what the tracker makes of the same
    events, and its consumer lives on."""
    from store.secrets import Secrets
    from callcenter.controller import Controller

    events = [e for n, kind in enumerate(kinds, start=1) for e in story(n, kind)]
    for ev, stamp in zip(events, stamps):
        if stamp is not None:
            ev["Timestamp"] = stamp
    blocks = [wire(e) for e in events]
    for i, header in repeats:     # e.g. "Uniqueid: x" twice: panoramisk makes it a list
        i %= len(blocks)
        blocks[i] = blocks[i][:-2] + f"{header}: 9.9\r\n\r\n".encode()
    for j in junk:
        blocks.insert(data.draw(st.integers(0, len(blocks)), label="at"), j)

    async def go():
        ctl = Controller(cfg, Secrets("hotline", "secret", {}, privacy_key="k", bus_key="k"))
        ctl.tracker.clock = Clock()
        proto = connect(ctl.ami)
        feed(proto, BANNER + b"".join(blocks), where)
        got = list(ctl.ami.events._queue)
        consumer = asyncio.create_task(ctl._consume())
        while not ctl.ami.events.empty():
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        alive = not consumer.done()
        consumer.cancel()
        ctl.ami.close()
        await ctl.db.engine.dispose()
        return ctl, got, alive

    ctl, got, alive = asyncio.run(go())
    assert alive
    counted = [m for m in ctl.metrics.registry.collect() if m.name == "hotline_ami_events"][0].samples
    per_name = {s.labels["event"]: s.value for s in counted if s.name == "hotline_ami_events_total"}
    assert sum(per_name.values()) == len(got) and len(per_name) <= 101      # bounded label set
    reference = CallTracker(clock=Clock(), aliases=ctl.tracker.aliases)
    for m in got:
        reference.apply(m)
    assert {k: c.as_dict() for k, c in ctl.tracker.calls.items()} == \
        {k: c.as_dict() for k, c in reference.calls.items()}
    assert_tracker_sane(ctl.tracker)
    if not repeats:     # (a repeated Linkedid or Uniqueid can cost a call its start or its end)
        for n in range(1, len(kinds) + 1):
            assert ctl.tracker.calls[ids(n)["call"]].status == "ended"
