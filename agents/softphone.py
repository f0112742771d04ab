"""A pjsua2 SIP softphone for agents' desks (simulators/caller.py builds simulated callers on it).

pjsua2 is driven from one thread (``threadCnt = 0``; we pump ``libHandleEvents``), so every
callback runs in that thread. Two things make media and RFC 4733 DTMF really flow (DESIGN §4):
something always transmits into the call (a WAV player, else the null capture device), and the
``CallInfo`` is kept in a variable while its ``media`` vector is walked.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pjsua2 as pj


def emit(event: str, **fields) -> None:
    """One JSON line on stdout: the machine-readable log that tests and the demo read."""
    sys.stdout.write(json.dumps({"event": event, "t": round(time.time(), 3), **fields}, ensure_ascii=False) + "\n")
    sys.stdout.flush()


class Softphone:
    """One pjsua2 endpoint with a UDP transport on loopback (or ``bind``); with ``tls_ca`` a TLS
    transport instead, which accepts only a server whose certificate that CA signed for the name dialled."""

    def __init__(self, bind: str = "127.0.0.1", port: int = 0, log_level: int = 0, tls_ca: Path | None = None,
                 tls_cert: tuple[Path, Path] | None = None):
        """``tls_cert`` (certificate, key): what the phone shows when it is called over TLS."""
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = False
        cfg.uaConfig.userAgent = "12348-hotline-softphone"
        cfg.logConfig.level = log_level
        cfg.logConfig.consoleLevel = log_level
        cfg.medConfig.noVad = True
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.ecTailLen = 0
        self.ep.libInit(cfg)
        tcfg = pj.TransportConfig()
        tcfg.port = port
        tcfg.boundAddress = bind
        if tls_ca is not None:
            tcfg.tlsConfig.CaListFile = str(tls_ca)
            tcfg.tlsConfig.verifyServer = True
            tcfg.tlsConfig.method = pj.PJSIP_TLSV1_2_METHOD
            if tls_cert is not None:
                tcfg.tlsConfig.certFile, tcfg.tlsConfig.privKeyFile = str(tls_cert[0]), str(tls_cert[1])
        self.tls = tls_ca is not None
        self.transport_id = self.ep.transportCreate(pj.PJSIP_TRANSPORT_TLS if self.tls else pj.PJSIP_TRANSPORT_UDP,
                                                    tcfg)
        self.ep.libStart()
        # headless: a null device keeps the conference bridge clocked
        self.ep.audDevManager().setNullDev()
        for codec, prio in (("PCMA/8000", 250), ("PCMU/8000", 240)):
            try:
                self.ep.codecSetPriority(codec, prio)
            except pj.Error:
                pass
        for info in self.ep.codecEnum2():
            if not info.codecId.startswith(("PCMA", "PCMU", "telephone-event")):
                self.ep.codecSetPriority(info.codecId, 0)
        self._objects: list = []

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.ep.libHandleEvents(int(min(left, 0.05) * 1000))

    def pump_until(self, cond: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            self.ep.libHandleEvents(50)
        return cond()

    def keep(self, obj):
        """Hold pjsua2 objects until close(): destroying them after libDestroy aborts the process."""
        self._objects.append(obj)
        return obj

    def close(self) -> None:
        try:
            self.ep.hangupAllCalls()
            self.pump(0.3)
            for obj in reversed(self._objects):
                if isinstance(obj, pj.Account):
                    try:
                        obj.shutdown()
                    except pj.Error:
                        pass
            self._objects.clear()
            import gc
            gc.collect()
        finally:
            self.ep.libDestroy()


@dataclass
class CallMedia:
    """What we attach to a call's audio: a looping WAV player (or the null capture) and a recorder."""
    play: Path | None
    record: Path | None
    player: pj.AudioMediaPlayer | None = None
    recorder: pj.AudioMediaRecorder | None = None
    attached: bool = False

    def attach(self, ep: pj.Endpoint, aud: pj.AudioMedia) -> None:
        if self.attached:
            return
        if self.play is not None:
            self.player = pj.AudioMediaPlayer()
            self.player.createPlayer(str(self.play))  # loops by default
            self.player.startTransmit(aud)
        else:
            ep.audDevManager().getCaptureDevMedia().startTransmit(aud)
        if self.record is not None:
            self.record.parent.mkdir(parents=True, exist_ok=True)
            self.recorder = pj.AudioMediaRecorder()
            self.recorder.createRecorder(str(self.record))
            aud.startTransmit(self.recorder)
        self.attached = True

    def detach(self) -> None:
        # dropping the recorder closes and finalises the WAV file
        self.player = None
        self.recorder = None


