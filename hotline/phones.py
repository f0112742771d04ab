"""Softphones from the command line: a pjsua2 agent phone, a simulated caller, and config files
for standard SIP phones (baresip, linphone)."""
from __future__ import annotations

import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


from core.config import HotlineConfig

from hotline.common import _api, _config, console


# ------------------------------------------------------------------ softphones
class UnknownAccount(Exception):
    pass


def _sip_password(cfg: HotlineConfig, account: str) -> str:
    """The generated SIP password of an agent or interpreter."""
    from store.secrets import load_or_create

    if account not in cfg.sip_accounts():
        raise UnknownAccount(f"unknown agent or interpreter {account!r}; known: {', '.join(cfg.sip_accounts())}")
    return load_or_create(cfg).agent_passwords[account]


def cmd_agent(args) -> int:
    from agents.softphone import run_agent, emit

    cfg = _config(args)
    password = _sip_password(cfg, args.id)
    if args.login:
        try:
            emit("login", agent=args.id, result=_api(cfg, f"/api/agents/{args.id}/login", "POST", {"ready": True}))
        except (urllib.error.URLError, OSError) as e:
            emit("login_failed", agent=args.id, error=str(e))
    end = time.monotonic() + args.duration if args.duration else None
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("now", True))
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("now", True))
    commands = None
    # phone keys from stdin, one per line: hold, unhold, dtmf 123, transfer <exten>, hangup, dial <exten>
    if args.commands:
        import queue
        import threading
        commands = queue.Queue()
        threading.Thread(target=lambda: [commands.put(line) for line in sys.stdin], daemon=True).start()
    registrar, ca = _asterisk_address(cfg, args.transport or cfg.system.phones.transport, args.ca)
    run_agent(args.id, password, registrar, Path(args.play) if args.play else None,
              Path(args.record_dir) if args.record_dir else None, auto_answer=args.auto_answer,
              answer_delay=args.answer_delay,
              should_stop=lambda: stop["now"] or (end is not None and time.monotonic() > end), commands=commands,
              tls_ca=ca)
    return 0


def _asterisk_address(cfg: HotlineConfig, transport: str, ca: str | None) -> tuple[str, Path | None]:
    """Where a phone registers, and the CA it checks Asterisk's certificate with (TLS only)."""
    from store.tls import tls_files

    a = cfg.system.asterisk
    c = cfg.system.cluster
    if c.behind_edge and transport != "tls":
        # behind the edge: phones and the carrier talk to Kamailio only (docs/scale-out.md)
        return f"sip:{c.kamailio.address}:{c.kamailio.sip_port}", None
    if transport != "tls":
        return f"sip:{a.sip_bind}:{a.sip_port}", None
    if a.tls_port is None:
        raise SystemExit("asterisk.tls_port is not set: Asterisk has no TLS transport")
    ca_file = Path(ca) if ca else tls_files(cfg).ca_cert
    if not ca_file.is_file():
        raise SystemExit(f"no CA file {ca_file}: run `hotline setup` first (it makes the node's CA)")
    return f"sip:{a.sip_bind}:{a.tls_port};transport=tls", ca_file


def _parse_dtmf(spec: str) -> list[tuple[float, str]]:
    """'2:1,4:1' -> [(2.0, '1'), (4.0, '1')]: seconds after answer, digits."""
    out = []
    for part in filter(None, (spec or "").split(",")):
        at, _, digits = part.partition(":")
        out.append((float(at), digits))
    return out


def cmd_call(args) -> int:
    from simulators.caller import CallerScript, run_caller

    cfg = _config(args)
    # the carrier's side of the trunk: over TLS when the trunk is, trusting the node's CA
    address, ca = _asterisk_address(cfg, cfg.system.trunk.transport, None)
    script = CallerScript(target=f"sip:{args.to}@{address.removeprefix('sip:')}", caller_id=args.caller, tls_ca=ca,
                          dtmf=_parse_dtmf(args.dtmf), play=Path(args.play) if args.play else None,
                          record=Path(args.record) if args.record else None, hangup_after=args.hangup_after,
                          port=args.port, await_callback=args.await_callback, callback_talk=args.callback_talk,
                          callback_dtmf=_parse_dtmf(args.callback_dtmf),
                          callback_record=Path(args.callback_record) if args.callback_record else None,
                          tls_cert=(Path(args.cert), Path(args.key)) if args.cert and args.key else None)
    # SIGTERM hangs up properly (a BYE), instead of leaving Asterisk with a dead call
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))
    result = run_caller(script)
    return 0 if result["status"] else 1


