"""A simulated caller on the pjsua2 softphone: dials the hotline, walks the IVR with RFC 4733 DTMF,
talks (plays a WAV), records what it hears and, if asked, waits for the hotline's callback."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pjsua2 as pj

from agents.softphone import Account, Call, CallMedia, Softphone, emit, make_account


@dataclass
class CallerScript:
    """A simulated caller: dial, send DTMF along the IVR, talk (play a WAV), record what comes back."""
    target: str                       # sip:083312348@127.0.0.1:5060
    caller_id: str = "13800000000"
    dtmf: list[tuple[float, str]] = field(default_factory=list)  # (seconds after answer, digits)
    play: Path | None = None
    record: Path | None = None
    hangup_after: float = 30.0        # seconds after answer (or after the first ring if never answered)
    max_duration: float = 120.0
    headers: dict[str, str] = field(default_factory=dict)
    port: int = 0                     # fixed SIP port: where the carrier trunk sends callbacks
    await_callback: float = 0.0       # after hanging up, wait this long for the hotline to call back
    callback_talk: float = 10.0       # then talk this long on the callback
    callback_record: Path | None = None
    callback_dtmf: list[tuple[float, str]] = field(default_factory=list)   # keys pressed in the callback
    tls_ca: Path | None = None        # a carrier on TLS (trunk.transport tls): checks Asterisk with this CA
    tls_cert: tuple[Path, Path] | None = None   # ... and shows this certificate and key to a callback


def run_caller(script: CallerScript, bind: str = "127.0.0.1") -> dict:
    phone = Softphone(bind=bind, port=script.port, tls_ca=script.tls_ca, tls_cert=script.tls_cert)
    try:
        # every pjsua2 object lives in _caller's frame and is gone before libDestroy
        return _caller(phone, script)
    finally:
        phone.close()


def _caller(phone: Softphone, script: CallerScript) -> dict:
    incoming: list[Call] = []
    domain = script.target.split("@", 1)[1].split(";")[0].split(":")[0]
    # the carrier's media is plain RTP even on TLS: SRTP is for agents' phones
    acc = make_account(phone, script.caller_id, domain, on_incoming=_answerer(phone, script, incoming), srtp=False)
    call, started = _dial(phone, acc, script)
    sent, hung_up_by = _talk(phone, call, script, started)
    call.hangup_now()
    phone.pump_until(lambda: call.ended, 5)
    phone.pump(0.3)
    callback = _take_callback(phone, script, incoming) if script.await_callback else None
    c = call
    result = {
        "answered": c.confirmed_at is not None,
        "status": c.last_status,
        "reason": c.last_reason,
        "early_media": c.early_media,
        "dtmf_sent": sent,
        "dtmf_received": list(c.dtmf_received),
        "answered_at": c.confirmed_at,
        "talk_seconds": round((c.disconnected_at or time.time()) - c.confirmed_at, 2) if c.confirmed_at else 0,
        "hung_up_by": hung_up_by,
        "recording": str(script.record) if script.record else None,
        "callback": callback,
    }
    emit("result", **result)
    return result


def _answerer(phone: Softphone, script: CallerScript, incoming: list[Call]):
    """What the caller's phone does with an incoming call: the hotline calling back."""
    def on_incoming(acc: Account, call_id: int) -> None:
        cb = phone.keep(Call(acc, phone, CallMedia(script.play, script.callback_record), call_id,
                             on_state=lambda c: emit("callback_state", state=c.state, remote=c.remote_uri)))
        # one simulated carrier address serves every caller: a call for another number is not
        # this phone's (a real network would never deliver it here)
        to = cb.getInfo().localUri
        if f"{script.caller_id}@" not in to:
            no = pj.CallOpParam()
            no.statusCode = 404
            cb.hangup(no)
            emit("callback_refused", to=to)
            return
        incoming.append(cb)
        ok = pj.CallOpParam()
        ok.statusCode = 200
        cb.answer(ok)
        emit("callback_answered", remote=cb.remote_uri)
    return on_incoming


def _dial(phone: Softphone, acc: Account, script: CallerScript) -> tuple[Call, float]:
    media = CallMedia(script.play, script.record)
    call = phone.keep(Call(acc, phone, media, on_state=lambda c: emit("call_state", state=c.state, status=c.last_status)))
    prm = pj.CallOpParam(True)
    for name, value in script.headers.items():
        h = pj.SipHeader()
        h.hName, h.hValue = name, value
        prm.txOption.headers.append(h)
    started = time.time()
    emit("dialing", target=script.target, caller_id=script.caller_id)
    call.makeCall(script.target, prm)
    phone.pump_until(lambda: call.confirmed_at is not None or call.ended, min(script.max_duration, 60))
    return call, started


def _talk(phone: Softphone, call: Call, script: CallerScript, started: float) -> tuple[list[str], str]:
    """Walk the IVR with the script's keys and stay on the line; who hung up."""
    sent = []
    if call.confirmed_at is not None and not call.ended:
        for at, digits in sorted(script.dtmf):
            phone.pump_until(lambda: call.ended, max(0.0, call.confirmed_at + at - time.time()))
            if call.ended:
                break
            call.send_dtmf(digits)
            sent.append(digits)
            emit("dtmf_sent", digits=digits)
        deadline = min(call.confirmed_at + script.hangup_after, started + script.max_duration)
        phone.pump_until(lambda: call.ended, max(0.0, deadline - time.time()))
    else:
        phone.pump_until(lambda: call.ended, max(0.0, started + script.hangup_after - time.time()))
    return sent, "remote" if call.ended else "caller"


def _take_callback(phone: Softphone, script: CallerScript, incoming: list[Call]) -> dict | None:
    """Wait for the hotline's callback, answer it, press the script's keys (e.g. a survey's ratings)."""
    phone.pump_until(lambda: bool(incoming), script.await_callback)
    if not incoming:
        return None
    cb = incoming[0]
    phone.pump_until(lambda: cb.confirmed_at is not None or cb.ended, 10)
    for at, digits in sorted(script.callback_dtmf):
        if cb.confirmed_at is None or cb.ended:
            break
        phone.pump_until(lambda: cb.ended, max(0.0, cb.confirmed_at + at - time.time()))
        if not cb.ended:
            cb.send_dtmf(digits)
            emit("callback_dtmf_sent", digits=digits)
    phone.pump_until(lambda: cb.ended, script.callback_talk)
    callback = {"answered": cb.confirmed_at is not None, "from": cb.remote_uri,
                "hung_up_by": "remote" if cb.ended else "caller",
                "recording": str(script.callback_record) if script.callback_record else None}
    cb.hangup_now()
    phone.pump_until(lambda: cb.ended, 5)
    callback["talk_seconds"] = round((cb.disconnected_at or time.time()) - (cb.confirmed_at or time.time()), 2)
    return callback
