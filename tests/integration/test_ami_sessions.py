"""The controller's AMI client on a real Asterisk: events on one session, actions on another.

Asterisk serves an AMI session in one thread that runs its actions and writes its events in between,
so with one session every event waits behind whatever action is running. The slow action here is a
synchronous Originate to a Local channel that rings for 3 s (dialplan added for the test)."""
from __future__ import annotations

import asyncio
import time

import pytest
from panoramisk import Manager

from callcenter.asterisk.ami import AmiClient, Barrier

SLOW_CONTEXT = "\n[test-slow-answer]\nexten => s,1,Wait(3)\n same => n,Hangup()\n"
SLOW = {"Action": "Originate", "Channel": "Local/s@test-slow-answer", "Application": "Wait", "Data": "1",
        "Timeout": "10000"}


@pytest.fixture
def slow_dialplan(stack):
    ext = stack.asterisk.paths.host(stack.asterisk.paths.etc / "extensions.conf")
    shipped = ext.read_text()
    ext.write_text(shipped + SLOW_CONTEXT)
    stack.asterisk.rx("dialplan reload")
    try:
        yield stack
    finally:
        ext.write_text(shipped)
        stack.asterisk.rx("dialplan reload")


def client(s, **kw) -> AmiClient:
    a = s.cfg.system.asterisk
    return AmiClient("127.0.0.1", a.ami_port, s.secrets.ami_user, s.secrets.ami_secret, **kw)


def new_channels(got: list, t0: float) -> list[float]:
    return [t - t0 for t, ev in got if ev.get("Event") == "Newchannel"
            and str(ev.get("Channel", "")).startswith("Local/s@test-slow-answer")]


def test_events_do_not_wait_behind_a_slow_action(slow_dialplan):
    s = slow_dialplan

    async def two_sessions():
        got = []
        c = client(s, on_receive=lambda ev: got.append((time.monotonic(), ev)))
        await c.start()
        await asyncio.wait_for(c.connected.wait(), 20)
        t0 = time.monotonic()
        resp = await c.action(SLOW, timeout=15)
        took = time.monotonic() - t0
        await asyncio.sleep(0.3)
        c.close()
        return resp, took, new_channels(got, t0)

    async def one_session():
        # the layout before: one session for both (what panoramisk does by default)
        got = []
        a = s.cfg.system.asterisk
        m = Manager(host="127.0.0.1", port=a.ami_port, username=s.secrets.ami_user, secret=s.secrets.ami_secret,
                    events="on")
        m.register_event("Newchannel", lambda _m, ev: got.append((time.monotonic(), ev)))
        await m.connect()
        await asyncio.sleep(1)          # logged in
        t0 = time.monotonic()
        resp = await asyncio.wait_for(m.send_action(dict(SLOW), as_list=False), 15)
        took = time.monotonic() - t0
        await asyncio.sleep(0.3)
        m.close()
        return resp, took, new_channels(got, t0)

    resp, took, seen = asyncio.run(asyncio.wait_for(two_sessions(), 40))
    assert resp.get("Response") == "Error" and took > 2.5, (resp, took)     # rang 3 s, never answered
    assert len(seen) == 2 and max(seen) < took / 2, (seen, took)           # both legs, while it rang
    resp, took, seen = asyncio.run(asyncio.wait_for(one_session(), 40))
    assert took > 2.5 and len(seen) == 2 and min(seen) > 2.5, (seen, took)  # held back until the action ended