def cmd_phone_config(args) -> int:
    from agents.phone_config import baresip_files, linphone_rc

    cfg = _config(args)
    password = _sip_password(cfg, args.id)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _, node_ca = _asterisk_address(cfg, args.transport or cfg.system.phones.transport, args.ca)
    # the phone gets its own copy of the CA certificate (public), next to its config
    ca = None
    if node_ca is not None:
        ca = (out / "ca.pem").resolve()
        ca.write_text(node_ca.read_text())
    if args.kind == "baresip":
        files = baresip_files(cfg, args.id, password, args.port, Path(args.play).resolve() if args.play else None,
                              Path(args.record_dir).resolve() if args.record_dir else None, ca=ca)
    else:
        files = {"linphonerc": linphone_rc(cfg, args.id, password, args.port, ca=ca)}
    for name, text in files.items():
        (out / name).write_text(text)
        (out / name).chmod(0o600)  # it holds the SIP password
    run = f"baresip -f {out}" if args.kind == "baresip" else f"linphonec -c {out / 'linphonerc'}"
    console.print(f"wrote {', '.join(files)} to {out}; run: {run}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("agent", help="a pjsua2 agent softphone")
    s.add_argument("--id", required=True)
    s.add_argument("--auto-answer", action="store_true")
    s.add_argument("--answer-delay", type=float, default=1.0)
    s.add_argument("--play", help="WAV to play into each call (the agent's voice)")
    s.add_argument("--record-dir", help="record each call's received audio here")
    s.add_argument("--login", action="store_true", help="log in and go ready through the HTTP API first")
    s.add_argument("--duration", type=float, help="stop after this many seconds")
    s.add_argument("--commands", action="store_true",
                   help="read phone keys from stdin: hold, unhold, dtmf <digits>, transfer <extension>, hangup, "
                        "dial <extension> (*43: echo test)")
    s.add_argument("--transport", choices=["udp", "tls"],
                   help="udp, or tls (SIP over TLS, SRTP media); default: phones.transport in config/hotline.yaml")
    s.add_argument("--ca", help="tls: the CA to check Asterisk's certificate with "
                                "(default: the node's, .hotline/tls/ca.pem)")
    s.set_defaults(func=cmd_agent)
    s = sub.add_parser("call", help="a simulated caller through the carrier trunk")
    s.add_argument("--to", required=True, help="dialed number, e.g. 083312348")
    s.add_argument("--caller", default="13800000000")
    s.add_argument("--dtmf", default="", help="'secs:digits,...' after answer, e.g. 2:1,4:1")
    s.add_argument("--play")
    s.add_argument("--record")
    s.add_argument("--hangup-after", type=float, default=30)
    s.add_argument("--port", type=int, default=0, help="fixed local SIP port (to receive a callback)")
    s.add_argument("--await-callback", type=float, default=0, help="after hanging up, wait this long for a callback")
    s.add_argument("--callback-dtmf", default="", help="keys to press in the callback, like --dtmf (e.g. a survey)")
    s.add_argument("--callback-talk", type=float, default=10)
    s.add_argument("--callback-record")
    s.add_argument("--cert", help="trunk on TLS: the simulated carrier's certificate, shown to a callback")
    s.add_argument("--key", help="... and its key")
    s.set_defaults(func=cmd_call)
    s = sub.add_parser("phone-config", help="configuration for a standard SIP phone (baresip, linphone) as an agent phone")
    s.add_argument("--id", required=True)
    s.add_argument("--kind", choices=["baresip", "linphone"], default="baresip")
    s.add_argument("--out", required=True)
    s.add_argument("--port", type=int, default=5092, help="the phone's own SIP port")
    s.add_argument("--play", help="baresip: a WAV to speak instead of a microphone (headless)")
    s.add_argument("--record-dir", help="baresip: keep the received audio of each call here")
    s.add_argument("--transport", choices=["udp", "tls"],
                   help="udp, or tls (SIP over TLS, SRTP media); default: phones.transport in config/hotline.yaml")
    s.add_argument("--ca", help="tls: the CA to check Asterisk's certificate with (default: the node's)")
    s.set_defaults(func=cmd_phone_config)