class Call(pj.Call):
    def __init__(self, acc: pj.Account, phone: Softphone, media: CallMedia, call_id: int = pj.PJSUA_INVALID_ID,
                 on_state: Callable[["Call"], None] | None = None):
        super().__init__(acc, call_id)
        self.phone = phone
        self.media = media
        self.on_state = on_state
        self.state = "null"
        self.last_status = 0
        self.last_reason = ""
        self.confirmed_at: float | None = None
        self.disconnected_at: float | None = None
        self.remote_uri = ""
        self.early_media = False
        self.dtmf_received: list[str] = []
        self.sip_headers: dict[str, str] = {}
        self.media_proto = ""
        self.local_rtp = ""

    def onCallState(self, prm) -> None:
        ci = self.getInfo()
        self.state = ci.stateText.lower()
        self.last_status = ci.lastStatusCode
        self.last_reason = ci.lastReason
        self.remote_uri = ci.remoteUri
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and self.confirmed_at is None:
            self.confirmed_at = time.time()
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected_at = time.time()
            self.media.detach()
        if self.on_state:
            self.on_state(self)

    def onCallMediaState(self, prm) -> None:
        ci = self.getInfo()  # keep a reference while walking ci.media (SWIG vector lifetime)
        media = ci.media
        for idx in range(len(media)):
            mi = media[idx]
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                if ci.state == pj.PJSIP_INV_STATE_EARLY:
                    self.early_media = True
                self._note_transport(idx)
                self.media.attach(self.phone.ep, self.getAudioMedia(idx))

    def _note_transport(self, idx: int) -> None:
        """What the phone negotiated, for its event log: RTP/SAVP is SRTP (SDES keys), and the local RTP
        address. Informational only: a failure to read it must not disturb the call."""
        try:
            savp = self.getStreamInfo(idx).proto == pj.PJMEDIA_TP_PROTO_RTP_SAVP
            self.media_proto = "RTP/SAVP" if savp else "RTP/AVP"
            self.local_rtp = self.getMedTransportInfo(idx).localRtpName
        except pj.Error:
            pass

    def onDtmfDigit(self, prm) -> None:
        self.dtmf_received.append(prm.digit)

    @property
    def ended(self) -> bool:
        return self.disconnected_at is not None

    def send_dtmf(self, digits: str) -> None:
        prm = pj.CallSendDtmfParam()
        prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
        prm.digits = digits
        prm.duration = 160
        self.sendDtmf(prm)

    def hangup_now(self, code: int = 0) -> None:
        if not self.ended:
            prm = pj.CallOpParam()
            prm.statusCode = code
            try:
                self.hangup(prm)
            except pj.Error:
                pass


class Account(pj.Account):
    def __init__(self, phone: Softphone, on_incoming: Callable[["Account", int], None] | None = None):
        super().__init__()
        self.phone = phone
        self.on_incoming = on_incoming
        self.reg_status = 0
        self.reg_reason = ""

    def onRegState(self, prm) -> None:
        self.reg_status = prm.code
        self.reg_reason = prm.reason

    def onIncomingCall(self, prm) -> None:
        if self.on_incoming:
            self.on_incoming(self, prm.callId)


def make_account(phone: Softphone, user: str, domain: str, registrar: str | None = None,
                 password: str | None = None, on_incoming=None, srtp: bool | None = None) -> Account:
    """``srtp`` (default: on when the phone is on TLS): SRTP or no call."""
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{user}@{domain}"
    if registrar:
        acfg.regConfig.registrarUri = registrar
        acfg.regConfig.timeoutSec = 300
        acfg.regConfig.retryIntervalSec = 5
    if password is not None:
        acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
    if phone.tls:
        acfg.sipConfig.transportId = phone.transport_id
    if phone.tls if srtp is None else srtp:
        # SDES keys only ever over TLS (never in clear signalling)
        acfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_MANDATORY
        acfg.mediaConfig.srtpSecureSignaling = 1
    acc = phone.keep(Account(phone, on_incoming))
    acc.create(acfg)
    return acc


