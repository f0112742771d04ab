"""Texts to callers over SMPP 3.4 (run by `hotline interop` when sms.enabled; docs/messaging.md).

The outbox (store/sms.py) is the system of record; this module only moves texts from it to the SMSC:
one transceiver bind, enquire_link keepalive, reconnection with doubling waits, the SMSC's throttling
(ESME_RTHROTTLED, ESME_RMSGQFUL) obeyed by pausing without counting a failure, our contract's
throughput never exceeded. Long texts go as concatenated parts (UDH, the same reference on every
part), Chinese and Tibetan in UCS-2 (data_coding 8). Each acknowledged part is stored with the SMSC's
message_id before the next is sent, so after a lost link only the parts not yet acknowledged go again,
and a delivery receipt (deliver_sm, esm_class receipt) finds its text by that id.

PDUs are encoded and decoded by aiosmpplib; the session (which PDU when) is ours, because its ESME
keeps what it sends in memory and drops a throttled message, and here a text must survive a restart."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from aiosmpplib import (BindTransceiver, DeliverSm, DeliverSmResp, EnquireLink, EnquireLinkResp, GenericNack,
                        PhoneNumber, SmppCommand, SmppCommandStatus, SmppMessage, SubmitSm, Unbind, UnbindResp)
from aiosmpplib.codec import GSM7BitCodec
from aiosmpplib.protocol import MESSAGE_TYPE_MAP, PDU_HEADER_LENGTH
from aiosmpplib.state import NPI, TON
from aiosmpplib.utils import split_sms_udh

from prometheus_client import CollectorRegistry

from core.config import HotlineConfig
from interop.metrics import SmsMetrics
from core.numbering import may_text
from core.schedule import parse_span
from store.alerts import AlertStore
from store.engine import Database, migrate
from store.sms import SmsStore

log = logging.getLogger("hotline.sms")
UDHI = 0x40                       # esm_class: the short message starts with a user data header
RECEIPT = 0x04                    # esm_class: an SMSC delivery receipt
THROTTLED = {SmppCommandStatus.ESME_RTHROTTLED, SmppCommandStatus.ESME_RMSGQFUL}
# refusals about the text or its address: sending it again gives the same answer
PERMANENT = {SmppCommandStatus.ESME_RINVDSTADR, SmppCommandStatus.ESME_RINVSRCADR,
             SmppCommandStatus.ESME_RINVMSGLEN, SmppCommandStatus.ESME_RINVESMCLASS,
             SmppCommandStatus.ESME_RINVDSTTON, SmppCommandStatus.ESME_RINVDSTNPI,
             SmppCommandStatus.ESME_RINVREGDLVFLG}
PDU_MAX = 64 * 1024 + 1024        # message_payload may hold 64 KiB: anything longer is not SMPP


# ---------------------------------------------------------------------------- content
@dataclass(frozen=True)
class Part:
    data: bytes          # short_message: UDH + text, or the text alone
    encoding: str        # aiosmpplib's name: gsm0338 (data_coding 0) or ucs2 (8)
    esm_class: int
    text: str            # this part's text, for the logs


def split(text: str, ref: int) -> list[Part]:
    """The submit_sm short messages of one text: GSM 03.38 when every character has a GSM code (160
    per SMS, 153 per part), else UCS-2 (70, 67 per part: Chinese, Tibetan); ``ref`` (0-255) is the
    concatenation reference the handset joins the parts by, the same on a resent part."""
    if not text:
        raise ValueError("empty text")
    if GSM7BitCodec.is_gsm_text(text):
        data = GSM7BitCodec.get_codec_info().encode(text)[0]
        if len(data) <= 160:        # septets, one octet each (SMPP sends GSM unpacked)
            return [Part(data, "gsm0338", 0, text)]
        enc = "gsm0338"
    else:
        data = text.encode("utf-16-be")
        if len(data) <= 140:
            return [Part(data, "ucs2", 0, text)]
        enc = "ucs2"
    if len(data) > 255 * (134 if enc == "ucs2" else 153):     # the UDH counts parts in one octet
        raise ValueError(f"text too long: {len(text)} characters need more than 255 parts")
    chunks = split_sms_udh(text, enc, ref & 0xFF)
    out = []
    for c in chunks:
        body = c[c[0] + 1:]
        out.append(Part(c, enc, UDHI, body.decode("utf-16-be") if enc == "ucs2"
                        else GSM7BitCodec.get_codec_info().decode(body)[0]))
    return out


def submit_pdu(part: Part, source: str, destination: str) -> SubmitSm:
    """One part as submit_sm, asking for a delivery receipt (registered_delivery 1)."""
    src_ton = TON.UNKNOWN if source.isdigit() else TON.ALPHANUMERIC
    digits, dst_ton = smpp_address(destination)
    sm = SubmitSm(short_message=part.text or " ", source=PhoneNumber(source, src_ton, NPI.UNKNOWN),
                  destination=PhoneNumber(digits, dst_ton, NPI.ISDN), esm_class=part.esm_class,
                  registered_delivery=1, encoding=part.encoding, auto_message_payload=False)
    sm.set_encoded_message(part.data)
    return sm


def smpp_number(number: str) -> str:
    """The destination's digits as the SMSC takes them: +86... and 0086... without the prefix sign."""
    return smpp_address(number)[0]


