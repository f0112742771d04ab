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
from zoneinfo import ZoneInfo

from agents.callbacks import CallbackScheduler
from agents.desk import CallControl
from agents.rota import RotaService
from agents.service import AgentService
from callcenter.asterisk.ami import AmiClient, Barrier
from store.secrets import Secrets
from callcenter import astdb, cdr, voicemail
from core.paths import InstancePaths
from store.bus import Bus
from callcenter.metrics import Metrics
from callcenter.originate import Originator
from callcenter.asterisk.acl import SipBlocklist, blocklist_path
from callcenter.sipguard import SipGuard
from callcenter.prompt_recording import PromptRecorder
from callcenter.records import RecordWriter
from callcenter.tracker import CallTracker
from core import kpi, workflow
from core.calls import CallState, usable_epoch
from core.contract import RESYNC_VARS, Ev, Var
from core.outbound import Outbound, OutboundRefused
from core.periodic import run_every
from core.config import HotlineConfig
from backoffice.followups import FollowUpDialer
from store.agents import AgentEventStore
from store.alerts import AlertStore
from store.appointments import AppointmentStore
from store.auth import AuditLog, AuthStore
from store.callbacks import CallbackStore
from store.calls import CallStore
from store.complaints import ComplaintStore
from store.engine import Database, migrate
from store.followups import FollowUpStore
from store.privacy import PrivacyStore
from store.prompts import PromptStore
from store.tickets import TicketStore
from store.transcripts import TranscriptStore
from interop.effects import ticket_effects
from core.transfers import transfer_extensions
from callcenter.wallboard import Wallboard
from callcenter.cluster import NodeKeeper
from core.cluster import LEASE_SECONDS, NODE_LOST
from store.agents import AgentStateStore
from transcription.keywords import compile_rules
from transcription.models import ModelRegistry
from transcription.segment import index_text
from transcription.tap import LiveTap

log = logging.getLogger("hotline.controller")
AUDIT_PURGE_SECONDS = 3600   # retention is counted in days: an hourly purge keeps each delete small
LOOP_LAG_EVERY = 0.25        # how often the loop's timer lateness is sampled (hotline_event_loop_lag_seconds)
LOOP_STALL_WARN = 1.0        # a lateness worth a log line
# Asterisk writes a CDR line just after the hangup, later on a loaded host: after a resync the CDR is
# read again at these delays (seconds) for calls that ended in the middle of it
CDR_LATER_PASSES = (5.0, 15.0, 45.0)


def event_time(ev) -> float | None:
    """Asterisk's Timestamp header (timestampevents=yes), or None if missing or garbled: a bad
    timestamp must not cost the event itself."""
    return usable_epoch(ev.get("Timestamp"))