def run_agent(user: str, password: str, registrar: str, play: Path | None, record_dir: Path | None,
              auto_answer: bool = True, answer_delay: float = 0.5, bind: str = "127.0.0.1",
              should_stop: Callable[[], bool] = lambda: False, commands=None, tls_ca: Path | None = None) -> None:
    """Register and take calls until ``should_stop``; one JSON line per event on stdout.
    ``commands`` (a queue.Queue of text lines, e.g. from stdin) drives the current call like a
    phone's keys: hold, unhold, dtmf <digits>, transfer <extension>, hangup, and dial <extension> (e.g.
    *43, the echo test) places a call. With ``tls_ca`` (and a
    ``;transport=tls`` registrar) signalling is TLS checked against that CA and media SRTP only."""
    phone = Softphone(bind=bind, tls_ca=tls_ca)
    calls: list[Call] = []
    pending: list[tuple[float, Call]] = []
    domain = registrar.removeprefix("sip:").split(";")[0].split(":")[0]

    def new_call(acc: Account, call_id: int = pj.PJSUA_INVALID_ID) -> Call:
        n = len(calls) + 1
        rec = record_dir / f"{user}-{int(time.time())}-{n}.wav" if record_dir else None
        call = phone.keep(Call(acc, phone, CallMedia(play, rec), call_id,
                    on_state=lambda c: emit("call_state", agent=user, state=c.state, remote=c.remote_uri,
                                            status=c.last_status, media=c.media_proto, local_rtp=c.local_rtp,
                                            recording=str(c.media.record) if c.media.record else None)))
        calls.append(call)
        return call

    def dial(extension: str) -> None:
        # through Asterisk, on the transport the phone registered with
        new_call(acc).makeCall(f"sip:{extension}@{registrar.removeprefix('sip:')}", pj.CallOpParam(True))

    def incoming(acc: Account, call_id: int) -> None:
        call = new_call(acc, call_id)
        n = len(calls)
        ring = pj.CallOpParam()
        ring.statusCode = 180
        call.answer(ring)
        emit("incoming", agent=user, call=n)
        if auto_answer:
            pending.append((time.monotonic() + answer_delay, call))

    try:
        acc = make_account(phone, user, domain, registrar=registrar, password=password, on_incoming=incoming)
        phone.pump_until(lambda: acc.reg_status != 0, 15)
        emit("registered" if acc.reg_status == 200 else "register_failed", agent=user,
             status=acc.reg_status, reason=acc.reg_reason)
        while not should_stop():
            phone.pump(0.05)
            for line in _drain(commands):
                _command(line, [c for c in calls if not c.ended], user, dial)
            now = time.monotonic()
            for due, call in list(pending):
                if due <= now:
                    pending.remove((due, call))
                    if not call.ended:
                        ok = pj.CallOpParam()
                        ok.statusCode = 200
                        call.answer(ok)
                        emit("answered", agent=user)
            # forget finished calls after a grace period (pjsua2 objects must outlive callbacks)
            calls[:] = [c for c in calls if not (c.ended and time.time() - c.disconnected_at > 5)]
    finally:
        emit("stopping", agent=user)
        phone.close()


def _drain(q) -> list[str]:
    out = []
    while q is not None and not q.empty():
        out.append(q.get_nowait())
    return out


def _command(line: str, live: list[Call], user: str, dial: Callable[[str], None] | None = None) -> None:
    """One phone key press (see run_agent); the result is an event line like everything else."""
    word, _, arg = line.strip().partition(" ")
    if not word:
        return
    call = live[-1] if live else None
    try:
        if word == "dial":
            if not arg or dial is None:
                raise ValueError("dial needs an extension, e.g. *43 (the echo test)")
            dial(arg)
        elif call is None:
            raise ValueError("no call in progress")
        elif word == "hold":
            call.setHold(pj.CallOpParam(True))
        elif word == "unhold":
            prm = pj.CallOpParam(True)
            prm.opt.flag = pj.PJSUA_CALL_UNHOLD
            call.reinvite(prm)
        elif word == "dtmf":
            if not arg or any(ch not in "0123456789*#ABCD" for ch in arg):
                raise ValueError("dtmf needs digits 0-9 * # A-D")
            call.send_dtmf(arg)
        elif word == "transfer":
            if not arg:
                raise ValueError("transfer needs an extension, e.g. agent-agent1002 or queue-leshan")
            # REFER: Asterisk sends the caller to the extension in the agent's TRANSFER_CONTEXT
            domain = call.remote_uri.split("@", 1)[-1].rstrip(">")
            call.xfer(arg if arg.startswith("sip:") else f"sip:{arg}@{domain}", pj.CallOpParam(True))
        elif word == "hangup":
            call.hangup_now()
        else:
            raise ValueError(f"unknown command {word!r} (hold, unhold, dtmf, transfer, hangup, dial)")
        emit("command", agent=user, command=word, arg=arg, ok=True)
    except (ValueError, pj.Error) as e:
        reason = e.info() if isinstance(e, pj.Error) else str(e)
        emit("command", agent=user, command=word, arg=arg, ok=False, error=reason)
