"""Install and run the stack: setup, up/down (daemons with pid files), status, demo."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from rich.table import Table

from core.config import HotlineConfig

from hotline import logs
from hotline.common import _api, _config, console, cores_fit, out, progress, with_auth


# ------------------------------------------------------------------ setup / up / down
def cmd_setup(args) -> int:
    from callcenter.asterisk.runtime import AsteriskInstance, ensure_rootfs
    from store.secrets import load_or_create
    from store.engine import migrate

    cfg = _config(args)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    # the database, logs, secrets and initial passwords live here: nobody else on the host reads them
    cfg.state_dir.chmod(0o700)
    with progress("Asterisk rootfs") as stage:
        ensure_rootfs(cfg.resolve(cfg.system.asterisk.rootfs), log=console.print,
                      mirror=cfg.system.asterisk.debian_mirror, step=stage)
    secrets = load_or_create(cfg)
    with progress("IVR prompts") as done:
        AsteriskInstance(cfg).install(secrets, log=console.print, progress=done)
    migrate(cfg.system.database.url, cfg.root)
    from hotline.knowledge import seed    # the knowledge base's starter set (issue 20); kept entries untouched
    if seed(cfg)[0]:
        console.print("knowledge base: seed entries loaded (each needs a lawyer's review)")
    _redis_user(cfg, secrets)
    created = _initial_passwords(cfg)
    if created:
        console.print(f"desk logins: initial passwords for {created} users in {cfg.state_dir / 'initial-passwords.txt'}"
                      " (change them with `hotline passwd <user>`)")
    console.print("[green]setup complete[/green]")
    return 0


def _redis_user(cfg: HotlineConfig, secrets) -> None:
    """The install's Redis ACL user, which every daemon logs in as. Created through an administrator's
    connection: HOTLINE_REDIS_ADMIN_URL (kept out of the config files), else the configured URL (a
    development Redis whose default user may do anything). Redis is optional: setup goes on without it."""
    import hashlib

    from redis.exceptions import RedisError

    from store.bus import acl_rules, provision

    r = cfg.system.redis
    if not r.url:
        return
    try:
        notes = provision(os.environ.get("HOTLINE_REDIS_ADMIN_URL") or r.url, r.url, r.prefix, secrets.redis_password)
    except (RedisError, OSError) as e:
        # the line for the operator's aclfile carries the password's SHA-256, as ACL SAVE would write it
        hashed = "#" + hashlib.sha256(secrets.redis_password.encode()).hexdigest()
        rules = [hashed if rule.startswith(">") else rule for rule in acl_rules(r.prefix, "") if rule != "reset"]
        console.print(f"[yellow]Redis user {r.prefix!r} not created ({e}): set HOTLINE_REDIS_ADMIN_URL to an "
                      f"administrator's redis:// URL and run setup again, or add to Redis's aclfile:[/yellow]\n"
                      f"user {r.prefix} {' '.join(rules)}")
        return
    for note in notes:
        console.print(f"[yellow]{note}[/yellow]")
    console.print(f"Redis: the daemons log in as {r.prefix!r} (password in {cfg.state_dir / 'secrets.json'})")


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
    fresh = with_auth(cfg, work)
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
            (daemon == "interop" and not (cfg.system.interop.enabled or cfg.system.sms.enabled)):
        return
    if _pid_alive(pidfile):
        return
    # the daemon writes its log itself, rotated (hotline/logs.py); stdout/stderr keep only what escapes
    # logging (a crash before logging is set up), in a file of their own that rotation never renames
    base = str(pidfile)[:-4]
    crash = open(base + ".out", "ab")
    argv = [sys.executable, "-m", "hotline.cli"] + (["--root", args.root] if args.root else []) + \
        (["--config-dir", args.config_dir] if getattr(args, "config_dir", None) else []) + \
        sum((["--set", s] for s in (args.set or [])), []) + logs.as_argv(args) + \
        ["--log-file", base + ".log", daemon]
    proc = subprocess.Popen(argv, stdout=crash, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
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

    if not cores_fit(_config(args)):
        return 2
    cmd_setup(args)
    cfg = _config(args)
    if _multi_node(cfg):
        return _up_cluster(args, cfg)
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
    console.print(f"[green]up[/green]: SIP trunk {cfg.system.trunk.transport} {a.sip_bind}:"
                  f"{a.tls_port if cfg.system.trunk.transport == 'tls' else a.sip_port} (dial <area code>12348), "
                  f"AMI 127.0.0.1:{a.ami_port}, RTP {a.rtp_start}-{a.rtp_end}")
    if a.tls_port is not None:
        console.print(f"phones: SIP over TLS {a.sip_bind}:{a.tls_port} (CA {cfg.state_dir / 'tls' / 'ca.pem'})"
                      + ("" if cfg.system.phones.transport == "tls" else f", or plain UDP {a.sip_bind}:{a.sip_port}"))
    console.print(f"status page http://{c.http_host}:{c.http_port}/  API http://{c.http_host}:{c.http_port}/api/status  "
                  f"metrics http://{c.http_host}:{c.http_port}/metrics")
    return 0


def cmd_down(args) -> int:
    cfg = _config(args)
    if _multi_node(cfg):
        return _down_cluster(args, cfg)
    _stop_node(cfg)
    console.print("down")
    return 0


def _stop_node(cfg: HotlineConfig) -> None:
    """One node's daemons (SIGTERM, SIGKILL after 10 s) and then its Asterisk."""
    from callcenter.asterisk.runtime import AsteriskInstance

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


