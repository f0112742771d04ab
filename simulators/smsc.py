"""A faithful SMSC for tests and the demo: SMPP 3.4 over TCP on loopback (asyncio).

It checks binds against its accounts, answers submit_sm with submit_sm_resp and a message_id, and
later sends the delivery receipt as a deliver_sm (esm_class 0x04, "id:... stat:DELIVRD ..."), to the
same account's next session if the link is gone meanwhile, as an SMSC keeps receipts. Controlled
in-process: ``throttle(n)`` answers the next n submit_sm with ESME_RTHROTTLED, ``drop_after(n)``
closes the link right after acknowledging n more, ``drop()`` closes it now; numbers in ``unknown``
are refused (ESME_RINVDSTADR), those in ``undeliverable`` get an UNDELIV receipt. ``received`` keeps
every acknowledged part (UDH reference, part number, text decoded from its data_coding) and
``texts()`` joins the parts as a handset would."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import itertools
import logging
from dataclasses import dataclass, field
from datetime import datetime

from aiosmpplib import (BindTransceiverResp, DeliverSm, EnquireLink, EnquireLinkResp, GenericNack, PhoneNumber,
                        SmppCommand, SmppCommandStatus, SmppMessage, SubmitSm, SubmitSmResp, Unbind, UnbindResp)
from aiosmpplib.protocol import MESSAGE_TYPE_MAP, PDU_HEADER_LENGTH

log = logging.getLogger("hotline.smsc")
PDU_MAX = 64 * 1024 + 1024


@dataclass
class Received:
    system_id: str
    source: str
    destination: str
    data_coding: int
    esm_class: int
    ref: int            # concatenation reference (0 when not concatenated)
    part: int
    parts: int
    text: str
    message_id: str


@dataclass(eq=False)      # kept in a set: hashed by identity
class Session:
    writer: asyncio.StreamWriter
    system_id: str = ""
    bound: bool = False
    unacked: dict = field(default_factory=dict)      # deliver_sm sequence -> receipt, until its resp
    seq: itertools.count = field(default_factory=lambda: itertools.count(1))


class Smsc:
    def __init__(self, accounts: dict[str, str], *, host: str = "127.0.0.1", port: int = 0,
                 receipt_delay: float = 0.05, unknown: set[str] | None = None,
                 undeliverable: set[str] | None = None, record_to=None):
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the SMSC simulator listens on loopback only, not {host}")
        self.accounts, self.host, self.port = dict(accounts), host, port
        self.receipt_delay = receipt_delay
        self.unknown, self.undeliverable = set(unknown or ()), set(undeliverable or ())
        self.record_to = record_to      # a path: every acknowledged part as a JSON line (another process reads it)
        self.received: list[Received] = []
        self.binds: list[tuple[str, str]] = []          # (system_id, command_status name)
        self.receipts_acked: list[str] = []              # message ids whose deliver_sm_resp came
        self.throttled_answers = 0
        self._throttle = 0
        self._drop_after: int | None = None
        self._fail = 0
        self._throttle_status = SmppCommandStatus.ESME_RTHROTTLED
        self.enquire_links = 0
        self.enquire_answers = 0        # enquire_link_resp to the SMSC's own enquire_link
        self.mute = False               # True: enquire_link goes unanswered (a hung SMSC)
        self._ids = itertools.count(0x1000)
        self._sessions: set[Session] = set()
        self._receipts: dict[str, list[tuple[str, str, str]]] = {}   # system_id -> [(id, src, dst)] waiting
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    # ---- control
    async def start(self) -> "Smsc":
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for t in list(self._tasks):
            t.cancel()

    def throttle(self, n: int, status: SmppCommandStatus = SmppCommandStatus.ESME_RTHROTTLED) -> None:
        """The next n submit_sm are refused with ``status`` (ESME_RTHROTTLED, or ESME_RMSGQFUL)."""
        self._throttle, self._throttle_status = n, status

    def fail(self, n: int) -> None:
        """The next n submit_sm get ESME_RSYSERR (a transient fault of the SMSC)."""
        self._fail = n

    def drop_after(self, n: int) -> None:
        self._drop_after = n

    def enquire(self) -> None:
        """The SMSC checks the link itself: enquire_link to every bound session (answers counted)."""
        for s in self._sessions:
            if s.bound:
                msg = EnquireLink()
                msg.sequence_num = 0x40000000 + next(s.seq)
                self._write(s, msg)

    def unbind(self) -> None:
        """The SMSC ends the sessions properly (maintenance): unbind, then it closes on unbind_resp."""
        for s in self._sessions:
            if s.bound:
                msg = Unbind()
                msg.sequence_num = 0x40000000 + next(s.seq)
                s.bound = False
                self._write(s, msg)

    def drop(self) -> None:
        for s in list(self._sessions):
            s.writer.close()
        self._sessions.clear()

    def texts(self, destination: str | None = None) -> list[str]:
        """Each text as the handset shows it: concatenated parts joined by reference, in order."""
        out, groups = [], {}
        for r in self.received:
            if destination and r.destination != destination:
                continue
            if r.parts <= 1:
                out.append(r.text)
                continue
            key = (r.destination, r.ref)
            groups.setdefault(key, {})[r.part] = r
            g = groups[key]
            if len(g) == r.parts:
                out.append("".join(g[i].text for i in range(1, r.parts + 1)))
                del groups[key]
        return out

    def bound_sessions(self) -> int:
        return sum(1 for s in self._sessions if s.bound)

    # ---- protocol
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        s = Session(writer)
        self._sessions.add(s)
        try:
            while True:
                head = await reader.readexactly(PDU_HEADER_LENGTH)
                length = int.from_bytes(head[:4], "big")
                if not PDU_HEADER_LENGTH <= length <= PDU_MAX:
                    break
                pdu = head + await reader.readexactly(length - PDU_HEADER_LENGTH)
                try:
                    header = SmppMessage.parse_header(head)
                except ValueError:
                    seq = int.from_bytes(head[12:16], "big")
                    self._write(s, GenericNack(seq, SmppCommandStatus.ESME_RINVCMDID))
                    continue
                verdict = await self._handle(s, header, pdu)
                if verdict == "drop":
                    # the link goes after this acknowledgement: FIN, not RST (closing with unread input
                    # would reset the connection and the peer could lose the acknowledgement in flight);
                    # what the peer still sends is read and ignored, never answered
                    writer.write_eof()
                    self._sessions.discard(s)
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(_discard(reader), 5)
                    break
                if not verdict:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self._sessions.discard(s)
            writer.close()
            if s.unacked:       # receipts not acknowledged: kept for the next bind, as an SMSC retries them
                self._receipts.setdefault(s.system_id, []).extend(s.unacked.values())

    def _write(self, s: Session, msg: SmppMessage) -> None:
        if not s.writer.is_closing():
            s.writer.write(msg.pdu())

    async def _handle(self, s: Session, header, pdu: bytes) -> bool | str:
        cmd, seq = header.smpp_command, header.sequence_num
        if cmd == SmppCommand.BIND_TRANSCEIVER:
            bind = MESSAGE_TYPE_MAP[cmd].from_pdu(pdu, header)
            if s.bound:
                status = SmppCommandStatus.ESME_RALYBND
            elif bind.system_id not in self.accounts:
                status = SmppCommandStatus.ESME_RINVSYSID
            elif self.accounts[bind.system_id] != bind.password:
                status = SmppCommandStatus.ESME_RINVPASWD
            else:
                status = SmppCommandStatus.ESME_ROK
            self.binds.append((bind.system_id, status.name))
            self._write(s, BindTransceiverResp(seq, status, system_id="hotline-smsc"))
            if status != SmppCommandStatus.ESME_ROK:
                await s.writer.drain()
                return False
            s.bound, s.system_id = True, bind.system_id
            for rid, src, dst in self._receipts.pop(s.system_id, []):    # kept while the link was down
                self._receipt_later(s.system_id, rid, src, dst, 0)
            return True
        if cmd == SmppCommand.ENQUIRE_LINK:
            self.enquire_links += 1
            if not self.mute:           # a hung SMSC: the link is open and nothing answers
                self._write(s, EnquireLinkResp(seq))
            return True
        if cmd == SmppCommand.UNBIND:
            self._write(s, UnbindResp(seq))
            await s.writer.drain()
            return False
        if cmd == SmppCommand.DELIVER_SM_RESP:
            receipt = s.unacked.pop(seq, None)
            if receipt is not None:
                self.receipts_acked.append(receipt[0])
            return True
        if cmd == SmppCommand.ENQUIRE_LINK_RESP:
            self.enquire_answers += 1
            return True
        if cmd == SmppCommand.UNBIND_RESP:
            await s.writer.drain()
            return False
        if cmd == SmppCommand.GENERIC_NACK:
            return True
        if cmd != SmppCommand.SUBMIT_SM:
            self._write(s, GenericNack(seq, SmppCommandStatus.ESME_RINVCMDID))
            return True
        if not s.bound:
            self._write(s, SubmitSmResp(seq, SmppCommandStatus.ESME_RINVBNDSTS))
            return True
        try:
            sm = SubmitSm.from_pdu(pdu, header, "gsm0338")
        except (ValueError, LookupError, UnicodeError):
            self._write(s, SubmitSmResp(seq, SmppCommandStatus.ESME_RINVMSGLEN))
            return True
        if self._throttle > 0:
            self._throttle -= 1
            self.throttled_answers += 1
            self._write(s, SubmitSmResp(seq, self._throttle_status))
            return True
        if self._fail > 0:
            self._fail -= 1
            self._write(s, SubmitSmResp(seq, SmppCommandStatus.ESME_RSYSERR))
            return True
        dst = sm.destination.number
        if dst in self.unknown or not dst.isdigit():
            self._write(s, SubmitSmResp(seq, SmppCommandStatus.ESME_RINVDSTADR))
            return True
        ref, part, parts = sm.get_segmentation_data() if sm.is_segmented() else (0, 1, 1)
        mid = f"{next(self._ids):08X}"
        coding = pdu_data_coding(pdu)
        self.received.append(Received(s.system_id, sm.source.number, dst, coding, sm.esm_class, ref, part, parts,
                                      sm.short_message, mid))
        if self.record_to is not None:
            with open(self.record_to, "a", encoding="utf-8") as f:
                f.write(json.dumps(dataclasses.asdict(self.received[-1]), ensure_ascii=False) + "\n")
        self._write(s, SubmitSmResp(seq, message_id=mid))
        await s.writer.drain()
        if sm.registered_delivery & 0x03:
            self._receipt_later(s.system_id, mid, sm.source.number, dst, self.receipt_delay)
        if self._drop_after is not None:
            self._drop_after -= 1
            if self._drop_after <= 0:
                self._drop_after = None
                return "drop"       # the link goes right after this acknowledgement
        return True

    def _receipt_later(self, system_id: str, mid: str, src: str, dst: str, delay: float) -> None:
        t = asyncio.get_running_loop().create_task(self._send_receipt(system_id, mid, src, dst, delay))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _send_receipt(self, system_id: str, mid: str, src: str, dst: str, delay: float) -> None:
        await asyncio.sleep(delay)
        s = next((x for x in self._sessions if x.bound and x.system_id == system_id and not x.writer.is_closing()),
                 None)
        if s is None:     # no link now: kept for the account's next bind
            self._receipts.setdefault(system_id, []).append((mid, src, dst))
            return
        now = datetime.now()
        stat = "UNDELIV" if dst in self.undeliverable else "DELIVRD"
        text = DeliverSm.encode_receipt({"id": mid, "sub": 1, "dlvrd": int(stat == "DELIVRD"), "submit date": now,
                                         "done date": now, "stat": stat, "err": 0 if stat == "DELIVRD" else 1,
                                         "text": ""})
        dsm = DeliverSm(short_message=text, source=PhoneNumber(dst), destination=PhoneNumber(src), esm_class=0x04,
                        registered_delivery=0)
        dsm.sequence_num = 0x40000000 + next(s.seq)
        s.unacked[dsm.sequence_num] = (mid, src, dst)
        self._write(s, dsm)


async def _discard(reader: asyncio.StreamReader) -> None:
    while await reader.read(4096):
        pass


def texts_of(path) -> list[str]:
    """The texts in a ``record_to`` file, parts joined as ``Smsc.texts`` does."""
    sim = Smsc.__new__(Smsc)
    with open(path, encoding="utf-8") as f:
        sim.received = [Received(**json.loads(line)) for line in f if line.strip()]
    return Smsc.texts(sim)


def pdu_data_coding(pdu: bytes) -> int:
    """submit_sm's data_coding octet, read from the PDU: the five C-strings and fixed octets before it."""
    i = PDU_HEADER_LENGTH
    i = pdu.index(b"\0", i) + 1                 # service_type
    i += 2
    i = pdu.index(b"\0", i) + 1                 # source_addr
    i += 2
    i = pdu.index(b"\0", i) + 1                 # destination_addr
    i += 3                                      # esm_class, protocol_id, priority_flag
    i = pdu.index(b"\0", i) + 1                 # schedule_delivery_time
    i = pdu.index(b"\0", i) + 1                 # validity_period
    i += 2                                      # registered_delivery, replace_if_present_flag
    return pdu[i]
