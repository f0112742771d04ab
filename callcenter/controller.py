"""The controller daemon: follows calls over AMI, keeps records, manages agents.

resources (HTTP API in dashboard/) -> services (CallTracker, AgentService) -> adapters (AMI, DB,
Redis). It never steers a live call: the generated dialplan does, so calls go on when this
process is down; on (re)connection the view is rebuilt from Asterisk.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agents.callbacks import CallbackScheduler
from agents.desk import CallControl
from agents.rota import RotaService
from agents.service import AgentService
from callcenter.asterisk.ami import AmiClient
from store.secrets import Secrets
from callcenter import cdr, voicemail
from core.paths import InstancePaths
from store.bus import Bus
from core.calls import RESYNC_VARS, CallState, CallTracker, usable_epoch
from core.config import HotlineConfig
from backoffice.followups import FollowUpDialer
from store.db import AppointmentStore, ComplaintStore, FollowUpStore, Store, TicketStore, migrate
from store.transcripts import TranscriptStore
from backoffice.tickets import load_ticket_rules
from interop.effects import ticket_effects
from core.transfers import transfer_extensions
from callcenter.wallboard import Wallboard
from transcription.keywords import load_rules
from transcription.models import ModelRegistry
from transcription.segment import index_text
from transcription.tap import LiveTap

log = logging.getLogger("hotline.controller")
WRITE_BATCH = 200   # call saves written in one statement at most


def event_time(ev) -> float | None:
    """Asterisk's Timestamp header (timestampevents=yes), or None if missing or garbled: a bad
    timestamp must not cost the event itself."""
    return usable_epoch(ev.get("Timestamp"))


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        # by event name (a bounded set: Asterisk's event types that pass the AMI user's filters)
        self.events = Counter("hotline_ami_events_total", "AMI events received", ["event"], registry=self.registry)
        self._event_names: set[str] = set()
        self.bad_events = Counter("hotline_ami_events_failed_total", "AMI events that failed handling", registry=self.registry)
        self.calls = Counter("hotline_calls_total", "Calls ended", ["city", "outcome"], registry=self.registry)
        self.live_calls = Gauge("hotline_live_calls", "Calls in progress", registry=self.registry)
        self.ami_up = Gauge("hotline_ami_connected", "1 when the AMI session is logged in", registry=self.registry)
        self.event_lag = Gauge("hotline_ami_event_lag_seconds", "Last event's age when handled", registry=self.registry)
        self.db_errors = Counter("hotline_db_errors_total", "Failed record writes (retried)", registry=self.registry)
        fine = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
        # from Asterisk's own event timestamps: is the controller keeping up, is the dialplan fast under load
        self.event_delay = Histogram("hotline_ami_event_delay_seconds", "Event's age when handled",
                                     buckets=fine, registry=self.registry)
        self.routing = Histogram("hotline_routing_decision_seconds",
                                 "Dialplan routing: hours, priority and queue checks until the caller joins or is told "
                                 "the wait", buckets=fine, registry=self.registry)

    def event_label(self, name) -> str:
        """The event name as a label; malformed or past the 100th distinct name: "other" (bounded series)."""
        if isinstance(name, str) and name in self._event_names:
            return name
        if not (isinstance(name, str) and name.isascii() and name.isalnum() and len(name) <= 40) \
                or len(self._event_names) >= 100:
            return "other"
        self._event_names.add(name)
        return name

    def watch(self, ctl: "Controller") -> None:
        """Queue sizes and agents by state, read from the live view when Prometheus scrapes."""
        self.registry.register(_LiveCollector(ctl))


class _LiveCollector:
    def __init__(self, ctl: "Controller"):
        self.ctl = ctl

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily
        st = self.ctl.status()
        waiting = GaugeMetricFamily("hotline_queue_waiting", "Callers waiting in a queue", labels=["queue"])
        talking = GaugeMetricFamily("hotline_queue_talking", "Calls of a queue connected to an agent", labels=["queue"])
        for q, v in sorted(st["queues"].items()):
            waiting.add_metric([q], v["waiting"])
            talking.add_metric([q], v["talking"])
        agents = GaugeMetricFamily("hotline_agents", "Agents by state", labels=["state"])
        counts: dict[str, int] = {}
        for a in st["agents"]:
            counts[a["state"]] = counts.get(a["state"], 0) + 1
        for state in ("logged_out", "ready", "on_call", "paused", "wrap_up"):
            agents.add_metric([state], counts.get(state, 0))
        yield from (waiting, talking, agents)


class Controller:
    def __init__(self, cfg: HotlineConfig, secrets: Secrets):
        self.cfg = cfg
        self.secrets = secrets
        a = cfg.system.asterisk
        self.metrics = Metrics()
        self.tracker = CallTracker(aliases={num: name for name, num in transfer_extensions(cfg).items()})
        self.store = Store(cfg.system.database.url, cfg.root)
        # partner status messages and command-center events commit with the ticket change causing them
        self.tickets = TicketStore(self.store, effects=ticket_effects(cfg))
        self.appointments = AppointmentStore(self.store)
        self.followups = FollowUpStore(self.store)
        self.complaints = ComplaintStore(self.store)
        self.ticket_rules = load_ticket_rules(cfg.root)
        self.ticket_listeners: list = []   # callables(event dict) for escalations
        self.bus = Bus(cfg.system.redis.url, cfg.system.redis.prefix)
        self.ami = AmiClient("127.0.0.1", a.ami_port, secrets.ami_user, secrets.ami_secret,
                             on_login=self._on_login, on_disconnect=self._on_disconnect)
        self.agents = AgentService(cfg, self.ami, self.store)
        self.desk = CallControl(cfg, self.ami)
        self.rota = RotaService(cfg, self.agents, cfg.system.controller.rota_interval_seconds)
        self.callbacks = CallbackScheduler(cfg, self.ami, self.store, cfg.system.controller.rota_interval_seconds)
        self.dialer = FollowUpDialer(cfg, self.ami, self.followups, cfg.system.controller.rota_interval_seconds)
        self._dirty: asyncio.Queue = asyncio.Queue()  # call ids to save, or ("op", call id, effect)
        self._pending: dict[str, int] = {}   # queued saves per call: only the newest is written
        self._writing = False                # the writer holds items taken off the queue
        self._last_marked: dict[str, dict] = {}    # call id -> the state last written and published
        self._ticketed: dict[str, str] = {}        # call id -> its transfers when its ticket was last seen to
        self._routing_from: dict[str, float] = {}   # channel -> HotlineRoute event time (routing histogram)
        self._tasks: list[asyncio.Task] = []
        self.resynced = asyncio.Event()
        self.started_at = time.time()
        self.listeners: list = []  # callables(call_dict) for WebSocket fan-out
        self.transcripts = TranscriptStore(self.store)
        self.models = ModelRegistry(cfg)
        self.tap = LiveTap(cfg, self.ami, self.bus, self.models)
        self.wallboard = Wallboard(self)
        self.metrics.watch(self)
        self.listeners.append(self.tap.on_call)
        self.transcription_listeners: list = []   # callables(message) for live text and alerts
        # checked at start so a bad keywords file is a config error here, not in the transcriber later
        self.keyword_rules = load_rules(cfg.resolve(cfg.system.transcription.keywords_file),
                                        set(self.ticket_rules.categories))

    async def start(self) -> None:
        await asyncio.to_thread(migrate, self.cfg.system.database.url, self.cfg.root)
        for call in await self.store.unfinished_calls():
            self.tracker.calls[call.call_id] = call
        self._tasks = [asyncio.create_task(self._consume(), name="ami-events"),
                       asyncio.create_task(self._write(), name="record-writer"),
                       asyncio.create_task(self._escalate_overdue(), name="ticket-deadlines"),
                       asyncio.create_task(self.bus.listen("transcription", self.broadcast),
                                           name="transcription-relay"),
                       asyncio.create_task(self.bus.listen("interop", self.broadcast), name="interop-relay"),
                       asyncio.create_task(self.wallboard.run(self.resynced), name="alarms")]
        if self.cfg.system.trunk.outbound:
            self._tasks.append(asyncio.create_task(self.callbacks.run(self.resynced), name="callbacks"))
            if self.cfg.system.controller.follow_up.enabled:
                self._tasks.append(asyncio.create_task(self.dialer.run(self.resynced), name="follow-ups"))
        if self.cfg.system.controller.rotas_enabled and self.cfg.rotas:
            self._tasks.append(asyncio.create_task(self.rota.run(self.resynced), name="rota"))
        await self.ami.start()

    async def stop(self) -> None:
        self.ami.close()
        # flush what is pending before leaving
        try:
            await asyncio.wait_for(self._drain(), 5)
        except asyncio.TimeoutError:
            log.warning("stopping with %d unsaved call updates", self._dirty.qsize())
        for t in self._tasks:
            t.cancel()
        await self.store.close()
        await self.bus.close()

    async def _drain(self) -> None:
        while not self._dirty.empty() or self._writing:
            await asyncio.sleep(0.05)

    # ---- AMI session
    async def _on_login(self) -> None:
        self.metrics.ami_up.set(1)
        try:
            await self.resync()
        except Exception:
            log.exception("resynchronisation failed; will retry on next login")

    def _on_disconnect(self, exc) -> None:
        self.metrics.ami_up.set(0)
        self.resynced.clear()

    async def resync(self) -> None:
        """Rebuild calls and agents from what Asterisk has live right now."""
        chans = await self.ami.list_action({"Action": "CoreShowChannels"})
        by_bridge: dict[str, list] = {}
        for c in chans:
            if c.get("BridgeId"):
                by_bridge.setdefault(c["BridgeId"], []).append(c)
        live_ids = set()
        trunk_prefix = f"PJSIP/{self.cfg.system.trunk.name}-"
        for c in chans:
            if c.get("Uniqueid") != c.get("Linkedid") or not c.get("Channel", "").startswith(trunk_prefix):
                continue
            values = {}
            for var in RESYNC_VARS:
                try:
                    r = await self.ami.action({"Action": "Getvar", "Channel": c["Channel"], "Variable": var}, timeout=5)
                    values[var] = r.get("Value", "") or ""
                except Exception:
                    values[var] = ""
            peers = [p["Channel"] for p in by_bridge.get(c.get("BridgeId", ""), []) if p["Channel"] != c["Channel"]]
            try:
                started = time.time() - _hms(c.get("Duration", ""))
            except ValueError:
                started = None
            call = self.tracker.adopt(c["Linkedid"], c["Channel"], values, peers[0] if peers else "", started)
            live_ids.add(call.call_id)
            self._mark(call)
        # calls that ended while we were not listening: Asterisk's CDR has them (or we say so)
        paths = InstancePaths(self.cfg.resolve(self.cfg.system.asterisk.rootfs), self.cfg.system.asterisk.instance)
        from_cdr = await asyncio.to_thread(cdr.read_calls, paths, time.time() - 7 * 86400)
        for call in list(self.tracker.live()):
            if call.call_id in live_ids:
                continue
            rebuilt = from_cdr.get(call.call_id)
            if rebuilt is not None:
                self.tracker.calls[call.call_id] = rebuilt
                self._mark(rebuilt)
            else:
                call.status = "ended"
                call.outcome = call.outcome or "unobserved"
                call.hangup_cause_text = call.hangup_cause_text or "ended while the controller was down"
                self._mark(call)
        missing = await self.store.missing_call_ids(list(from_cdr))
        for call_id in missing:
            if call_id not in self.tracker.calls:
                self.tracker.calls[call_id] = from_cdr[call_id]
                self._mark(from_cdr[call_id])
        if missing:
            log.warning("rebuilt %d calls from Asterisk's CDR that ended while the controller was down", len(missing))
        await self.agents.rebuild()
        await self._learn_aht()
        await self._reconcile_voicemail()
        self.resynced.set()
        log.info("resynchronised: %d live calls, %d agents logged in", len(live_ids),
                 sum(1 for a in self.agents.agents.values() if a.queues))

    # ---- event handling, strictly in order
    async def _consume(self) -> None:
        while True:
            ev = await self.ami.events.get()
            self.metrics.events.labels(self.metrics.event_label(ev.get("Event"))).inc()
            try:
                ts = event_time(ev)
                if ts is not None:
                    delay = max(0.0, time.time() - ts)
                    self.metrics.event_lag.set(delay)
                    self.metrics.event_delay.observe(delay)
                    self._time_routing(ev, ts)
                call = self.tracker.apply(ev)
                if call is not None:
                    self._mark(call, ts)
                self._callback_effects(ev, call)
                self.agents.apply_event(ev)
            except Exception:
                # a malformed event costs us that event, never the controller
                self.metrics.bad_events.inc()
                log.exception("failed to handle AMI event %r", dict(ev) if hasattr(ev, "items") else ev)

    def _time_routing(self, ev, ts: float) -> None:
        """HotlineRoute -> the first queue step's wait announcement or join, per channel."""
        if not isinstance(ev.get("Uniqueid", ""), str):
            return   # repeated header (a list, unhashable): raising here would cost the tracker the event
        if ev.get("Event") == "Hangup":
            self._routing_from.pop(ev.get("Uniqueid", ""), None)
            return
        kind = ev.get("UserEvent", "") if ev.get("Event") == "UserEvent" else ""
        if kind == "HotlineRoute":
            if len(self._routing_from) > 10000:     # never grows without bound, whatever Asterisk sends
                self._routing_from.clear()
            self._routing_from[ev.get("Uniqueid", "")] = ts
        elif kind in ("HotlineWaitAnnounced", "HotlineQueue"):
            start = self._routing_from.pop(ev.get("Uniqueid", ""), None)
            if start is not None:
                self.metrics.routing.observe(max(0.0, ts - start))

    def _callback_effects(self, ev, call: CallState | None) -> None:
        """Callback requests and results become durable tasks, written in event order."""
        kind = ev.get("UserEvent", "") if ev.get("Event") == "UserEvent" else ""
        if kind == "HotlineCallbackRequest" and call is not None:
            self._dirty.put_nowait(("op", call.call_id, lambda: self.store.add_callback(call, "queue_callback")))
        elif kind in ("HotlineSurvey", "HotlineSurveyEnd"):
            self._dirty.put_nowait(("op", f"follow-up {ev.get('FollowUp')}", lambda: self.dialer.on_event(ev)))
        elif kind == "HotlineCallbackResult":
            origin, result = ev.get("Origin", ""), ev.get("Result", "")
            try:
                attempt = int(ev.get("Attempt", "0"))
            except ValueError:
                attempt = 0
            status = {"done": "done", "failed": "failed", "retry": "pending"}.get(result)
            if origin and status:
                self._dirty.put_nowait(("op", origin, lambda: self.store.update_callback(origin, status, attempt)))

    def _mark(self, call: CallState, event_at: float | None = None) -> None:
        snapshot = call.as_dict()
        # most AMI events about a call change nothing we keep (Newstate, DialState, QueueMemberStatus…):
        # no write, no publish, no WebSocket message for those
        if self._last_marked.get(call.call_id) == snapshot:
            return
        self._last_marked[call.call_id] = snapshot
        self._pending[call.call_id] = self._pending.get(call.call_id, 0) + 1
        self._dirty.put_nowait(call.call_id)
        snapshot = dict(snapshot)
        if event_at is not None:   # when Asterisk saw what changed: viewers can tell how fresh it is
            snapshot["event_at"] = event_at
        for listener in list(self.listeners):
            try:
                listener(snapshot)
            except Exception:
                log.exception("listener failed")

    async def _write(self) -> None:
        """Single writer: records are saved in event order; failures are retried, not dropped.
        Saves queued back to back are written as one batch (one statement, one Redis round trip):
        under load the writer keeps up with fewer, larger writes instead of falling behind."""
        carry = None
        while True:
            item = carry if carry is not None else await self._dirty.get()
            carry = None
            self._writing = True
            try:
                if isinstance(item, tuple):  # ("op", call id, coroutine factory): a side effect, in order
                    await self._retrying(item[2], item[1])
                    continue
                batch = [item]
                while len(batch) < WRITE_BATCH and not self._dirty.empty():
                    nxt = self._dirty.get_nowait()
                    if isinstance(nxt, tuple):    # an effect waits for the saves queued before it
                        carry = nxt
                        break
                    batch.append(nxt)
                await self._save(batch)
            finally:
                self._writing = carry is not None

    async def _save(self, call_ids: list[str]) -> None:
        calls: list[CallState] = []
        for call_id in call_ids:
            left = self._pending.get(call_id, 1) - 1
            if left > 0:
                # a later save of the same call is queued: it will write the newest state
                self._pending[call_id] = left
                continue
            self._pending.pop(call_id, None)
            call = self.tracker.calls.get(call_id)
            if call is not None:
                calls.append(call)
        if not calls:
            return
        await self._retrying(lambda: self.store.save_calls(calls), calls[0].call_id)
        for call in calls:
            await self._retrying(lambda: self._ticket_for(call), call.call_id)
        await self.bus.publish_calls([c.as_dict() for c in calls])
        for call in calls:
            if call.status != "ended":
                continue
            if call.outcome == "voicemail":
                await self._retrying(lambda: self.store.add_callback(call, "voicemail", call.voicemail), call.call_id)
            await self._retrying(lambda: self._transcript_for(call), call.call_id)
            self.desk.forget(call.call_id)
            self.metrics.calls.labels(call.city or "unknown", call.outcome or "unknown").inc()
            # keep ended calls briefly so late events are ignored, then forget them
            asyncio.get_running_loop().call_later(60, self._forget, call.call_id)
        self.metrics.live_calls.set(len(self.tracker.live()))

    def _forget(self, call_id: str) -> None:
        self.tracker.forget(call_id)
        self._last_marked.pop(call_id, None)
        self._ticketed.pop(call_id, None)

    async def _ticket_for(self, call: CallState) -> None:
        """Every answered call, voicemail and callback gets its consultation ticket (once)."""
        if call.answered_at and call.agent:
            source = "callback" if call.callback_of else "call"
        elif call.status == "ended" and call.outcome == "voicemail":
            source = "voicemail"
        else:
            return
        if self._ticketed.get(call.call_id) == call.transfers:
            return      # its ticket exists and follows the current agent: no query per record write
        hours = self.ticket_rules.deadline(bool(call.green))
        created = await self.tickets.ensure_for_call(call, source, hours)
        if not created and call.transfers:
            await self.tickets.follow_agent(call)
        if created and call.status != "ended":
            await self._label_channels(call)
        self._ticketed[call.call_id] = call.transfers

    async def _label_channels(self, call: CallState) -> None:
        """The call's legs carry its ticket id (inherited by any leg they dial), so a warm transfer
        to a partner hands it over in a SIP header. Best effort: no AMI, no header, same call."""
        t = await self.tickets.for_call(call.call_id)
        for channel in (call.channel, call.agent_channel):
            if not channel or t is None:
                continue
            try:
                await self.ami.action({"Action": "Setvar", "Channel": channel, "Variable": "__HOTLINE_TICKET",
                                       "Value": str(t["id"])}, timeout=5)
            except Exception as e:
                log.warning("could not label %s with ticket %s: %s", channel, t["id"], e)

    async def _transcript_for(self, call: CallState) -> None:
        """An answered, recorded call gets its transcript job; without a model for the caller's
        language the status says so at once (no_model)."""
        ts = self.cfg.system.transcription
        if not ts.enabled or not call.answered_at or not call.recording:
            return
        lang_status = self.models.status(call.language)
        await self.transcripts.enqueue(call_id=call.call_id, city=call.city, language=call.language, agent=call.agent,
                                       recording=call.recording, call_started_at=call.started_at,
                                       status="pending" if lang_status == "ok" else "no_model",
                                       reason="" if lang_status == "ok" else lang_status)

    def broadcast(self, message: dict) -> None:
        """Live text, alerts and federation news to every transcription listener (the live hub)."""
        for listener in list(self.transcription_listeners):
            try:
                listener(message)
            except Exception:
                log.exception("transcription listener failed")

    async def index_document(self, *, kind: str, ref: str, call_id: str, city: str, agent: str,
                             at: float | None, raw: str) -> None:
        """Put a ticket's or a call's text into the search index (segmentation off the loop);
        the index can be rebuilt, so a failure is logged, not raised."""
        try:
            tokens = await asyncio.to_thread(index_text, raw)
            await self.transcripts.index(kind=kind, ref=ref, call_id=call_id, city=city, agent=agent,
                                         at=datetime.fromtimestamp(at or time.time(), tz=timezone.utc),
                                         raw=raw, tokens=tokens)
        except Exception as e:
            log.warning("indexing %s %s for search failed: %s", kind, ref, e)

    async def _escalate_overdue(self) -> None:
        """限时办结: tickets past their deadline go to the city supervisor and the command center."""
        while True:
            await asyncio.sleep(self.cfg.system.controller.rota_interval_seconds)
            try:
                for t in await self.tickets.escalate_overdue():
                    log.warning("ticket %s (%s) is past its deadline: escalated", t["id"], t["city"])
                    await self.store.audit("system", "", "ticket_escalated", t["call_id"] or "", str(t["id"]),
                                           detail=f"due {t['due_at']}")
                    for listener in list(self.ticket_listeners):
                        listener({"type": "ticket_escalated", "ticket": t})
            except Exception as e:   # the database may be down: try again next round
                log.warning("checking ticket deadlines failed: %s", e)

    async def _reconcile_voicemail(self) -> None:
        """Voicemail left while we were not listening still gets its callback task."""
        paths = InstancePaths(self.cfg.resolve(self.cfg.system.asterisk.rootfs), self.cfg.system.asterisk.instance)
        # wait for the writer: a task for a message we did see may still be queued
        await asyncio.wait_for(self._drain(), 10)
        added = 0
        for msg in await asyncio.to_thread(voicemail.scan, paths):
            added += await self.store.add_voicemail_callback(msg)
        if added:
            log.warning("created %d callback tasks for voicemail left while the controller was down", added)

    async def _learn_aht(self) -> None:
        """Tell the dialplan's wait estimate the recent handle time (it has a configured default)."""
        recent = [t for _, t in await self.store.call_history(None, time.time() - 7 * 86400) if t]
        if len(recent) >= 20:
            aht = int(sum(recent[-500:]) / len(recent[-500:]) + self.cfg.system.queues.wrapup_seconds)
            await self.ami.action({"Action": "Setvar", "Variable": "HL_AHT", "Value": str(aht)})
            log.info("wait estimates now assume a handle time of %ss (%d recent calls)", aht, len(recent))

    async def _retrying(self, op, call_id: str) -> None:
        delay = 0.2
        while True:
            try:
                await op()
                return
            except Exception as e:
                self.metrics.db_errors.inc()
                log.warning("writing call %s failed (%s); retrying in %.1fs", call_id, e, delay)
                await asyncio.sleep(delay)
                # capped low: once the database is back, records catch up within ~2 s (fault suite)
                delay = min(delay * 2, 2)

    # ---- views
    def status(self) -> dict:
        live = self.tracker.live()
        queues: dict[str, dict] = {q: {"waiting": 0, "talking": 0} for q in self.cfg.queue_ids}
        for c in live:
            if c.queue and c.status in ("queued", "talking"):
                q = queues.setdefault(c.queue, {"waiting": 0, "talking": 0})  # skill and pool queues too
                q["waiting" if c.status == "queued" else "talking"] += 1
        return {
            "controller": {"up": True, "since": self.started_at, "resynced": self.resynced.is_set()},
            "asterisk": {"ami_connected": self.ami.connected.is_set()},
            "redis": {"configured": self.bus.client is not None, "healthy": self.bus.healthy},
            "transcription": {"enabled": self.cfg.system.transcription.enabled,
                              "models": {lang: self.models.status(lang) for lang in self.models.entries}},
            "calls_in_progress": [c.as_dict() for c in live],
            "queues": queues,
            "agents": [a.as_dict() for a in self.agents.agents.values()],
        }


def _hms(s: str) -> float:
    h, m, sec = (int(x) for x in s.split(":"))  # raises ValueError on anything else
    return h * 3600 + m * 60 + sec
