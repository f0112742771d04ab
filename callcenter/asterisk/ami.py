"""AMI client on panoramisk: reconnect with backoff, ordered event delivery, bounded actions.

panoramisk dispatches each event to callbacks as it parses it; we put every event on one
asyncio.Queue so the controller handles them strictly in order, and a slow handler (a DB write)
never reorders a call's story.
"""
from __future__ import annotations

import asyncio
import logging
import random

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

log = logging.getLogger("hotline.ami")


class AmiProtocol(AMIProtocol):
    """panoramisk's protocol, where one malformed message costs that message only.

    panoramisk turns a header repeated in a message into a list, then fails on a repeated Event or
    ActionID (a list has no .lower(), cannot be a dict key) inside data_received: asyncio would
    drop the AMI connection, and the events after it in the same read, over one bad message."""

    def handle_message(self, message):
        try:
            return super().handle_message(message)
        except Exception as e:
            log.warning("dropped a malformed AMI message (%s): %.300r", e, message)


class BackoffManager(Manager):
    """panoramisk's Manager retries on a fixed delay; we back off exponentially with jitter."""

    def __init__(self, *, min_delay: float = 0.5, max_delay: float = 15.0, **config):
        super().__init__(reconnect_timeout=0, **config)
        self.min_delay, self.max_delay = min_delay, max_delay
        self.failures = 0

    def connect(self, run_forever=False, on_startup=None, on_shutdown=None):  # noqa: D401
        return super().connect(run_forever, on_startup, on_shutdown)

    def connection_made(self, f):
        try:
            f.result()
        except OSError:
            self.failures += 1
            delay = min(self.max_delay, self.min_delay * 2 ** min(self.failures, 6)) * random.uniform(0.8, 1.2)
            log.warning("AMI %s:%s unreachable (attempt %d); retrying in %.1fs",
                        self.config["host"], self.config["port"], self.failures, delay)
            self.loop.call_later(delay, self.connect)
            return
        self.failures = 0
        super().connection_made(f)

    def connection_lost(self, exc):
        self._connected = False
        self.authenticated = False
        log.error("AMI connection lost: %s", exc)
        self.loop.call_soon(self.on_disconnect, self, exc)
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None
        self.failures += 1
        delay = min(self.max_delay, self.min_delay * 2 ** min(self.failures, 6))
        self.loop.call_later(delay, self.connect)


class UnsafeAction(ValueError):
    """An action that would not say what it seems to: a value that would add AMI headers or actions."""


def check_action(action: dict) -> None:
    """Refuse an action whose headers could be read as more than they are. AMI is a line protocol and
    panoramisk writes values as they are: a CR or LF in a value (Asterisk ends a line at a bare LF too)
    starts a new header, an empty line a new action (an Originate with our `originate` class, past the
    numbering plan); a NUL cuts the value. In an Originate's ``Variable`` Asterisk splits on commas, so a
    comma in a value sets another variable. Every value we send is ours or checked before it gets here
    (numbers against the numbering plan, targets against the config); this is the last line, in one
    place, for whatever a caller, a partner or a desk user might one day get into a value."""
    for key, value in action.items():
        for v in value if isinstance(value, (list, tuple)) else (value,):
            text = f"{key}{v}"
            if any(c in text for c in "\r\n\x00"):
                raise UnsafeAction(f"AMI {action.get('Action', '?')}: a line break or NUL in {key}")
            if key.lower() == "variable" and "," in str(v):
                raise UnsafeAction(f"AMI {action.get('Action', '?')}: a comma in a variable ({str(v)[:40]!r})")