def smpp_address(number: str) -> tuple[str, TON]:
    """Digits and type of number: international (TON 1) for +86... or 0086..., else as dialled (TON 0)."""
    n = number.strip().replace(" ", "").replace("-", "")
    if n.startswith("+"):
        return n[1:], TON.INTERNATIONAL
    if n.startswith("00"):
        return n[2:], TON.INTERNATIONAL
    return n, TON.UNKNOWN


def within(at: datetime, hours: str, tz: str) -> bool:
    span = parse_span(hours)
    t = at.astimezone(ZoneInfo(tz)).time().replace(tzinfo=None)
    return span.start <= t < span.end


def doubling(step: int, base: float, cap: float, rnd=random.random) -> float:
    """Doubling waits with ±25 % jitter (as interop/delivery.py backoff)."""
    return min(cap, base * (2 ** max(0, step))) * (0.75 + 0.5 * rnd())


# ---------------------------------------------------------------------------- the link
class LinkDown(ConnectionError):
    pass


class SmppLink:
    """One bound transceiver session. ``on_deliver(DeliverSm)`` gets every deliver_sm (answered
    after it returns, so a receipt is stored before the SMSC forgets it)."""

    def __init__(self, host: str, port: int, system_id: str, password: str, system_type: str,
                 on_deliver, *, enquire_seconds: float, timeout: float):
        self.host, self.port, self.system_id, self.password = host, port, system_id, password
        self.system_type, self.on_deliver = system_type, on_deliver
        self.enquire_seconds, self.timeout = enquire_seconds, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.pending: dict[int, asyncio.Future] = {}
        self.seq = 0
        self.closed = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.unsaved: dict[str, asyncio.Event] = {}     # message ids acknowledged, not yet stored
        self.closing = False

    def saved(self, message_id: str) -> None:
        ev = self.unsaved.pop(message_id, None)
        if ev is not None:
            ev.set()

    def _next(self) -> int:
        self.seq = self.seq % 0x7FFFFFFF + 1
        return self.seq

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port),
                                                          self.timeout)
        bind = BindTransceiver(system_id=self.system_id, password=self.password, system_type=self.system_type)
        bind.sequence_num = self._next()
        self.writer.write(bind.pdu())
        await self.writer.drain()
        header, _ = await asyncio.wait_for(self._read(), self.timeout)
        if header.smpp_command != SmppCommand.BIND_TRANSCEIVER_RESP or header.command_status != SmppCommandStatus.ESME_ROK:
            self.writer.close()
            raise LinkDown(f"bind refused: {header.smpp_command.name} {header.command_status.name} "
                           f"({header.command_status.description})")
        self.tasks = [asyncio.create_task(self._receive(), name="smpp-receive"),
                      asyncio.create_task(self._keepalive(), name="smpp-keepalive")]

    async def _read(self):
        head = await self.reader.readexactly(PDU_HEADER_LENGTH)
        length = int.from_bytes(head[:4], "big")
        if not PDU_HEADER_LENGTH <= length <= PDU_MAX:
            raise LinkDown(f"PDU length {length} is not SMPP")
        pdu = head + await self.reader.readexactly(length - PDU_HEADER_LENGTH)
        return SmppMessage.parse_header(head), pdu

    async def _send(self, msg: SmppMessage) -> None:
        if self.writer is None or self.closed.is_set():
            raise LinkDown("link is down")
        self.writer.write(msg.pdu())
        await self.writer.drain()

    async def request(self, msg: SmppMessage):
        """Send a request and wait for its response (header, pdu); LinkDown if the link goes."""
        msg.sequence_num = self._next()
        fut = asyncio.get_running_loop().create_future()
        self.pending[msg.sequence_num] = fut
        try:
            await self._send(msg)
            return await asyncio.wait_for(fut, self.timeout)
        except (OSError, asyncio.TimeoutError) as e:
            await self.close(f"{type(e).__name__}: {e}")
            raise LinkDown(f"no answer: {type(e).__name__} {e}") from None
        finally:
            self.pending.pop(msg.sequence_num, None)

    async def _receive(self) -> None:
        why = "closed by the SMSC"
        try:
            while True:
                header, pdu = await self._read()
                cmd = header.smpp_command
                if cmd in (SmppCommand.SUBMIT_SM_RESP, SmppCommand.ENQUIRE_LINK_RESP, SmppCommand.UNBIND_RESP,
                           SmppCommand.GENERIC_NACK):
                    fut = self.pending.get(header.sequence_num)
                    if cmd == SmppCommand.SUBMIT_SM_RESP and header.command_status == SmppCommandStatus.ESME_ROK:
                        # its receipt may come before the sender has stored this id: it waits for it
                        mid = MESSAGE_TYPE_MAP[cmd].from_pdu(pdu, header).message_id
                        self.unsaved.setdefault(mid, asyncio.Event())
                    if fut is not None and not fut.done():
                        fut.set_result((header, pdu))
                elif cmd == SmppCommand.DELIVER_SM:
                    try:
                        dsm = DeliverSm.from_pdu(pdu, header, "gsm0338")
                    except (ValueError, LookupError, UnicodeError) as e:
                        log.warning("SMSC sent a deliver_sm we cannot read: %s", e)
                        await self._send(GenericNack(header.sequence_num, SmppCommandStatus.ESME_RINVCMDLEN))
                        continue
                    await self.on_deliver(dsm)
                    await self._send(DeliverSmResp(header.sequence_num))
                elif cmd == SmppCommand.ENQUIRE_LINK:
                    await self._send(EnquireLinkResp(header.sequence_num))
                elif cmd == SmppCommand.UNBIND:
                    await self._send(UnbindResp(header.sequence_num))
                    why = "the SMSC unbound"
                    break
                else:
                    await self._send(GenericNack(header.sequence_num, SmppCommandStatus.ESME_RINVCMDID))
        except (asyncio.IncompleteReadError, OSError, LinkDown, ValueError) as e:
            why = f"{type(e).__name__}: {e}" if not isinstance(e, asyncio.IncompleteReadError) else why
        await self.close("" if self.closing else why)

    async def _keepalive(self) -> None:
        while not self.closed.is_set():
            try:
                await asyncio.wait_for(self.closed.wait(), self.enquire_seconds)
                return
            except asyncio.TimeoutError:
                pass
            try:
                await self.request(EnquireLink())
            except LinkDown:
                return

    async def close(self, why: str = "", unbind: bool = False) -> None:
        if self.closed.is_set():
            return
        if unbind and self.writer is not None:
            self.closing = True     # the SMSC closes after unbind_resp: expected, not worth a warning
            try:
                await asyncio.wait_for(self.request(Unbind()), min(self.timeout, 2))
            except (LinkDown, asyncio.TimeoutError, OSError):
                pass
        self.closed.set()
        if why:
            log.warning("SMPP link to %s:%s down: %s", self.host, self.port, why)
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(LinkDown(why or "link closed"))
        if self.writer is not None:
            self.writer.close()
        current = asyncio.current_task()
        for t in self.tasks:
            if t is not current:
                t.cancel()


