"""`hotline` command line: setup, up/down/status, serve, agent and caller softphones, demo."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.table import Table

from callcenter.asterisk.runtime import AsteriskRuntimeError
from dashboard.client import operator_api as _api
from core.config import ConfigError, HotlineConfig, load_config

console = Console(stderr=True)
OVERRIDES_ENV = "HOTLINE_CONFIG_OVERRIDES"  # JSON merged into config/hotline.yaml (tests, second nodes)


def _config(args) -> HotlineConfig:
    overrides = json.loads(os.environ.get(OVERRIDES_ENV, "{}") or "{}")
    for item in getattr(args, "set", None) or []:
        key, _, value = item.partition("=")
        node = overrides
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        try:
            node[parts[-1]] = json.loads(value)
        except json.JSONDecodeError:
            node[parts[-1]] = value
    return load_config(Path(args.root) if args.root else None, overrides)


# ------------------------------------------------------------------ setup / up / down
def cmd_setup(args) -> int:
    from callcenter.asterisk.runtime import AsteriskInstance, ensure_rootfs
    from store.secrets import load_or_create
    from store.db import migrate

    cfg = _config(args)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    # the database, logs, secrets and initial passwords live here: nobody else on the host reads them
    cfg.state_dir.chmod(0o700)
    ensure_rootfs(cfg.resolve(cfg.system.asterisk.rootfs), log=console.print)
    secrets = load_or_create(cfg)
    AsteriskInstance(cfg).install(secrets, log=console.print)
    migrate(cfg.system.database.url, cfg.root)
    created = _initial_passwords(cfg)
    if created:
        console.print(f"desk logins: initial passwords for {created} users in {cfg.state_dir / 'initial-passwords.txt'}"
                      " (change them with `hotline passwd <user>`)")
    console.print("[green]setup complete[/green]")
    return 0


def _initial_passwords(cfg: HotlineConfig) -> int:
    """Every desk user without a password gets a random one, written once to a 0600 file for the
    operator to hand out; only the Argon2 hash is kept in the database."""
    import secrets as pysecrets

    from core.access import principals

    async def work(auth):
        fresh = {}
        for user in principals(cfg):
            if await auth.store.password_hash(user) is None:
                fresh[user] = pysecrets.token_urlsafe(12)
                await auth.set_password(user, fresh[user])
        return fresh
    fresh = _with_auth(cfg, work)
    if fresh:
        path = cfg.state_dir / "initial-passwords.txt"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as f:
            f.writelines(f"{user}\t{pw}\n" for user, pw in fresh.items())
    return len(fresh)


# background daemons of one node: `hotline up` starts them, `hotline down` stops them
DAEMONS = ("serve", "transcriber", "interop")


def _pidfile(cfg: HotlineConfig, daemon: str) -> Path:
    name = "controller" if daemon == "serve" else daemon
    return cfg.state_dir / f"{name}-{cfg.system.asterisk.instance}.pid"


def _controller_pidfile(cfg: HotlineConfig) -> Path:
    return _pidfile(cfg, "serve")


def _spawn_daemon(cfg: HotlineConfig, args, daemon: str) -> None:
    pidfile = _pidfile(cfg, daemon)
    if (daemon == "transcriber" and not cfg.system.transcription.enabled) or \
            (daemon == "interop" and not cfg.system.interop.enabled):
        return
    if _pid_alive(pidfile):
        return
    log = open(str(pidfile)[:-4] + ".log", "ab")
    argv = [sys.executable, "-m", "hotline.cli"] + (["--root", args.root] if args.root else []) + \
        sum((["--set", s] for s in (args.set or [])), []) + [daemon]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    pidfile.write_text(str(proc.pid))


def _pid_alive(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None


def cmd_up(args) -> int:
    from callcenter.asterisk.runtime import AsteriskInstance

    cmd_setup(args)
    cfg = _config(args)
    ast = AsteriskInstance(cfg)
    if ast.running():
        ast.reload()  # already up: apply the configuration setup just wrote
    else:
        ast.start()
    for daemon in DAEMONS:
        _spawn_daemon(cfg, args, daemon)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            st = _api(cfg, "/api/status")
            if st["asterisk"]["ami_connected"]:
                break
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.3)
    else:
        console.print("[red]controller did not come up; see .hotline/controller-*.log[/red]")
        return 1
    a, c = cfg.system.asterisk, cfg.system.controller
    console.print(f"[green]up[/green]: SIP trunk udp {a.sip_bind}:{a.sip_port} (dial <area code>12348), "
                  f"AMI 127.0.0.1:{a.ami_port}, RTP {a.rtp_start}-{a.rtp_end}")
    console.print(f"status page http://{c.http_host}:{c.http_port}/  API http://{c.http_host}:{c.http_port}/api/status  "
                  f"metrics http://{c.http_host}:{c.http_port}/metrics")
    return 0


def cmd_down(args) -> int:
    from callcenter.asterisk.runtime import AsteriskInstance

    cfg = _config(args)
    for daemon in DAEMONS:
        pidfile = _pidfile(cfg, daemon)
        pid = _pid_alive(pidfile)
        if pid:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not _pid_alive(pidfile):
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        pidfile.unlink(missing_ok=True)
    AsteriskInstance(cfg).stop()
    console.print("down")
    return 0


def cmd_status(args) -> int:
    from callcenter.asterisk.runtime import AsteriskInstance

    cfg = _config(args)
    out = {"asterisk": {"running": AsteriskInstance(cfg).running()}, "controller": {"running": bool(_pid_alive(_controller_pidfile(cfg)))},
           "transcriber": {"running": bool(_pid_alive(_pidfile(cfg, "transcriber")))},
           "interop": {"running": bool(_pid_alive(_pidfile(cfg, "interop")))}}
    try:
        st = _api(cfg, "/api/status")
        out["asterisk"].update(st["asterisk"])
        out["controller"].update(st["controller"], connected=st["asterisk"]["ami_connected"])
        out.update({k: st[k] for k in ("redis", "agents", "queues", "calls_in_progress")})
    except (urllib.error.URLError, OSError, ValueError) as e:
        out["controller"]["api_error"] = str(e)
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    console.print(f"Asterisk running: {out['asterisk']['running']}  AMI connected: {out['asterisk'].get('ami_connected', False)}")
    console.print(f"controller running: {out['controller']['running']}  transcriber running: "
                  f"{out['transcriber']['running']}  interop running: {out['interop']['running']}")
    if "agents" in out:
        t = Table("agent", "state", "queues")
        for a in out["agents"]:
            t.add_row(a["id"], a["state"], ", ".join(a["queues"]))
        Console().print(t)
        console.print(f"calls in progress: {len(out['calls_in_progress'])}")
    return 0


# ------------------------------------------------------------------ controller
def cmd_serve(args) -> int:
    from aiohttp import web

    from hotline import compose
    from store.secrets import load_or_create

    cfg = _config(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        secrets = load_or_create(cfg)
        ctl = compose.controller(cfg, secrets)
        await ctl.start()
        runner = web.AppRunner(compose.api(ctl, secrets), access_log=None)
        await runner.setup()
        c = cfg.system.controller
        await web.TCPSite(runner, c.http_host, c.http_port).start()
        logging.getLogger("hotline").info("HTTP API on http://%s:%s", c.http_host, c.http_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()
        await ctl.stop()

    asyncio.run(main())
    return 0


def cmd_transcriber(args) -> int:
    from transcription.service import serve

    cfg = _config(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # raise our niceness to the configured value (threads and worker processes inherit it)
    os.nice(max(0, cfg.system.transcription.nice - os.nice(0)))
    _run_until_signal(lambda stop: serve(cfg, stop))
    return 0


def _run_until_signal(coro_factory) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await coro_factory(stop)
    asyncio.run(main())


def cmd_interop(args) -> int:
    from store.secrets import load_or_create
    from interop.delivery import Deliverer

    cfg = _config(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    secrets = load_or_create(cfg)
    async def run(stop):
        tasks = [Deliverer(cfg, secrets.partner_secrets, secrets.federation_secret).run(stop)]
        if cfg.system.federation.mode == "city":
            from interop.federation import Reporter
            tasks.append(Reporter(cfg, secrets).run(stop))
        await asyncio.gather(*tasks)
    _run_until_signal(run)
    return 0


def cmd_simulate_12345(args) -> int:
    from store.secrets import load_or_create
    from simulators.partner_hotline import serve

    cfg = _config(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    secret = load_or_create(cfg).partner_secrets.get("12345")
    if not secret:
        console.print("[red]no shared secret for partner 12345 (config/partners.yaml)[/red]")
        return 1
    c = cfg.system.controller
    target = args.target or f"http://{c.http_host}:{c.http_port}"
    _run_until_signal(lambda stop: serve(secret, cfg.system.node.name, target, args.host, args.port, stop))
    return 0


def cmd_federation(args) -> int:
    from store.secrets import load_or_create, trust_node

    cfg = _config(args)
    if args.action == "secret":
        print(load_or_create(cfg).federation_secret)
        return 0
    if not args.node:
        console.print("[red]trust needs the city node's name[/red]")
        return 2
    secret = sys.stdin.readline().strip()
    if len(secret) < 20:
        console.print("[red]give the node's secret on stdin (hotline federation secret, on that node)[/red]")
        return 2
    trust_node(cfg, args.node, secret)
    console.print(f"trusting city node {args.node}")
    return 0


def cmd_outbox(args) -> int:
    from store.db import Store
    from store.interop import InteropStore

    cfg = _config(args)

    async def main() -> int:
        store = Store(cfg.system.database.url, cfg.root)
        box = InteropStore(store, cfg.system.node.name)
        try:
            if args.action == "list":
                rows = await box.outbox(status=args.status, partner=args.partner, limit=args.limit)
                if args.json:
                    print(json.dumps(rows, ensure_ascii=False, indent=2))
                    return 0
                t = Table("id", "partner", "kind", "status", "attempts", "key", "last error", title="outbox")
                for m in rows:
                    if m["channel"] == "http":
                        t.add_row(str(m["id"]), m["partner"], m["kind"], m["status"], str(m["attempts"]),
                                  m["idempotency_key"] or "", (m["last_error"] or "")[:60])
                Console().print(t)
                console.print(" ".join(f"{p}: {c}" for p, c in (await box.counts()).items()) or "outbox empty")
                return 0
            ids = [int(x) for x in args.ids]
            if args.action == "retry" and args.dead:
                ids += [m["id"] for m in await box.outbox(status="dead", limit=10000)]
            done = []
            for mid in ids:
                if await box.requeue(mid, replay=args.action == "replay"):
                    done.append(mid)
                    await store.audit("hotline-cli", "command", f"outbox_{args.action}", target=str(mid))
                else:
                    console.print(f"[yellow]{mid}: not found or not in a state to {args.action}[/yellow]")
            console.print(f"{args.action}: {len(done)} message(s) queued again; `hotline interop` sends them")
            return 0 if len(done) == len(ids) else 1
        finally:
            await store.close()
    return asyncio.run(main())


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
    a = cfg.system.asterisk
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
    if args.commands:   # phone keys from stdin, one per line: hold, unhold, dtmf 123, transfer <exten>, hangup
        import queue
        import threading
        commands = queue.Queue()
        threading.Thread(target=lambda: [commands.put(line) for line in sys.stdin], daemon=True).start()
    run_agent(args.id, password, f"sip:{a.sip_bind}:{a.sip_port}", Path(args.play) if args.play else None,
              Path(args.record_dir) if args.record_dir else None, auto_answer=args.auto_answer,
              answer_delay=args.answer_delay,
              should_stop=lambda: stop["now"] or (end is not None and time.monotonic() > end), commands=commands)
    return 0


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
    a = cfg.system.asterisk
    script = CallerScript(target=f"sip:{args.to}@{a.sip_bind}:{a.sip_port}", caller_id=args.caller,
                          dtmf=_parse_dtmf(args.dtmf), play=Path(args.play) if args.play else None,
                          record=Path(args.record) if args.record else None, hangup_after=args.hangup_after,
                          port=args.port, await_callback=args.await_callback, callback_talk=args.callback_talk,
                          callback_dtmf=_parse_dtmf(args.callback_dtmf),
                          callback_record=Path(args.callback_record) if args.callback_record else None)
    # SIGTERM hangs up properly (a BYE), instead of leaving Asterisk with a dead call
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))
    result = run_caller(script)
    return 0 if result["status"] else 1


# ------------------------------------------------------------------ prompts, config, db
def cmd_prompts(args) -> int:
    from ivr_flows.prompts import missing_recordings

    cfg = _config(args)
    missing = missing_recordings(cfg)
    if args.json:
        print(json.dumps([{"lang": m.lang, "prompt": m.prompt_id, "text": m.text, "file": str(m.path)} for m in missing],
                         ensure_ascii=False, indent=2))
    else:
        t = Table("language", "prompt", "record to", "text", title=f"{len(missing)} recordings missing")
        for m in missing:
            t.add_row(m.lang, m.prompt_id, str(m.path.relative_to(cfg.root)), m.text)
        Console().print(t)
    return 1 if (missing and args.strict) else 0


def cmd_config(args) -> int:
    from callcenter.asterisk import confgen
    from core.paths import InstancePaths

    cfg = _config(args)
    if args.action == "check":
        console.print(f"[green]config OK[/green]: {len(cfg.cities)} cities, {len(cfg.agents)} agents, "
                      f"{len(cfg.ivr.languages)} IVR languages")
        return 0
    secrets = confgen.Secrets("hotline", "<generated at setup>", {a: "<generated>" for a in cfg.sip_accounts()})
    files = confgen.generate(cfg, secrets, InstancePaths(cfg.resolve(cfg.system.asterisk.rootfs), cfg.system.asterisk.instance),
                             "/usr/lib/x86_64-linux-gnu/asterisk/modules")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    console.print(f"wrote {len(files)} files to {out}")
    return 0


def cmd_db(args) -> int:
    from store.db import migrate

    cfg = _config(args)
    migrate(cfg.system.database.url, cfg.root)
    console.print("database at the newest revision")
    return 0


def _with_auth(cfg: HotlineConfig, work):
    """Run ``work(auth)`` against the database (no controller needed): passwords and tokens."""
    from store.db import Store, migrate
    from dashboard.auth import Auth

    migrate(cfg.system.database.url, cfg.root)

    async def run():
        store = Store(cfg.system.database.url, cfg.root)
        try:
            return await work(Auth(cfg, store))
        finally:
            await store.close()
    return asyncio.run(run())


def cmd_passwd(args) -> int:
    import getpass

    cfg = _config(args)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"new password for {args.user}: ")
        if getpass.getpass("again: ") != password:
            console.print("[red]the two passwords differ[/red]")
            return 2
    try:
        _with_auth(cfg, lambda auth: auth.set_password(args.user, password))
    except (KeyError, ValueError) as e:
        console.print(f"[red]{e.args[0]}[/red]")
        return 2
    console.print(f"password set for {args.user}; their earlier sessions and tokens are ended")
    return 0


def cmd_token(args) -> int:
    cfg = _config(args)
    try:
        token = _with_auth(cfg, lambda auth: auth.issue_api_token(args.user, args.days, args.label))
    except KeyError as e:
        console.print(f"[red]{e.args[0]}[/red]")
        return 2
    print(token)   # bare on stdout, for scripts
    return 0


def cmd_stats(args) -> int:
    """Statistics straight from the database (the controller need not run)."""
    from datetime import date, datetime, time as dtime, timedelta
    from zoneinfo import ZoneInfo

    from rich.table import Table

    from backoffice import stats
    from store.db import Store, migrate, report_rows
    from backoffice.tickets import load_ticket_rules

    cfg = _config(args)
    try:
        first, last = date.fromisoformat(args.date_from), date.fromisoformat(args.date_to or args.date_from)
    except ValueError as e:
        console.print(f"[red]dates must be YYYY-MM-DD: {e}[/red]")
        return 2
    if args.city and args.city not in {c.id for c in cfg.cities}:
        console.print(f"[red]unknown city {args.city!r}[/red]")
        return 2
    tz = ZoneInfo(cfg.routing.timezone)
    migrate(cfg.system.database.url, cfg.root)

    async def rows():
        store = Store(cfg.system.database.url, cfg.root)
        try:
            return await report_rows(store, datetime.combine(first, dtime(0), tz),
                                     datetime.combine(last + timedelta(days=1), dtime(0), tz), args.city)
        finally:
            await store.close()
    calls, tickets, appts, complaints, surveys = asyncio.run(rows())
    table = stats.aggregate(calls, tickets, appts, args.period, cfg.routing.timezone, complaints=complaints,
                            surveys=surveys)
    if args.city:
        table = [r for r in table if r["city"] == args.city]
    cats = list(load_ticket_rules(cfg.root).categories) + ["unclassified"]
    if args.format == "csv":
        text = stats.to_csv(table, cats)
        Path(args.out).write_text(text, encoding="utf-8") if args.out else sys.stdout.write(text)
    elif args.format == "xlsx":
        if not args.out:
            console.print("[red]--format xlsx needs --out FILE[/red]")
            return 2
        Path(args.out).write_bytes(stats.to_xlsx(table, cats))
    else:
        t = Table(title=f"12348 statistics / 统计 {first}..{last} ({args.period})")
        for col in stats.COLUMNS:
            t.add_column(col)
        for r in table:
            t.add_row(*("-" if r[c] is None else str(r[c]) for c in stats.COLUMNS))
        console.print(t)
    return 0


def cmd_staffing(args) -> int:
    import time as _time
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from backoffice.staffing import advise
    from store.db import Store, migrate

    cfg = _config(args)
    if args.city and args.city not in cfg.queue_ids:
        console.print(f"[red]unknown city {args.city!r}[/red]")
        return 2
    migrate(cfg.system.database.url, cfg.root)

    async def load():
        store = Store(cfg.system.database.url, cfg.root)
        try:
            return await store.call_history(args.city, _time.time() - args.days * 86400)
        finally:
            await store.close()

    history = asyncio.run(load())
    tz = ZoneInfo(cfg.routing.timezone)
    counts: dict[int, int] = {}
    talk: dict[int, list[float]] = {}
    for started, talk_s in history:
        h = datetime.fromtimestamp(started, tz).hour
        counts[h] = counts.get(h, 0) + 1
        if talk_s:
            talk.setdefault(h, []).append(talk_s + cfg.system.queues.wrapup_seconds)
    arrivals = {h: c / args.days for h, c in counts.items()}
    aht = {h: sum(v) / len(v) for h, v in talk.items()}
    if not aht:
        aht = {h: args.default_aht for h in range(24)}
    plan = advise(arrivals, aht, args.target, args.within, minimum=args.minimum)
    t = Table("hour", "calls/h", "AHT s", "agents", "service level", "ASA s", "occupancy",
              title=f"staffing for {args.city or 'all cities'}: {len(history)} calls in {args.days} days, "
                    f"target {args.target:.0%} answered within {args.within:.0f} s (Erlang C)")
    for h in plan:
        t.add_row(f"{h.hour:02d}:00", f"{h.calls_per_hour:.2f}", f"{h.aht:.0f}", str(h.agents),
                  f"{h.service_level:.1%}", f"{h.asa:.1f}", f"{h.occupancy:.0%}")
    Console().print(t)
    if args.json:
        print(json.dumps([h.__dict__ for h in plan], indent=2))
    return 0


def cmd_phone_config(args) -> int:
    from agents.phone_config import baresip_files, linphone_rc

    cfg = _config(args)
    password = _sip_password(cfg, args.id)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.kind == "baresip":
        files = baresip_files(cfg, args.id, password, args.port, Path(args.play).resolve() if args.play else None,
                              Path(args.record_dir).resolve() if args.record_dir else None)
    else:
        files = {"linphonerc": linphone_rc(cfg, args.id, password, args.port)}
    for name, text in files.items():
        (out / name).write_text(text)
        (out / name).chmod(0o600)  # it holds the SIP password
    run = f"baresip -f {out}" if args.kind == "baresip" else f"linphonec -c {out / 'linphonerc'}"
    console.print(f"wrote {', '.join(files)} to {out}; run: {run}")
    return 0


def cmd_demo(args) -> int:
    from simulators.demo import run_demo

    if cmd_up(args) != 0:
        return 1
    code = run_demo(_config(args), calls=args.calls)
    if args.stop:
        cmd_down(args)
    return code


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hotline", description="12348 public legal service hotline platform")
    p.add_argument("--root", help="project root holding config/ and ivr_flows/ (default: this checkout)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override config/hotline.yaml, e.g. --set asterisk.sip_port=5070")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="install the Asterisk rootfs, configs, prompts and database (idempotent)").set_defaults(func=cmd_setup)
    sub.add_parser("up", help="start Asterisk, the controller and the HTTP API in the background").set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop them").set_defaults(func=cmd_down)
    s = sub.add_parser("status", help="Asterisk, controller, agents, queues, calls in progress")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)
    sub.add_parser("serve", help="run the controller and HTTP API in the foreground").set_defaults(func=cmd_serve)
    sub.add_parser("interop", help="run the partner outbox delivery daemon in the foreground").set_defaults(func=cmd_interop)
    s = sub.add_parser("simulate-12345", help="a faithful 12345 ticket system for tests and the demo")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8345)
    s.add_argument("--target", help="12348's base URL for status callbacks (default: this node's HTTP API)")
    s.set_defaults(func=cmd_simulate_12345)
    s = sub.add_parser("federation", help="command-center federation: this node's secret, or trust a city node")
    s.add_argument("action", choices=["secret", "trust"])
    s.add_argument("node", nargs="?", help="trust: the city node's name (node.name in its hotline.yaml); secret on stdin")
    s.set_defaults(func=cmd_federation)
    s = sub.add_parser("outbox", help="partner outbox: list, retry dead letters, replay sent messages")
    s.add_argument("action", choices=["list", "retry", "replay"])
    s.add_argument("ids", nargs="*", help="message ids (retry, replay)")
    s.add_argument("--dead", action="store_true", help="retry: every dead letter")
    s.add_argument("--status", choices=["pending", "sending", "sent", "dead", "cancelled"])
    s.add_argument("--partner")
    s.add_argument("--limit", type=int, default=200)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_outbox)
    sub.add_parser("transcriber", help="run the transcription daemon (post-call jobs, live AudioSocket streams) "
                                      "in the foreground").set_defaults(func=cmd_transcriber)
    s = sub.add_parser("agent", help="a pjsua2 agent softphone")
    s.add_argument("--id", required=True)
    s.add_argument("--auto-answer", action="store_true")
    s.add_argument("--answer-delay", type=float, default=1.0)
    s.add_argument("--play", help="WAV to play into each call (the agent's voice)")
    s.add_argument("--record-dir", help="record each call's received audio here")
    s.add_argument("--login", action="store_true", help="log in and go ready through the HTTP API first")
    s.add_argument("--duration", type=float, help="stop after this many seconds")
    s.add_argument("--commands", action="store_true",
                   help="read phone keys from stdin: hold, unhold, dtmf <digits>, transfer <extension>, hangup")
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
    s.set_defaults(func=cmd_call)
    s = sub.add_parser("prompts", help="IVR prompts")
    s.add_argument("action", choices=["check"])
    s.add_argument("--json", action="store_true")
    s.add_argument("--strict", action="store_true", help="exit 1 if any recording is missing")
    s.set_defaults(func=cmd_prompts)
    s = sub.add_parser("config", help="validate config or write the generated Asterisk files")
    s.add_argument("action", choices=["check", "generate"])
    s.add_argument("--out", default="build/asterisk")
    s.set_defaults(func=cmd_config)
    s = sub.add_parser("db", help="database migrations")
    s.add_argument("action", choices=["upgrade"])
    s.set_defaults(func=cmd_db)
    s = sub.add_parser("phone-config", help="configuration for a standard SIP phone (baresip, linphone) as an agent phone")
    s.add_argument("--id", required=True)
    s.add_argument("--kind", choices=["baresip", "linphone"], default="baresip")
    s.add_argument("--out", required=True)
    s.add_argument("--port", type=int, default=5092, help="the phone's own SIP port")
    s.add_argument("--play", help="baresip: a WAV to speak instead of a microphone (headless)")
    s.add_argument("--record-dir", help="baresip: keep the received audio of each call here")
    s.set_defaults(func=cmd_phone_config)
    s = sub.add_parser("passwd", help="set a desk user's password (agents and supervisors in config/agents.yaml)")
    s.add_argument("user")
    s.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    s.set_defaults(func=cmd_passwd)
    s = sub.add_parser("token", help="issue an API token (Authorization: Bearer) for a desk user")
    s.add_argument("user")
    s.add_argument("--days", type=float, default=90)
    s.add_argument("--label", default="")
    s.set_defaults(func=cmd_token)
    s = sub.add_parser("stats", help="calls, answers, consultations by category, referrals, appointments per city")
    s.add_argument("--period", choices=["day", "month", "year"], default="day")
    s.add_argument("--from", dest="date_from", required=True, help="first local date, YYYY-MM-DD")
    s.add_argument("--to", dest="date_to", help="last local date (default: --from)")
    s.add_argument("--city")
    s.add_argument("--format", choices=["table", "csv", "xlsx"], default="table")
    s.add_argument("--out", help="file for csv/xlsx")
    s.set_defaults(func=cmd_stats)
    s = sub.add_parser("staffing", help="agents needed per hour for a service-level target (Erlang C)")
    s.add_argument("--city", help="city id (default: all)")
    s.add_argument("--days", type=int, default=28, help="history to learn arrivals and handle times from")
    s.add_argument("--target", type=float, default=0.8, help="share answered within --within seconds")
    s.add_argument("--within", type=float, default=20)
    s.add_argument("--minimum", type=int, default=1, help="agents on duty however quiet the hour")
    s.add_argument("--default-aht", type=float, default=420, help="handle time when there is no history")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_staffing)
    s = sub.add_parser("demo", help="bring everything up and run simulated callers and agents")
    s.add_argument("--calls", type=int, default=7)
    s.add_argument("--stop", action="store_true", help="bring the stack down afterwards (default: leave it up)")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:
        console.print(f"[red]configuration error[/red]\n{e}", highlight=False)
        return 2
    except UnknownAccount as e:
        console.print(f"[red]{e}[/red]", highlight=False)
        return 2
    except AsteriskRuntimeError as e:
        console.print(f"[red]Asterisk: {e}[/red]", highlight=False)
        return 1


if __name__ == "__main__":
    sys.exit(main())
