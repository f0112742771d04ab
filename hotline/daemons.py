"""The long-running daemons (serve, transcriber, interop), the 12345 simulator, and the operator's
federation and partner-outbox commands."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys

from rich.table import Table


from hotline.common import _config, console, out


def keep_off_asterisk_cores(cfg) -> None:
    """Move this daemon (and every thread and process it starts from now on) off the cores Asterisk
    has to itself (asterisk.cpus). A list that does not fit this machine is logged, not fatal: the
    daemon then runs on every core."""
    try:
        cores = cfg.system.asterisk.daemon_cpus(os.sched_getaffinity(0))
    except ValueError as e:
        logging.getLogger("hotline").warning("%s; running on every core", e)
        return
    if cores:
        os.sched_setaffinity(0, cores)


# ------------------------------------------------------------------ controller
def cmd_serve(args) -> int:
    from aiohttp import web

    from hotline import compose
    from store.secrets import load_or_create

    cfg = _config(args)
    keep_off_asterisk_cores(cfg)

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


def _metrics_endpoint(endpoint, daemon: str):
    """A daemon's own /metrics (process figures included), served from a thread; its registry. A port
    that cannot be bound costs the metrics, not the daemon's work: logged as an error."""
    from prometheus_client import start_http_server

    from callcenter.metrics import process_registry

    registry = process_registry()
    if endpoint.port is not None:
        try:
            start_http_server(endpoint.port, addr=endpoint.host, registry=registry)
            logging.getLogger("hotline").info("%s metrics on http://%s:%s/metrics", daemon, endpoint.host,
                                              endpoint.port)
        except OSError as e:
            logging.getLogger("hotline").error("%s metrics: cannot listen on %s:%s: %s", daemon, endpoint.host,
                                               endpoint.port, e)
    return registry


def cmd_transcriber(args) -> int:
    from store.secrets import load_or_create
    from transcription.allocator import use_jemalloc
    from transcription.service import serve

    cfg = _config(args)
    keep_off_asterisk_cores(cfg)         # before the exec below: affinity survives it
    use_jemalloc(cfg.system.transcription.allocator)     # an exec when it applies: nothing started yet
    # raise our niceness to the configured value (threads and worker processes inherit it)
    os.nice(max(0, cfg.system.transcription.nice - os.nice(0)))
    secrets = load_or_create(cfg)
    registry = _metrics_endpoint(cfg.system.transcription.metrics, "transcriber")
    _run_until_signal(lambda stop: serve(cfg, secrets, stop, registry))
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
    keep_off_asterisk_cores(cfg)
    secrets = load_or_create(cfg)
    registry = _metrics_endpoint(cfg.system.interop.metrics, "interop")

    async def run(stop):
        tasks = [Deliverer(cfg, secrets, registry).run(stop)] if cfg.system.interop.enabled else []
        if cfg.system.sms.enabled:     # texts to callers over SMPP: the other outbox channel (docs/messaging.md)
            from interop.sms import SmsSender
            tasks.append(SmsSender(cfg, secrets.smpp_password, registry=registry).run(stop))
        if cfg.system.federation.mode == "city":
            from interop.federation import Reporter
            tasks.append(Reporter(cfg, secrets).run(stop))
        await asyncio.gather(*tasks)
    _run_until_signal(run)
    return 0


def cmd_simulate_12345(args) -> int:
    from store.secrets import load_or_create
    from simulators.partner_hotline import refusal, serve, token_path

    cfg = _config(args)
    c = cfg.system.controller
    target = args.target or f"http://{c.http_host}:{c.http_port}"
    partner = cfg.partners.get("12345")
    why = refusal(args.test_only, args.host, target, partner.endpoints if partner else {})
    if why:
        console.print(f"[red]refused: {why}[/red]", soft_wrap=True, markup=True, highlight=False)
        return 2
    secret = load_or_create(cfg).partner_secrets.get("12345")
    if not secret:
        console.print("[red]no shared secret for partner 12345 (config/partners.yaml)[/red]")
        return 1
    token_file = token_path(cfg.state_dir, args.port)
    _run_until_signal(lambda stop: serve(secret, cfg.system.node.name, target, args.host, args.port, token_file,
                                         stop))
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
    from store.auth import AuditLog
    from store.engine import Database
    from store.interop import InteropStore

    cfg = _config(args)

    async def main() -> int:
        db = Database(cfg.system.database.url, cfg.root)
        box = InteropStore(db, cfg.system.node.name)
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
                out.print(t)
                out.print(" ".join(f"{p}: {c}" for p, c in (await box.counts()).items()) or "outbox empty")
                return 0
            ids = [int(x) for x in args.ids]
            if args.action == "retry" and args.dead:
                ids += [m["id"] for m in await box.outbox(status="dead", limit=10000)]
            done = []
            for mid in ids:
                if await box.requeue(mid, replay=args.action == "replay"):
                    done.append(mid)
                    await AuditLog(db).audit("hotline-cli", "command", f"outbox_{args.action}", target=str(mid))
                else:
                    console.print(f"[yellow]{mid}: not found or not in a state to {args.action}[/yellow]")
            console.print(f"{args.action}: {len(done)} message(s) queued again; `hotline interop` sends them")
            return 0 if len(done) == len(ids) else 1
        finally:
            await db.close()
    return asyncio.run(main())