def test_a_barrier_comes_after_every_event_sent_before_it(stack):
    """What _reconcile relies on: once the Barrier is handled, so is every event Asterisk had sent
    before it was asked for, however far behind the consumer is (here 0.3 s an event)."""
    s = stack
    qs = s.asterisk.rx("queue show")
    queue = next(line.split()[0] for line in qs.splitlines() if " has " in line and " calls " in line)

    async def go():
        handled, received = [], []
        c = client(s, on_receive=lambda ev: received.append(ev.get("Event")))

        async def consume():      # a backlog: slower than the events come
            while True:
                ev = await c.events.get()
                await asyncio.sleep(0.3)
                if isinstance(ev, Barrier):
                    handled.append("barrier")
                    ev.done.set_result(None)
                else:
                    handled.append(ev.get("Event"))
        task = asyncio.create_task(consume())
        await c.start()
        await asyncio.wait_for(c.connected.wait(), 20)
        try:
            for _ in range(3):
                await asyncio.to_thread(s.asterisk.rx, f"queue add member PJSIP/probe9 to {queue} penalty 0 as probe9")
                await asyncio.to_thread(s.asterisk.rx, f"queue remove member PJSIP/probe9 from {queue}")
            # out of Asterisk's message bus (stasis) and queued for the session: sent before the Ping
            await asyncio.sleep(0.5)
            backlog = c.events.qsize()
            await c.barrier()
            return list(handled), backlog, list(received)
        finally:
            task.cancel()
            c.close()

    handled, backlog, received = asyncio.run(asyncio.wait_for(go(), 40))
    assert received.count("QueueMemberAdded") == 3 and received.count("QueueMemberRemoved") == 3, received
    assert backlog >= 3, backlog
    assert handled[-1] == "barrier" and handled.count("QueueMemberRemoved") == 3, handled


def test_connected_needs_both_sessions_and_a_lost_one_brings_a_new_login(stack):
    """Either session lost: not connected, the controller told (it marks itself unready); both back:
    on_login again (the controller resynchronises: an event session lost may have lost events)."""
    s = stack
    logins, losses = [], []

    async def go():
        async def on_login():
            logins.append(time.monotonic())
        c = client(s, on_login=on_login, on_disconnect=losses.append)
        await c.start()
        await asyncio.wait_for(c.connected.wait(), 20)
        await asyncio.sleep(0.2)
        assert len(logins) == 1
        # the action session only: events keep coming, actions cannot be sent until it is back
        c.action_session.protocol.transport.close()
        await asyncio.sleep(0.1)
        assert not c.connected.is_set() and len(losses) == 1
        with pytest.raises(ConnectionError):
            await c.action({"Action": "Ping"})
        await asyncio.wait_for(c.connected.wait(), 20)
        await asyncio.sleep(0.2)
        assert len(logins) == 2
        assert (await c.action({"Action": "Ping"})).get("Response") == "Success"
        c.event_session.protocol.transport.close()
        await asyncio.sleep(0.1)
        assert not c.connected.is_set() and len(losses) == 2
        await asyncio.wait_for(c.connected.wait(), 20)
        await asyncio.sleep(0.2)
        assert len(logins) == 3
        # both at once (Asterisk restarted): one login for the two, one resynchronisation
        for m in c.sessions:
            m.protocol.transport.close()
        await asyncio.sleep(0.1)
        assert not c.connected.is_set()
        await asyncio.wait_for(c.connected.wait(), 20)
        await asyncio.sleep(1.5)
        assert len(logins) == 4, len(logins)
        c.close()

    asyncio.run(asyncio.wait_for(go(), 60))


def test_the_event_session_is_nudged_and_its_pings_stay_out_of_the_events(stack):
    """The Pings that bound a lost wake-up's wait (AmiClient._nudge) on a real Asterisk: answered, never
    taken for events, and sent again once a lost event session is back."""
    s = stack

    async def go():
        received = []
        c = client(s, on_receive=lambda ev: received.append(ev), nudge_every=0.05)
        await c.start()
        await asyncio.wait_for(c.connected.wait(), 20)
        await asyncio.sleep(1.0)
        first = c.nudges
        c.event_session.protocol.transport.close()
        await asyncio.sleep(0.1)
        assert not c.connected.is_set()
        await asyncio.wait_for(c.connected.wait(), 20)
        mark = c.nudges
        await asyncio.sleep(0.5)
        after = c.nudges - mark
        c.close()
        return first, after, received

    first, after, received = asyncio.run(asyncio.wait_for(go(), 40))
    assert first >= 8 and after >= 4, (first, after)            # 20 a second, less the loaded host's delays
    assert not [ev for ev in received if ev.get("Response") or ev.get("Ping")], received[:5]