# ------------------------------------------------------------------ several nodes on one machine
def _multi_node(cfg: HotlineConfig) -> bool:
    """cluster.nodes set and this process not one of them: `up`/`down` run the whole cluster here,
    Kamailio and every node (each on its own loopback address), for development and tests."""
    return bool(cfg.system.cluster.nodes) and cfg.system.cluster.node is None


def _node_args(args, name: str):
    import argparse
    return argparse.Namespace(**{**vars(args), "set": [*(args.set or []), f"cluster.node={name}"]})


def _up_cluster(args, cfg: HotlineConfig) -> int:
    if not cfg.system.cluster.edge:
        console.print("[red]cluster.edge is false: there is no Kamailio to start; run each node with "
                      "`hotline up --set cluster.node=NAME`[/red]")
        return 2
    from callcenter.asterisk.runtime import AsteriskInstance
    from callcenter.edge.runtime import KamailioInstance
    from store.secrets import load_or_create

    secrets = load_or_create(cfg)
    nodes = cfg.system.cluster.nodes
    for i, node in enumerate(nodes):
        nargs = _node_args(args, node.name)
        ncfg = _config(nargs)
        ast = AsteriskInstance(ncfg)
        with progress(f"node {node.name}") as done:
            ast.install(secrets, log=console.print, progress=done)
        ast.reload() if ast.running() else ast.start()
        # one transcriber and one interop daemon for the cluster (they work from the shared database)
        for daemon in DAEMONS if i == 0 else ("serve",):
            _spawn_daemon(ncfg, nargs, daemon)
    edge = KamailioInstance(cfg)
    edge.install(secrets)
    if edge.running():
        edge.stop()
    edge.start()
    failed = []
    for node in nodes:
        ncfg = _config(_node_args(args, node.name))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _api(ncfg, "/api/status")["asterisk"]["ami_connected"]:
                    break
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.3)
        else:
            failed.append(node.name)
    k = cfg.system.cluster.kamailio
    console.print(f"[green]up[/green]: edge (Kamailio) udp {k.address}:{k.sip_port}: the carrier and every phone "
                  f"talk to it (dial <area code>12348); runtime files in {edge.dir}")
    for node in nodes:
        state = "[red]controller not up[/red]" if node.name in failed else "[green]up[/green]"
        console.print(f"node {node.name}: Asterisk {node.address}:{node.sip_port}, AMI 127.0.0.1:{node.ami_port}, "
                      f"API http://127.0.0.1:{node.http_port}/ ; cities first: {', '.join(node.cities) or '-'} {state}")
    return 1 if failed else 0