class Barrier:
    """Put in ``AmiClient.events`` behind every event Asterisk had sent when it was asked for: once it is
    taken off the queue and ``done`` set, every one of those events has been handled."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class AmiClient:
    """Two AMI sessions: one reads events (``Events: on``), the other sends our actions (``Events: off``).

    Asterisk serves each session in one thread, which runs the session's actions and writes its events
    in between: with one session, every event waited behind whatever action we had sent (a QueueRemove
    at a rota change took 6 s on a busy queue, a channel Setvar 3 s), and the wallboard with it. Apart,
    the event stream never waits on an action. An action's response may then come before or after the
    events it causes; ``barrier()`` is for the one place where that order matters."""

    def __init__(self, host: str, port: int, username: str, secret: str, on_login=None, on_disconnect=None,
                 on_receive=None, nudge_every: float = 0.0):
        """``on_receive(event)``: called as each event is read off the socket, before it waits in
        ``events`` (the controller times an event's arrival there, apart from its handling).
        ``on_login``: awaited each time both sessions are logged in again (a resynchronisation: a lost
        event session may have lost events); ``on_disconnect(exc)``: either session lost.
        ``nudge_every``: seconds between Pings on the event session (0: none), see ``_nudge``."""
        self.events: asyncio.Queue[Message] = asyncio.Queue(maxsize=100_000)
        self.nudge_every = nudge_every
        self.nudges = 0
        self._nudger: asyncio.Task | None = None
        self._on_receive = on_receive
        self.connected = asyncio.Event()
        self._on_login_cb = on_login
        self._on_disconnect_cb = on_disconnect
        self.dropped = 0

        def session(events: str) -> BackoffManager:
            return BackoffManager(host=host, port=port, username=username, secret=secret,
                                  ping_delay=5, ping_interval=5, events=events,
                                  on_login=self._logged_in, on_disconnect=self._disconnected,
                                  protocol_factory=AmiProtocol,
                                  forgetable_actions=("ping", "login", "queuestatus", "coreshowchannels",
                                                      "getvar"))
        self.event_session = session("on")
        self.event_session.register_event("*", self._enqueue)
        self.action_session = session("off")

    @property
    def sessions(self) -> tuple[BackoffManager, BackoffManager]:
        return self.event_session, self.action_session

    def _enqueue(self, manager, event: Message) -> None:
        if self._on_receive is not None:
            self._on_receive(event)
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1  # never block the protocol; counted and exported as a metric

    def _logged_in(self, manager) -> None:
        which = "events" if manager is self.event_session else "actions"
        if not all(m.authenticated for m in self.sessions):
            log.info("AMI %s session logged in; waiting for the other", which)
            return
        if self.connected.is_set():
            return      # both logged in again at once: the first callback to run told the controller
        log.info("AMI logged in (%s session last)", which)
        self.connected.set()
        if self._on_login_cb:
            asyncio.ensure_future(self._on_login_cb())

    def _disconnected(self, manager, exc) -> None:
        self.connected.clear()
        if manager is self.event_session and self._nudger is not None:
            # a Ping in flight on the lost session is never answered: its wait (up to 5 s) would hold the
            # Pings back after the reconnect (seen in CI: none in the first 0.5 s)
            self._nudger.cancel()
            self._nudger = asyncio.get_running_loop().create_task(self._nudge(), name="ami-nudge")
        if self._on_disconnect_cb:
            self._on_disconnect_cb(exc)

    async def start(self) -> None:
        for m in self.sessions:
            m.loop = asyncio.get_running_loop()
            m.connect()
        if self.nudge_every > 0:
            self._nudger = asyncio.create_task(self._nudge(), name="ami-nudge")

    def close(self) -> None:
        if self._nudger is not None:
            self._nudger.cancel()
            self._nudger = None
        for m in self.sessions:
            m.close()

    async def _nudge(self) -> None:
        """Asterisk's manager wakes a session's thread with SIGURG when it queues an event for it. A
        signal that lands after the thread said it is waiting but before it sleeps in poll() is lost: the
        event then stays queued until the next one wakes the thread, seconds when calls are few (asterisk
        issue 2145; the soak saw events 1-4 s late on arrival with our loop on time). Input from us wakes
        the thread as well: a Ping every ``nudge_every`` bounds that wait, whatever the race."""
        session = self.event_session
        while True:
            await asyncio.sleep(self.nudge_every)
            if not session.authenticated:
                continue
            try:
                await asyncio.wait_for(session.send_action({"Action": "Ping"}), 5)
                self.nudges += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                pass        # a lost session: its reconnect and the controller's resync deal with it

    async def barrier(self, timeout: float = 10.0) -> None:
        """Return once every event Asterisk had queued for us when this was called has been taken off
        ``events`` and handled (the consumer sets a ``Barrier``'s ``done``). A Ping on the event session
        is answered after the events queued for the session before it; the Barrier goes in behind them.
        Not covered: an event still inside Asterisk's message bus (stasis, well under a second); the
        reconcile asks a listing interval after the call went missing."""
        if not self.connected.is_set():
            raise ConnectionError("AMI not connected")
        await asyncio.wait_for(self.event_session.send_action({"Action": "Ping"}), timeout)
        mark = Barrier()
        self.events.put_nowait(mark)      # a full queue raises: the caller tries again later
        await asyncio.wait_for(mark.done, timeout)

    async def action(self, action: dict, timeout: float = 10.0, as_list: bool = False):
        """Send an AMI action and wait for its response; raise on timeout or disconnection.

        as_list is explicit: panoramisk otherwise guesses from the message text and takes
        QueueAdd's "Added interface to queue" for the start of a list that never ends.
        """
        if not self.connected.is_set():
            raise ConnectionError("AMI not connected")
        check_action(action)
        fut = self.action_session.send_action(dict(action), as_list=as_list)
        return await asyncio.wait_for(fut, timeout)

    async def list_action(self, action: dict, timeout: float = 15.0, whole: bool = False) -> list[Message]:
        """An action answered by an event list (CoreShowChannels, QueueStatus): the events only.
        ``whole``: raise unless the closing event's ListItems counts exactly the events received (a list
        that lost a message must not be read as "these are all")."""
        resp = await self.action(action, timeout, as_list=True)
        msgs = resp if isinstance(resp, list) else [resp]
        first = msgs[0] if msgs else None
        if first is not None and first.get("Response") == "Error":
            raise RuntimeError(f"{action.get('Action')}: {first.get('Message')}")
        items = [m for m in msgs if m.get("Event") and not m.get("Event", "").endswith("Complete")]
        if whole:
            done = next((m for m in msgs if str(m.get("Event", "")).endswith("Complete")), None)
            if done is None or done.get("ListItems") != str(len(items)):
                raise RuntimeError(f"{action.get('Action')}: incomplete list ({len(items)} items, "
                                   f"ListItems {done.get('ListItems') if done is not None else 'missing'})")
        return items