def register(sub) -> None:
    sub.add_parser("serve", help="run the controller and HTTP API in the foreground").set_defaults(func=cmd_serve)
    sub.add_parser("interop", help="run the partner outbox delivery daemon in the foreground").set_defaults(func=cmd_interop)
    sub.add_parser("transcriber", help="run the transcription daemon (post-call jobs, live AudioSocket streams) "
                                      "in the foreground").set_defaults(func=cmd_transcriber)
    s = sub.add_parser("simulate-12345", help="a faithful 12345 ticket system for tests and the demo")
    s.add_argument("--test-only", action="store_true",
                   help="required: it signs as 12345 with this node's shared secret, so it refuses to start "
                        "without this, off loopback, or where a real 12345 is configured")
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
    register_sms(sub)
    register_simulate_smsc(sub)


def cmd_sms(args) -> int:
    """Texts to callers: list, figures, retry dead letters (docs/messaging.md)."""
    from store.auth import AuditLog
    from store.engine import Database
    from store.sms import SmsStore

    cfg = _config(args)

    async def main() -> int:
        db = Database(cfg.system.database.url, cfg.root)
        store = SmsStore(db)
        try:
            if args.action == "list":
                rows = await store.messages(status=args.status, limit=args.limit)
                if args.json:
                    print(json.dumps(rows, ensure_ascii=False, indent=2))
                    return 0
                t = Table("id", "kind", "to", "status", "attempts", "related", "last error", title="texts")
                for m in rows:
                    t.add_row(str(m["id"]), m["kind"], m["to_number"], m["status"], str(m["attempts"]), m["related"],
                              (m["last_error"] or "")[:60])
                out.print(t)
                out.print(" ".join(f"{k}: {n}" for k, n in sorted((await store.counts()).items())) or "no texts")
                return 0
            if args.action == "stats":
                print(json.dumps({"by_status": await store.counts(), "by_kind": await store.counts_by_kind()},
                                 ensure_ascii=False, sort_keys=True))
                return 0
            ids = [int(x) for x in args.ids]
            if args.dead:
                ids += [m["id"] for m in await store.messages(status="dead", limit=10000)]
            done = []
            for mid in ids:
                if await store.requeue(mid):
                    done.append(mid)
                    await AuditLog(db).audit("hotline-cli", "command", "message_retry", target=str(mid))
                else:
                    console.print(f"[yellow]{mid}: not found, or neither dead nor failed[/yellow]")
            console.print(f"retry: {len(done)} text(s) queued again; `hotline interop` sends them")
            return 0 if len(done) == len(ids) else 1
        finally:
            await db.close()
    return asyncio.run(main())


def register_sms(sub) -> None:
    s = sub.add_parser("sms", help="texts to callers over SMPP: list, stats, retry dead letters")
    s.add_argument("action", choices=["list", "stats", "retry"])
    s.add_argument("ids", nargs="*", help="text ids (retry)")
    s.add_argument("--dead", action="store_true", help="retry: every dead letter")
    s.add_argument("--status", choices=["pending", "sending", "submitted", "delivered", "failed", "dead", "cancelled"])
    s.add_argument("--limit", type=int, default=200)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sms)


def cmd_simulate_smsc(args) -> int:
    """The SMSC simulator as a process (demo, tests of other processes): the account is sms.system_id
    with smpp_password from secrets.json; every acknowledged part is appended to --record as JSON."""
    from simulators.smsc import Smsc
    from store.secrets import load_or_create

    cfg = _config(args)
    if not args.test_only:
        console.print("[red]refused: the SMSC simulator answers as an operator's SMSC; start it with "
                      "--test-only[/red]")
        return 2
    password = load_or_create(cfg).smpp_password
    system_id = cfg.system.sms.system_id
    if not system_id or not password:
        console.print("[red]needs sms.system_id in hotline.yaml and smpp_password in secrets.json[/red]")
        return 2

    async def run(stop):
        try:
            center = await Smsc({system_id: password}, host=args.host, port=args.port,
                                record_to=args.record).start()
        except (OSError, ValueError) as e:
            logging.getLogger("hotline").error("SMSC simulator: %s", e)
            return
        logging.getLogger("hotline").info("SMSC simulator on %s:%s for %s", args.host, center.port, system_id)
        await stop.wait()
        await center.close()
    _run_until_signal(run)
    return 0


def register_simulate_smsc(sub) -> None:
    s = sub.add_parser("simulate-smsc", help="a faithful SMPP 3.4 SMSC for tests and the demo (loopback only)")
    s.add_argument("--test-only", action="store_true", help="required: it is a simulator")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=2775)
    s.add_argument("--record", help="append every acknowledged part to this file, one JSON line each")
    s.set_defaults(func=cmd_simulate_smsc)