def _down_cluster(args, cfg: HotlineConfig) -> int:
    from callcenter.edge.runtime import KamailioInstance

    KamailioInstance(cfg).stop()
    for node in cfg.system.cluster.nodes:
        _stop_node(_config(_node_args(args, node.name)))
    console.print("down (edge and every node)")
    return 0


def cmd_edge(args) -> int:
    """The edge alone, for a Kamailio host of its own (docs/scale-out.md): write its generated files,
    or run it from them."""
    from callcenter.edge import confgen
    from callcenter.edge.runtime import EdgeError, KamailioInstance
    from store.secrets import load_or_create

    cfg = _config(args)
    if not cfg.system.cluster.nodes:
        console.print("[red]cluster.nodes is empty: a single node needs no edge[/red]")
        return 2
    edge = KamailioInstance(cfg)
    try:
        if args.action == "generate":
            out_dir = Path(args.out)
            out_dir.mkdir(parents=True, exist_ok=True)
            files = confgen.generate(cfg, load_or_create(cfg), str(edge.dir))
            for name, text in files.items():
                (out_dir / name).write_text(text)
                (out_dir / name).chmod(0o600)
            tls = (f"; the WebSocket's certificate ({confgen.CERT_FILE}, {confgen.KEY_FILE}) is signed by "
                   f"`edge up`" if confgen.TLS_FILE in files else "")
            console.print(f"{', '.join(files)} written to {out_dir} "
                          f"(they name {edge.dir} as their runtime directory{tls})")
        elif args.action == "up":
            edge.install(load_or_create(cfg))
            edge.start()
            k = cfg.system.cluster.kamailio
            wss = f", wss {k.address}:{k.wss_port} (browser phones)" if k.wss_port is not None else ""
            console.print(f"edge up: udp {k.address}:{k.sip_port}{wss}")
        elif args.action == "down":
            edge.stop()
            console.print("edge down")
        else:
            out.print(edge.rpc("dispatcher.list") if edge.running() else "edge not running", markup=False)
    except EdgeError as e:
        console.print(f"[red]{e}[/red]")
        return 1
    return 0


def cmd_status(args) -> int:
    """Exit 0 only when Asterisk runs, the controller runs and its AMI session is up (scripts and
    monitoring read the exit code); what is down is listed under "down". With cluster.nodes and no
    cluster.node chosen: every node of this install, one after the other, and the edge."""
    cfg = _config(args)
    if cfg.system.cluster.nodes and not cfg.system.cluster.node:
        return _status_cluster(args, cfg)
    report = _status_report(cfg)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        _print_status(report)
        if report.get("nodes"):
            out.print(nodes_table(report["nodes"]))
    return 1 if report["down"] else 0


def _status_cluster(args, cfg: HotlineConfig) -> int:
    from callcenter.edge.runtime import KamailioInstance

    reports = {n.name: _status_report(_config(_node_args(args, n.name))) for n in cfg.system.cluster.nodes}
    edge = KamailioInstance(cfg).running()
    down = ([] if edge else ["edge"]) + [f"{name}: {d}" for name, r in reports.items() for d in r["down"]]
    nodes = next((r["nodes"] for r in reports.values() if r.get("nodes")), [])
    if args.json:
        print(json.dumps({"edge": {"running": edge}, "node_reports": reports, "nodes": nodes, "down": down},
                         ensure_ascii=False, indent=2))
        return 1 if down else 0
    k = cfg.system.cluster.kamailio
    out.print(f"edge (Kamailio) {k.address}:{k.sip_port} running: {edge}")
    for name, report in reports.items():
        out.rule(f"node {name}")
        _print_status(report)
    if nodes:
        out.print(nodes_table(nodes))
    if not edge:
        console.print("[red]down: edge[/red]")
    return 1 if down else 0