class Controller:
    def __init__(self, cfg: HotlineConfig, secrets: Secrets):
        self.cfg = cfg
        self.secrets = secrets
        a = cfg.system.asterisk
        self.metrics = Metrics(cities=[c.id for c in cfg.cities] + [cfg.province.id],
                               queues=[*cfg.queue_ids, *workflow.all_queues(cfg)])
        self.tracker = CallTracker(aliases={num: name for name, num in transfer_extensions(cfg).items()})
        # counted when /metrics is read, not on every record write (a walk over every call)
        self.metrics.live_calls.set_function(lambda: len(self.tracker.live()))
        self.db = Database(cfg.system.database.url, cfg.root)
        # several nodes: records and claims carry this node's name ("" for the one node: as before)
        self.node = cfg.system.cluster.node or ""
        self.call_records = CallStore(self.db, self.node)
        self.callback_tasks = CallbackStore(self.db, self.node, LEASE_SECONDS)
        self.auth_store = AuthStore(self.db)
        self.audit_log = AuditLog(self.db, cfg.system.audit.refusal_sources_per_minute)
        # partner status messages and command-center events commit with the ticket change causing them
        self.tickets = TicketStore(self.db, effects=ticket_effects(cfg))
        self.appointments = AppointmentStore(self.db)
        self.followups = FollowUpStore(self.db, self.node)
        self.complaints = ComplaintStore(self.db)
        self.privacy = PrivacyStore(self.db, secrets.privacy_key)
        self.ticket_rules = cfg.tickets
        self.ticket_listeners: list = []   # callables(event dict) for escalations
        self.bus = Bus.for_install(cfg.system.redis, secrets)
        self.ami = AmiClient("127.0.0.1", a.ami_port, secrets.ami_user, secrets.ami_secret,
                             on_login=self._on_login, on_disconnect=self._on_disconnect,
                             on_receive=self._on_receive, nudge_every=a.ami_nudge_ms / 1000)
        self.agents = AgentService(cfg, self.ami, AgentEventStore(self.db))
        self.desk = CallControl(cfg, self.ami)
        self.nodes = NodeKeeper(cfg, bus=self.bus, ami=self.ami, agents=self.agents,
                                agent_states=AgentStateStore(self.db, self.node), call_records=self.call_records,
                                callback_tasks=self.callback_tasks, on_lost_calls=self._lost_calls)
        self.rota = RotaService(cfg, self.agents, cfg.system.controller.rota_interval_seconds)
        # callbacks and follow-up surveys place their calls through the one originate path
        originate = Originator(self.ami, cfg, self.audit_log)   # refuses numbers outside the numbering plan
        self.originate = originate
        self.callbacks = CallbackScheduler(cfg, originate, self.callback_tasks, cfg.system.controller.rota_interval_seconds)
        self.dialer = FollowUpDialer(cfg, originate, self.followups, cfg.system.controller.rota_interval_seconds)
        self.paths = paths = InstancePaths(cfg.resolve(a.rootfs), a.instance)
        self.sip_guard = SipGuard(cfg.system.sip_guard, cfg.system.trunk.match,
                                  SipBlocklist(paths.host(blocklist_path(paths))), self.audit_log,
                                  on_block=self.metrics.sip_blocks.inc)
        self.prompt_recorder = PromptRecorder(cfg, self.ami, PromptStore(self.db), self.audit_log, paths)
        self.writer = RecordWriter(self._save, on_error=self.metrics.db_errors.inc)
        self._last_marked: dict[str, dict] = {}    # call id -> the state last written and published
        self._complained: set[str] = set()         # calls whose IVR complaint is filed
        self._logins = 0                            # AMI logins so far: a resync retry stops at a newer one
        self._unlisted_suspects: dict[str, float] = {}   # calls live to us that Asterisk's listings lack: since
        self._ticketed: dict[str, str] = {}        # call id -> its transfers when its ticket was last seen to
        self._tasks: list[asyncio.Task] = []
        self._side_jobs: set[asyncio.Task] = set()
        self.resynced = asyncio.Event()
        self.started_at = time.time()
        self.listeners: list = []  # callables(call_dict) for WebSocket fan-out
        self.transcripts = TranscriptStore(self.db)
        self.alerts = AlertStore(self.db)
        self.models = ModelRegistry(cfg)
        self.tap = LiveTap(cfg, self.ami, self.bus, self.models)
        self.wallboard = Wallboard(self)
        self.metrics.watch(self)
        self.listeners.append(self.tap.on_call)
        self.transcription_listeners: list = []   # callables(message) for live text and alerts
        self.keyword_rules = compile_rules(cfg.keywords)

    async def start(self) -> None:
        await asyncio.to_thread(migrate, self.cfg.system.database.url, self.cfg.root)
        for call in await self.call_records.unfinished_calls():
            self.tracker.calls[call.call_id] = call
        self._tasks = [asyncio.create_task(self._consume(), name="ami-events"),
                       asyncio.create_task(self.writer.run(), name="record-writer"),
                       asyncio.create_task(self._escalate_overdue(), name="ticket-deadlines"),
                       asyncio.create_task(self.bus.listen("transcription", self.broadcast),
                                           name="transcription-relay"),
                       asyncio.create_task(self.bus.listen("interop", self.broadcast), name="interop-relay"),
                       asyncio.create_task(self.wallboard.run(self.resynced), name="alarms"),
                       asyncio.create_task(self._purge_caller_numbers(), name="caller-number-retention"),
                       asyncio.create_task(self.sip_guard.run(), name="sip-guard"),
                       asyncio.create_task(run_every(None, AUDIT_PURGE_SECONDS, self.purge_audit, log,
                                                     "audit retention"), name="audit-retention"),
                       asyncio.create_task(self.nodes.run(), name="node-heartbeat"),
                       asyncio.create_task(run_every(self.resynced, self.cfg.system.controller.reconcile_seconds,
                                                     self._reconcile, log, "checking calls against Asterisk's channels"),
                                           name="reconcile-calls")]
        self._tasks.append(asyncio.create_task(run_every(None, 3600, self.check_legal_aid_standards, log,
                                                         "legal-aid standards"), name="legal-aid-standards"))
        self._tasks.append(asyncio.create_task(self._watch_loop(), name="loop-lag"))
        if self.nodes.clustered:
            self._tasks += [asyncio.create_task(self.bus.listen("agents", self.nodes.on_agents_message),
                                                name="agents-relay"),
                            asyncio.create_task(self.bus.listen("devstate", self.nodes.on_devstate_message),
                                                name="devstate-relay")]
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
            await asyncio.wait_for(self.writer.drain(), 5)
        except asyncio.TimeoutError:
            log.warning("stopping with %d unsaved call updates", self.writer.backlog)
        for t in self._tasks:
            t.cancel()
        await self.db.close()
        await self.bus.close()

    # ---- AMI session
    async def _on_login(self) -> None:
        self.metrics.ami_up.set(1)
        self._logins += 1
        login, delay = self._logins, 1.0
        # a QueueStatus answered late (an Asterisk just restarted on a busy host) must not leave the
        # controller unready until the next login: try again while this session lasts
        while True:
            try:
                await self.resync()
                return
            except Exception:
                if login != self._logins or not self.ami.connected.is_set():
                    log.exception("resynchronisation failed; will retry on next login")
                    return
                log.exception("resynchronisation failed; trying again in %.0f s", delay)
            await asyncio.sleep(delay)
            if login != self._logins:
                return          # a newer login resynchronises
            delay = min(2 * delay, 15.0)

    def _on_disconnect(self, exc) -> None:
        self.metrics.ami_up.set(0)
        self.resynced.clear()

    async def resync(self) -> None:
        """Rebuild calls and agents from what Asterisk has live right now."""
        live_ids, from_cdr = await self._resync_calls()
        self._unlisted_suspects.clear()
        await self._rebuild_from_cdr(from_cdr)
        # a call that hangs up while this runs is in no listing, and its CDR line may come after the read
        # above (its Hangup reached us for a call we did not know): read the CDR again a little later
        self._spawn(self._rebuild_from_cdr_later(self.paths, self._logins), "cdr-later-passes")
        await self.agents.rebuild()
        await self.nodes.apply_stored()
        await self._learn_aht()
        await self._reconcile_voicemail()
        await self._requeue_callbacks()
        self.resynced.set()
        log.info("resynchronised: %d live calls, %d agents logged in", len(live_ids),
                 sum(1 for a in self.agents.agents.values() if a.queues))

    async def _resync_calls(self) -> tuple[set[str], dict[str, CallState]]:
        """Adopt the calls Asterisk lists; close the ones we followed that it no longer has. Returns the
        listed calls' ids and the CDR's calls."""
        # the events keep coming while this runs: a call that begins after the listing is live and in no
        # listing. Only the calls followed before asking can have ended unheard.
        followed = {c.call_id for c in self.tracker.live()}
        chans = await self.ami.list_action({"Action": "CoreShowChannels"})
        by_bridge: dict[str, list] = {}
        for c in chans:
            if c.get("BridgeId"):
                by_bridge.setdefault(c["BridgeId"], []).append(c)
        live_ids, hung_up = set(), []
        trunk_prefix = f"PJSIP/{self.cfg.system.trunk.name}-"
        for c in chans:
            if c.get("Uniqueid") != c.get("Linkedid") or not c.get("Channel", "").startswith(trunk_prefix):
                continue
            values = await self._channel_facts(c["Channel"])
            if values is None:
                hung_up.append(c["Linkedid"])   # since the listing: the CDR line has its facts (read below, and later)
                continue
            # the listing's caller ID, if Getvar missed it: a call must not be recorded without its number
            values["CALLERID(num)"] = values.get("CALLERID(num)") or c.get("CallerIDNum", "")
            peers = [p["Channel"] for p in by_bridge.get(c.get("BridgeId", ""), []) if p["Channel"] != c["Channel"]]
            try:
                started = time.time() - _hms(c.get("Duration", ""))
            except ValueError:
                started = None
            call = self.tracker.adopt(c["Linkedid"], c["Channel"], values, peers[0] if peers else "", started)
            live_ids.add(call.call_id)
            self._mark(call)
        # calls that ended while we were not listening: Asterisk's CDR has them (or we say so)
        from_cdr = await asyncio.to_thread(cdr.read_calls, self.paths, time.time() - 7 * 86400)
        self._close_unlisted(sorted(followed - live_ids), from_cdr, "ended while the controller was down")
        if hung_up:
            log.info("%d listed calls hung up while being adopted, rebuilt from the CDR instead: %s", len(hung_up),
                     hung_up)
        return live_ids, from_cdr

    async def _channel_facts(self, channel: str) -> dict[str, str] | None:
        """The dialplan's variables on a listed caller channel (RESYNC_VARS); None if the channel is gone.
        Adopted from half its variables, a call that just hung up would be recorded without its number
        or city, and the CDR's full line would never replace that record."""
        values: dict[str, str] = {}
        for var in RESYNC_VARS:
            try:
                r = await self.ami.action({"Action": "Getvar", "Channel": channel, "Variable": var}, timeout=5)
            except Exception:
                values[var] = ""     # a slow answer costs that fact, not the call
                continue
            if r.get("Response") == "Error":     # "No such channel"
                return None
            values[var] = r.get("Value", "") or ""
        return values

    def _close_unlisted(self, call_ids: list[str], from_cdr: dict, why: str) -> None:
        """At a resync: calls followed as live that Asterisk no longer has. Their CDR line says how they
        ended (our state came from the database or from before the lost session)."""
        for call_id in call_ids:
            call = self.tracker.calls.get(call_id)
            if call is None or call.status == "ended":
                continue
            rebuilt = from_cdr.get(call_id)
            if rebuilt is not None:
                self.tracker.calls[call_id] = rebuilt
                self._mark(rebuilt)
            elif self.nodes.clustered:
                # not live and no CDR line: Asterisk itself went down under it (a CDR is written at every
                # hangup, controller or not)
                call.status = "ended"
                call.outcome = NODE_LOST
                call.hangup_cause_text = f"dropped with node {self.node}'s Asterisk"
                self._mark(call)
            else:
                call.status = "ended"
                call.outcome = call.outcome or "unobserved"
                call.hangup_cause_text = call.hangup_cause_text or why
                self._mark(call)

    async def _reconcile(self) -> None:
        """The calls followed against Asterisk's channels (every ``reconcile_seconds``, once resynchronised).
        The AMI session can lose an event without losing the connection (a malformed message, a full
        queue): a call whose Hangup never reached us would stay "talking" on every screen, and in the day's
        figures, until the next restart. Absent from two listings in a row, and with every event sent
        before the first of them handled, it is closed, its end read from Asterisk's CDR."""
        login = self._logins
        asked_at = time.time()
        chans = await self.ami.list_action({"Action": "CoreShowChannels"}, whole=True)
        if login != self._logins:
            return          # a resync after that login does the same, from scratch
        listed = {c.get(k, "") for c in chans for k in ("Uniqueid", "Linkedid")}
        again, self._unlisted_suspects = self.tracker.unlisted(listed, self._unlisted_suspects, asked_at)
        if not again:
            return
        # the listings come on the action session, the events on the other: a Hangup sent before the
        # first listing that missed the call may still be on its way, or wait in our queue (a backlog).
        # Only once every event sent until now is handled is its absence the truth.
        try:
            await self.ami.barrier()
        except Exception as e:
            log.info("calls missing from two listings are checked again later (events not caught up: %r)", e)
            return
        if login != self._logins:
            return
        gone = {i: t for i, t in again.items()
                if (c := self.tracker.calls.get(i)) is not None and c.status != "ended"}
        if not gone:
            return
        from_cdr = await asyncio.to_thread(cdr.read_calls, self.paths, time.time() - 7 * 86400)
        log.warning("%d calls ended without their Hangup reaching the controller, closed from the CDR "
                    "(%d have no CDR line): %s", len(gone), len(gone.keys() - from_cdr.keys()), sorted(gone))
        self.metrics.unheard_ends.inc(len(gone))
        for call_id, missed_at in sorted(gone.items()):
            call = self.tracker.calls.get(call_id)
            self._unlisted_suspects.pop(call_id, None)
            if call is not None and call.status != "ended":
                self._mark(self.tracker.close_unheard(call, from_cdr.get(call_id), missed_at,
                                                      "its end never reached the controller"))

    async def _rebuild_from_cdr(self, from_cdr: dict) -> None:
        """Calls in Asterisk's CDR with no record of ours: ended while we were not listening."""
        missing = [c for c in await self.call_records.missing_call_ids(list(from_cdr)) if c not in self.tracker.calls]
        for call_id in missing:
            self.tracker.calls[call_id] = from_cdr[call_id]
            self._mark(from_cdr[call_id])
        if missing:
            log.warning("rebuilt %d calls from Asterisk's CDR that ended while the controller was down", len(missing))

    async def _rebuild_from_cdr_later(self, paths: InstancePaths, login: int) -> None:
        waited = 0.0
        for at in CDR_LATER_PASSES:
            await asyncio.sleep(at - waited)
            waited = at
            if login != self._logins:
                return       # a newer login's resync reads it afresh
            await self._rebuild_from_cdr(await asyncio.to_thread(cdr.read_calls, paths, time.time() - 3600))

    async def _watch_loop(self, every: float = LOOP_LAG_EVERY) -> None:
        """How late a timer fires on this loop: a stall here (a long synchronous step, a wait for a core)
        holds up every call's events and every desk's update alike."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + every
            await asyncio.sleep(every)
            lag = max(0.0, loop.time() - due)
            self.metrics.loop_lag.observe(lag)
            if lag > LOOP_STALL_WARN:
                log.warning("the controller's event loop stalled for %.2f s", lag)

    # ---- event handling, strictly in order
    def _on_receive(self, ev) -> None:
        # the event's age as it is read off the socket: the part of its delay that is Asterisk's (and
        # the wait for a core), apart from its wait in our queue (hotline_ami_event_delay_seconds)
        ts = event_time(ev)
        if ts is not None:
            self.metrics.event_arrival.observe(max(0.0, time.time() - ts))

    async def _consume(self) -> None:
        while True:
            ev = await self.ami.events.get()
            if isinstance(ev, Barrier):
                if not ev.done.done():
                    ev.done.set_result(None)
                continue
            self.metrics.events.labels(self.metrics.event_label(ev.get("Event"))).inc()
            try:
                if SipGuard.wants(ev):
                    await self.sip_guard.apply(ev)
                    continue
                if PromptRecorder.wants(ev):
                    # its own task: converting a take must not hold up the calls' events
                    self._spawn(self.prompt_recorder.apply(ev), "prompt-recording")
                    continue
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
                self.nodes.on_ami_event(ev)
            except Exception:
                # a malformed event costs us that event, never the controller
                self.metrics.bad_events.inc()
                log.exception("failed to handle AMI event %r", dict(ev) if hasattr(ev, "items") else ev)

    def _spawn(self, coro, name: str) -> None:
        """A side job off the event loop's path; kept referenced until done, its failure logged."""
        task = asyncio.create_task(coro, name=name)
        self._side_jobs.add(task)

        def done(t: asyncio.Task) -> None:
            self._side_jobs.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed", name, exc_info=t.exception())
        task.add_done_callback(done)

    def _time_routing(self, ev, ts: float) -> None:
        """Routing decided -> the first queue step's announcement or join: the first HotlineQueue of a call
        carries when routing was decided (Routed, ms since the epoch, Asterisk's clock like ts)."""
        if ev.get("Event") != "UserEvent" or ev.get("UserEvent") != Ev.QUEUE:
            return
        try:
            routed = int(ev.get("Routed") or "") / 1000
        except (TypeError, ValueError):
            return       # a later step (no Routed), or garbage: nothing to time
        self.metrics.routing.observe(min(max(0.0, ts - routed), 3600.0))

    def _callback_effects(self, ev, call: CallState | None) -> None:
        """Callback requests and results become durable tasks, written in event order."""
        kind = ev.get("UserEvent", "") if ev.get("Event") == "UserEvent" else ""
        if kind == Ev.CALLBACK_REQUEST and call is not None:
            self.writer.effect(call.call_id, lambda: self.callback_tasks.add_callback(call, "queue_callback"))
        elif kind in (Ev.SURVEY, Ev.SURVEY_END):
            self.writer.effect(f"follow-up {ev.get('FollowUp')}", lambda: self.dialer.on_event(ev))
        elif kind == Ev.CALLBACK_RESULT:
            origin, result = ev.get("Origin", ""), ev.get("Result", "")
            try:
                attempt = int(ev.get("Attempt", "0"))
            except ValueError:
                attempt = 0
            status = {"done": "done", "failed": "failed", "retry": "pending"}.get(result)
            if origin and status:
                self.writer.effect(origin, lambda: self.callback_tasks.update_callback(origin, status, attempt))
            if origin and ev.get("Status") == "REFUSED":     # outside the numbering plan: never dialled
                number = ev.get("Number", "")
                self.writer.effect(origin, lambda: self.audit_log.audit(
                    "system", "", "callback_refused", "" if origin.startswith("t") else origin, origin, allowed=False,
                    detail=f"callback {origin}: number {number!r} is outside the numbering plan"))

    def _mark(self, call: CallState, event_at: float | None = None) -> None:
        snapshot = call.as_dict()
        # most AMI events about a call change nothing we keep (Newstate, DialState, QueueMemberStatus…):
        # no write, no publish, no WebSocket message for those
        if self._last_marked.get(call.call_id) == snapshot:
            return
        self._last_marked[call.call_id] = snapshot
        self.writer.save(call.call_id)
        snapshot = dict(snapshot)
        if event_at is not None:   # when Asterisk saw what changed: viewers can tell how fresh it is
            snapshot["event_at"] = event_at
        for listener in list(self.listeners):
            try:
                listener(snapshot)
            except Exception:
                log.exception("listener failed")

    async def _save(self, call_ids: list[str]) -> None:
        """The writer's batch: the calls' newest state, then what follows from it, in order."""
        calls = [self.tracker.calls[i] for i in call_ids if self.writer.newest(i) and i in self.tracker.calls]
        if not calls:
            return
        await self.writer.retrying(lambda: self.call_records.save_calls(calls), calls[0].call_id)
        for call in calls:
            await self.writer.retrying(lambda: self._ticket_for(call), call.call_id)
            if call.service == "complaint":   # the IVR's complaint option (ivr_flows/hotline.yaml)
                await self.writer.retrying(lambda: self._complaint_for(call), call.call_id)
        await self.bus.publish_calls([c.as_dict() for c in calls])
        for call in calls:
            if call.status != "ended":
                continue
            if call.outcome == "voicemail":
                await self.writer.retrying(lambda: self.callback_tasks.add_callback(call, "voicemail", call.voicemail), call.call_id)
            await self.writer.retrying(lambda: self._transcript_for(call), call.call_id)
            self.desk.forget(call.call_id)
            self.metrics.call_ended(call.city, call.outcome)
            # keep ended calls briefly so late events are ignored, then forget them
            asyncio.get_running_loop().call_later(60, self._forget, call.call_id)

    def _forget(self, call_id: str) -> None:
        self.tracker.forget(call_id)
        self._last_marked.pop(call_id, None)
        self._ticketed.pop(call_id, None)
        self._complained.discard(call_id)

    async def _complaint_for(self, call: CallState) -> None:
        """The IVR's complaint option files a complaint record as soon as the caller chose it (once)."""
        if call.call_id in self._complained or not call.city:
            return
        fields = {"kind": "service", "source": "phone", "city": call.city, "complainant_number": call.caller_number,
                  "language": call.language or self.cfg.ivr.default_language,
                  "description": "来电投诉（IVR 投诉选项）/ complaint via the IVR's complaint option"}
        c, created = await self.complaints.ensure_for_call(call.call_id, fields,
                                                           self.ticket_rules.complaints.reply_due_days)
        if created:
            await self.audit_log.audit("system", "", "file_complaint", call.call_id, f"complaint:{c['id']}",
                                       detail="ivr")
        self._complained.add(call.call_id)

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
        ticket_id = await self.tickets.ensure_for_call(call, source, hours)
        if ticket_id is None and call.transfers:
            await self.tickets.follow_agent(call)
        if ticket_id is not None and call.status != "ended":
            await self._label_channels(call, ticket_id)
        self._ticketed[call.call_id] = call.transfers

    async def _label_channels(self, call: CallState, ticket_id: int) -> None:
        """The call's legs carry its ticket id (inherited by any leg they dial), so a warm transfer
        to a partner hands it over in a SIP header. Best effort: no AMI, no header, same call."""
        for channel in (call.channel, call.agent_channel):
            if not channel:
                continue
            try:
                await self.ami.action({"Action": "Setvar", "Channel": channel, "Variable": f"__{Var.TICKET}",
                                       "Value": str(ticket_id)}, timeout=5)
            except Exception as e:
                log.warning("could not label %s with ticket %s: %s", channel, ticket_id, e)

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

    async def check_legal_aid_standards(self, today=None) -> list[dict]:
        """An operator alarm (once per year) when this year's hardship figures are missing, or next
        year's from 1 December (backoffice/legal_aid.py standards_due)."""
        from backoffice.legal_aid import standards_due
        today = today or datetime.now(ZoneInfo(self.cfg.routing.timezone)).date()
        raised = []
        for year, state, why in standards_due(self.cfg.legal_aid, today):
            a = await self.alerts.add_alert(kind="config", city="", call_id=f"legal_aid_standards:{year}:{state}",
                                            topic="legal_aid_standards", severity="high", detail=why)
            if a:
                log.warning("%s", why)
                raised.append(a)
        return raised

    async def _lost_calls(self, call_ids: list[str]) -> None:
        """Another node's calls recorded failed: gone from the live state too."""
        await self.bus.publish_calls([{"call_id": i, "status": "ended", "outcome": NODE_LOST} for i in call_ids])

    async def _escalate_overdue(self) -> None:
        """限时办结: tickets past their deadline go to the city supervisor and the command center."""
        while True:
            await asyncio.sleep(self.cfg.system.controller.rota_interval_seconds)
            try:
                for t in await self.tickets.escalate_overdue():
                    log.warning("ticket %s (%s) is past its deadline: escalated", t["id"], t["city"])
                    await self.audit_log.audit("system", "", "ticket_escalated", t["call_id"] or "", str(t["id"]),
                                           detail=f"due {t['due_at']}")
                    for listener in list(self.ticket_listeners):
                        listener({"type": "ticket_escalated", "ticket": t})
            except Exception as e:   # the database may be down: try again next round
                log.warning("checking ticket deadlines failed: %s", e)

    async def _purge_caller_numbers(self) -> None:
        """PIPL: caller numbers past their retention period become pseudonyms (store/privacy.py). The
        first round waits one interval: a starting controller has calls to catch up on first."""
        p = self.cfg.system.privacy
        while True:
            await asyncio.sleep(p.purge_interval_minutes * 60)
            try:
                counts = await self.privacy.purge_older_than(p.caller_number_retention_days, "system", "")
                if any(counts.values()):
                    log.info("caller numbers past %d days replaced by their pseudonyms: %s",
                             p.caller_number_retention_days, counts)
            except Exception as e:   # the database may be down: try again next round
                log.warning("replacing old caller numbers failed: %s", e)

    async def purge_audit(self) -> None:
        """Audit rows past audit.retention_days go (finding 6 of issue 16: the log had no end)."""
        n = await self.audit_log.purge(self.cfg.system.audit.retention_days)
        if n:
            log.info("audit retention: %d rows older than %d days deleted", n, self.cfg.system.audit.retention_days)

    async def _reconcile_voicemail(self) -> None:
        """Voicemail left while we were not listening still gets its callback task."""
        paths = self.paths
        # wait for the writer: a task for a message we did see may still be queued
        await asyncio.wait_for(self.writer.drain(), 10)
        added = 0
        for msg in await asyncio.to_thread(voicemail.scan, paths):
            added += await self.callback_tasks.add_voicemail_callback(msg)
        if added:
            log.warning("created %d callback tasks for voicemail left while the controller was down", added)

    async def _requeue_callbacks(self) -> None:
        """A "press 5" request whose placeholder is gone (Asterisk restarted, or the install was restored
        from a backup) waits in its queue again. The requests are read before the channels: one made
        in between has its placeholder by then, and a request finished meanwhile finds its astdb entry
        gone and hangs up at once (hotline-cb-hold, "gone"), so none is placed twice."""
        paths = self.paths
        requests = await asyncio.to_thread(astdb.callback_requests, paths)
        if not requests:
            return
        live = [c.get("Channel", "") for c in await self.ami.list_action({"Action": "CoreShowChannels"})]
        # several nodes: another node took over what this one held while it was lost
        taken = await self.callback_tasks.held_elsewhere(list(requests))
        for rid, req in requests.items():
            if any(ch.startswith(f"Local/{rid}@hotline-cb-") for ch in live) or not req.get("queue") or rid in taken:
                continue
            # the request is in astdb already: the placeholder loads it from there
            call = Outbound("callback", rid, req.get("number", ""), f"Local/{rid}@hotline-cb-hold",
                            "hotline-cb-dial", rid, 86400)
            try:
                if await self.originate(call):
                    log.warning("callback %s waits in queue %s again (its placeholder was gone)", rid, req["queue"])
            except OutboundRefused:     # audited there; the dialplan would refuse it too
                continue

    async def _learn_aht(self) -> None:
        """Tell the dialplan's wait estimate the recent handle time (it has a configured default)."""
        week = await self.call_records.calls_since(datetime.fromtimestamp(time.time() - 7 * 86400, timezone.utc))
        k = kpi.compute(week, self.wallboard.policy)      # the wallboard's AHT, over the last week
        if k.aht_seconds is not None and k.answered >= 20:
            aht = int(k.aht_seconds)
            await self.ami.action({"Action": "Setvar", "Variable": "HL_AHT", "Value": str(aht)})
            log.info("wait estimates now assume a handle time of %ss (%d calls answered this week)", aht, k.answered)

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
            "redis": {"configured": self.bus.client is not None, "healthy": self.bus.healthy,
                      "refused_messages": self.bus.refused},
            "transcription": {"enabled": self.cfg.system.transcription.enabled,
                              "models": {lang: self.models.status(lang) for lang in self.models.entries}},
            "calls_in_progress": [c.as_dict() for c in live],
            "queues": queues,
            "agents": [a.as_dict() for a in self.agents.agents.values()],
            "node": self.nodes.name,
            "nodes": self.nodes.view(),
        }


def _hms(s: str) -> float:
    h, m, sec = (int(x) for x in s.split(":"))  # raises ValueError on anything else
    return h * 3600 + m * 60 + sec