# ---------------------------------------------------------------------------- the worker
class SmsSender:
    """Claims due texts and submits them over one link; stores receipts as they come."""

    def __init__(self, cfg: HotlineConfig, password: str, db: Database | None = None,
                 clock=lambda: datetime.now(timezone.utc), registry: CollectorRegistry | None = None):
        self.cfg, self.s, self.password, self.clock = cfg, cfg.system.sms, password, clock
        self.metrics = SmsMetrics(registry or CollectorRegistry())
        self.own_db = db is None
        self.db = db or Database(cfg.system.database.url, cfg.root)
        self.store = SmsStore(self.db)
        self.alerts = AlertStore(self.db)
        self.worker = f"sms:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.link: SmppLink | None = None
        self.link_failures = 0
        self.throttled = 0                 # consecutive throttling answers
        self.paused_until = 0.0            # monotonic: no submit before (throttled by the SMSC)
        self.next_slot = 0.0               # monotonic: our own throughput limit
        self.submitted = self.delivered = self.failed = 0

    def refusal(self) -> str:
        """Why this sender cannot bind at all ('' when it can): said once, not on every reconnection."""
        if len(self.password) > 8 or not self.password.isascii():
            return "smpp_password in secrets.json must be at most 8 ASCII characters (SMPP 3.4)"
        return ""

    async def run(self, stop: asyncio.Event) -> None:
        why = self.refusal()
        if why:
            log.error("texts are not sent: %s", why)
            return
        if self.own_db:
            await asyncio.to_thread(migrate, self.cfg.system.database.url, self.cfg.root)
        watch = asyncio.create_task(self._watch(stop), name="sms-metrics")
        try:
            while not stop.is_set():
                if not await self._ensure_link(stop):
                    continue
                wait = self.paused_until - time.monotonic()
                if wait > 0:
                    await _sleep(stop, wait)
                    continue
                try:
                    batch = await self.store.claim(self.worker, self.s.lease_seconds, kinds=self._kinds(),
                                                   limit=20)
                except Exception as e:    # database away: try again
                    log.warning("claiming texts failed: %s", e)
                    batch = []
                if not batch:
                    await _sleep(stop, self.s.poll_seconds)
                    continue
                for i, m in enumerate(batch):
                    if stop.is_set() or self.link is None or self.link.closed.is_set() \
                            or self.paused_until > time.monotonic():
                        for rest in batch[i:]:    # not tried: back to the queue, no attempt counted
                            await self.store.settle(rest["id"], self.worker, status="pending", count_attempt=False)
                        break
                    try:
                        await self.send(m)
                    except Exception as e:     # the database or a bug: this text is retried, the worker goes on
                        log.exception("text %s: sending failed", m["id"])
                        with contextlib.suppress(Exception):
                            await self._retry(m, f"{type(e).__name__}: {e}"[:500])
        finally:
            watch.cancel()
            if self.link is not None:
                await self.link.close(unbind=True)
            if self.own_db:
                await self.db.close()

    async def _watch(self, stop: asyncio.Event) -> None:
        """The texts' figures for /metrics, every few seconds."""
        while not stop.is_set():
            self.metrics.link_up.set(int(self.link is not None and not self.link.closed.is_set()))
            try:
                self.metrics.update(await self.store.counts())
            except Exception as e:    # database away: the figures stay as last read
                log.warning("reading the texts' figures failed: %s", e)
            await _sleep(stop, 5)

    def _kinds(self) -> list[str] | None:
        """Outside sending hours only the kinds sent at any hour (quiet hours)."""
        if within(self.clock(), self.s.sending_hours, self.cfg.routing.timezone):
            return None
        return list(self.s.any_hour_kinds)

    async def _ensure_link(self, stop: asyncio.Event) -> bool:
        if self.link is not None and not self.link.closed.is_set():
            return True
        link = SmppLink(self.s.host, self.s.port, self.s.system_id, self.password, self.s.system_type,
                        self._deliver, enquire_seconds=self.s.enquire_link_seconds,
                        timeout=self.s.response_timeout_seconds)
        try:
            await link.open()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, LinkDown, ValueError) as e:
            wait = doubling(self.link_failures, self.s.reconnect_seconds, self.s.reconnect_max_seconds)
            self.link_failures += 1
            log.warning("SMSC %s:%s: %s; next try in %.1f s", self.s.host, self.s.port, e, wait)
            await _sleep(stop, wait)
            return False
        log.info("bound to SMSC %s:%s as transceiver %s", self.s.host, self.s.port, self.s.system_id)
        self.link, self.link_failures = link, 0
        return True

    async def _deliver(self, dsm: DeliverSm) -> None:
        if not dsm.is_receipt():
            log.info("an incoming text from %s (not handled here)", dsm.source.number)
            return
        r = dsm.parse_receipt()
        smsc_id = str(r.get("id", ""))
        waiting = self.link.unsaved.get(smsc_id) if self.link is not None else None
        if waiting is not None:
            try:
                await asyncio.wait_for(waiting.wait(), self.s.response_timeout_seconds)
            except asyncio.TimeoutError:
                pass
        m = await self.store.receipt(smsc_id, str(r.get("stat", "")), f"{r.get('err', '')}")
        deadline = time.monotonic() + self.s.response_timeout_seconds
        while m is None and time.monotonic() < deadline:
            # the SMSC may hand a receipt to any bound session: this part may be another sender's (another
            # daemon's), whose submit_sm_resp it has not stored yet
            await asyncio.sleep(0.1)
            m = await self.store.receipt(smsc_id, str(r.get("stat", "")), f"{r.get('err', '')}")
        if m is None:
            log.warning("receipt for unknown SMSC message id %r", smsc_id)
        elif m["status"] in ("delivered", "failed"):
            self.delivered += m["status"] == "delivered"
            log.info("text %s %s %s", m["id"], m["status"], m["last_error"])

    async def _pace(self) -> None:
        now = time.monotonic()
        slot = max(now, self.next_slot)
        self.next_slot = slot + 1 / self.s.throughput_per_second
        if slot > now:
            await asyncio.sleep(slot - now)

    async def send(self, m: dict) -> None:
        why = may_text(m["to_number"], self.cfg)
        if why:
            await self._fail(m, f"not sent: {why}")
            return
        try:
            parts = split(m["body"], m["id"])
        except ValueError as e:
            await self._fail(m, f"not sent: {e}")
            return
        done = await self.store.sent_parts(m["id"])
        for n, part in enumerate(parts, 1):
            if n in done:
                continue
            await self._pace()
            try:
                header, pdu = await self.link.request(submit_pdu(part, self.s.source_address,
                                                                 smpp_number(m["to_number"])))
            except LinkDown as e:
                await self._retry(m, f"link lost at part {n}/{len(parts)}: {e}")
                return
            status = header.command_status
            if header.smpp_command == SmppCommand.SUBMIT_SM_RESP and status == SmppCommandStatus.ESME_ROK:
                smsc_id = MESSAGE_TYPE_MAP[header.smpp_command].from_pdu(pdu, header).message_id
                try:
                    kept = await self.store.part_submitted(m["id"], n, len(parts), smsc_id)
                finally:
                    self.link.saved(smsc_id)
                if not kept:
                    log.warning("text %s part %s was sent by another worker too (lease ran out)", m["id"], n)
                    return
                self.throttled = 0
                self.metrics.submitted.inc()
                continue
            if status in THROTTLED:
                pause = doubling(self.throttled, self.s.throttle_seconds, max(self.s.throttle_seconds, 60))
                self.throttled += 1
                self.metrics.throttled.inc()
                self.paused_until = time.monotonic() + pause
                log.info("SMSC throttles us (%s): pausing %.2f s", status.name, pause)
                await self.store.settle(m["id"], self.worker, status="pending", count_attempt=False,
                                        error=f"throttled ({status.name}); part {n}/{len(parts)} waits",
                                        retry_at=datetime.now(timezone.utc) + timedelta(seconds=pause))
                return
            why = f"SMSC refused part {n}/{len(parts)}: {status.name} ({status.description})"
            if status in PERMANENT or header.smpp_command == SmppCommand.GENERIC_NACK:
                await self._fail(m, why)
            else:
                await self._retry(m, why)
            return
        if await self.store.submitted(m["id"], self.worker):
            self.submitted += 1

    async def _fail(self, m: dict, why: str) -> None:
        self.failed += 1
        log.warning("text %s to %s failed: %s", m["id"], m["to_number"], why)
        await self.store.settle(m["id"], self.worker, status="failed", error=why)

    async def _retry(self, m: dict, why: str) -> None:
        if m["attempts"] >= self.s.max_attempts:
            log.error("text %s is a dead letter after %s attempts: %s", m["id"], m["attempts"], why)
            if await self.store.settle(m["id"], self.worker, status="dead",
                                       error=f"gave up after {m['attempts']} attempts; last: {why}"):
                # as a partner's dead letter: an alert for the command center (wallboard, /api/alerts)
                await self.alerts.add_alert(kind="dead_letter", city=await self.store.city_of(m["related"]),
                                            call_id=f"sms:{m['id']}", topic="sms", term=m["kind"],
                                            severity="high", phase="delivery", detail=why[:500])
            return
        wait = doubling(m["attempts"] - 1, self.s.reconnect_seconds, self.s.reconnect_max_seconds)
        await self.store.settle(m["id"], self.worker, status="pending", error=why,
                                retry_at=datetime.now(timezone.utc) + timedelta(seconds=wait))


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))
    except asyncio.TimeoutError:
        pass