def _status_report(cfg: HotlineConfig) -> dict:
    from callcenter.asterisk.runtime import AsteriskInstance

    report = {"asterisk": {"running": AsteriskInstance(cfg).running()}, "controller": {"running": bool(_pid_alive(_controller_pidfile(cfg)))},
              "transcriber": {"running": bool(_pid_alive(_pidfile(cfg, "transcriber")))},
              "interop": {"running": bool(_pid_alive(_pidfile(cfg, "interop")))}}
    try:
        st = _api(cfg, "/api/status")
        report["asterisk"].update(st["asterisk"])
        report["controller"].update(st["controller"], connected=st["asterisk"]["ami_connected"])
        report.update({k: st[k] for k in ("redis", "agents", "queues", "calls_in_progress")})
        report["nodes"] = st.get("nodes", [])
    except (urllib.error.URLError, OSError, ValueError) as e:
        report["controller"]["api_error"] = str(e)
    # daemons started by systemd have no pid file here: a controller's API answering, and its AMI
    # session (which only a live Asterisk can hold), are what count
    report["down"] = [name for name, up in (("asterisk", report["asterisk"]["running"]
                                             or report["asterisk"].get("ami_connected", False)),
                                            ("controller", report["controller"]["running"]
                                             or "api_error" not in report["controller"]),
                                            ("ami", report["asterisk"].get("ami_connected", False))) if not up]
    return report


def _print_status(report: dict) -> None:
    out.print(f"Asterisk running: {report['asterisk']['running']}  AMI connected: {report['asterisk'].get('ami_connected', False)}")
    out.print(f"controller running: {report['controller']['running']}  transcriber running: "
              f"{report['transcriber']['running']}  interop running: {report['interop']['running']}")
    if "agents" in report:
        t = Table("agent", "state", "queues")
        for a in report["agents"]:
            t.add_row(a["id"], a["state"], ", ".join(a["queues"]))
        out.print(t)
        out.print(f"calls in progress: {len(report['calls_in_progress'])}")
    if report["down"]:
        console.print(f"[red]down: {', '.join(report['down'])}[/red]")


def nodes_table(nodes: list[dict]) -> Table:
    """The cluster's nodes as `hotline status` shows them (one row for a single node)."""
    colour = {"up": "green", "down": "red", "stale": "yellow"}
    t = Table("node", "health", "last seen", "cities (first)", "serving now", title="nodes")
    for n in nodes:
        seen = time.strftime("%H:%M:%S", time.localtime(n["last_seen"])) if n.get("last_seen") else "never"
        cities = ", ".join(n["cities"])
        taken = [c for c in n["serving"] if c not in n["cities"]]
        serving = ", ".join(n["serving"]) if len(n["serving"]) <= 6 else f"{len(n['serving'])} cities"
        if taken:
            serving += f" (standby for {', '.join(taken)})"
        t.add_row(n["name"] + (" *" if n.get("this") else ""), f"[{colour.get(n['health'], 'white')}]{n['health']}[/]",
                  seen, cities if len(n["cities"]) <= 6 else f"{len(n['cities'])} cities", serving)
    return t


def cmd_demo(args) -> int:
    from simulators.demo import run_demo

    if cmd_up(args) != 0:
        return 1
    code = run_demo(_config(args), calls=args.calls)
    if args.stop:
        cmd_down(args)
    return code


def register(sub) -> None:
    sub.add_parser("setup", help="install the Asterisk rootfs, configs, prompts and database (idempotent)").set_defaults(func=cmd_setup)
    sub.add_parser("up", help="start Asterisk, the controller and the HTTP API in the background").set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop them").set_defaults(func=cmd_down)
    s = sub.add_parser("status", help="Asterisk, controller, agents, queues, calls in progress; exit 1 when "
                                      "Asterisk, the controller or its AMI session is down")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)
    s = sub.add_parser("edge", help="the SIP edge (Kamailio) alone: generate its files, up, down, status")
    s.add_argument("action", choices=["generate", "up", "down", "status"])
    s.add_argument("--out", default="kamailio-config", help="generate: the directory to write to")
    s.set_defaults(func=cmd_edge)
    s = sub.add_parser("demo", help="bring everything up and run simulated callers and agents")
    s.add_argument("--calls", type=int, default=7)
    s.add_argument("--stop", action="store_true", help="bring the stack down afterwards (default: leave it up)")
    s.set_defaults(func=cmd_demo)
