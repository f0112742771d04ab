"""A real stack for tests: one Asterisk instance in the shared rootfs, the controller as a
subprocess, pjsua2 callers and agents as subprocesses (each its own pjsua2 endpoint)."""
from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import redis

from simulators.audio import speech_wav
from callcenter.asterisk.acl import SipBlocklist, blocklist_path
from callcenter.asterisk.runtime import AsteriskInstance, ensure_rootfs
from core.config import HotlineConfig, load_config
from store.bus import provision
from store.secrets import load_or_create

ROOT = Path(__file__).resolve().parent.parent


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_pair() -> int:
    """A port p with p and p+1 free for UDP and TCP (baresip listens on p, and TLS on p+1), drawn above the
    kernel's ephemeral range so that no outgoing connection of another test takes p+1 meanwhile."""
    for _ in range(200):
        p = random.randrange(61000, 64998)
        try:
            with contextlib.ExitStack() as stack:
                for port in (p, p + 1):
                    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                        s = stack.enter_context(socket.socket(socket.AF_INET, kind))
                        s.bind(("127.0.0.1", port))
            return p
        except OSError:
            continue
    raise RuntimeError("no free pair of ports in 61000-64999")


tts_wav = speech_wav

_rtp_blocks = 0


def rtp_block() -> int:
    """The first of 100 RTP ports (20000-28999) for a new stack. Under pytest-xdist each worker draws
    from its own 18 blocks, so stacks of two workers never share RTP ports; alone, a random start."""
    global _rtp_blocks
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return 20000 + random.randrange(0, 90) * 100
    block = (int(worker[2:]) % 5) * 18 + _rtp_blocks % 18
    _rtp_blocks += 1
    return 20000 + block * 100


@dataclass
class Party:
    """A running softphone subprocess and the JSON events it printed."""
    proc: subprocess.Popen
    log: Path
    events: list = field(default_factory=list)

    def read(self) -> list[dict]:
        self.events = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    self.events.append(json.loads(line))
        return self.events

    def wait_event(self, name: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.read():
                if e["event"] == name:
                    return e
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no {name!r} event within {timeout}s; log:\n{self.log.read_text(errors='replace')[-3000:]}")

    def result(self, timeout: float = 120) -> dict:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        return self.wait_event("result", 1)

    def send(self, line: str) -> None:
        """A phone key for an agent started with commands=True."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def page_login(page, base_url: str, user: str, password: str, next_path: str) -> None:
    """Log in on the login page like a person, and wait until the app page has taken over."""
    page.goto(f"{base_url}/login?next={next_path}")
    page.fill("#user", user)
    page.fill("#password", password)
    page.click("#btn-login-submit")
    page.wait_for_url(lambda url: "/login" not in url)     # a "**/desk" glob would match login?next=/desk


def csp_violations(page) -> list[str]:
    """From now on, what the browser refuses under the pages' Content-Security-Policy: console errors
    naming it (inline script, onclick=, a foreign source) and uncaught errors it causes (eval)."""
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if m.type == "error" and "Content Security Policy" in m.text
            else None)
    page.on("pageerror", lambda e: seen.append(str(e)) if "Content Security Policy" in str(e) else None)
    return seen


def terminate(proc: subprocess.Popen | None, grace: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``grace`` seconds."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def refusals(s: "Stack", action: str) -> int:
    """How many refusals of ``action`` the audit log has counted: a refusal anyone can cause is folded
    into one row per source address and minute, with a count (issue 16, finding 6)."""
    return sum(e["count"] for e in s.api("/api/audit?limit=1000") if e["action"] == action and not e["allowed"])


def wait_for(pred, timeout: float = 15, what: str = "condition", log: Path | None = None):
    """The first truthy value of ``pred()`` within ``timeout``; else fail, with the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.3)
    tail = f"; log:\n{log.read_text()[-3000:]}" if log else ""
    raise AssertionError(f"{what} not reached within {timeout}s{tail}")


class Stack:
    def __init__(self, tmp: Path, db_url: str | None = None):
        self.tmp = tmp
        self.name = f"t{os.getpid()}{random.randint(100, 999)}"
        rtp = rtp_block()
        self.carrier_port = free_port(socket.SOCK_DGRAM)  # where callbacks to callers are sent
        self.overrides = {
            "state_dir": str(tmp / "state"),
            "trunk": {"outbound": f"sip:127.0.0.1:{self.carrier_port}"},
            "asterisk": {"instance": self.name, "sip_port": free_port(socket.SOCK_DGRAM), "ami_port": free_port(),
                         "tls_port": free_port(), "rtp_start": rtp, "rtp_end": rtp + 99},
            # rotas would log agents in by the clock: tests decide who is logged in (test_rota turns it on)
            "controller": {"http_port": free_port(), "rotas_enabled": False, "rota_interval_seconds": 0.5},
            "database": {"url": db_url or f"sqlite:///{tmp}/hotline.db"},
            # the live AudioSocket port (9092 by default) is per stack: two stacks must not share a transcriber
            "transcription": {"live": {"port": free_port()}, "metrics": {"port": free_port()}},
            # so are the daemons' /metrics ports
            "interop": {"metrics": {"port": free_port()}},
            "redis": {"prefix": f"hltest{self.name}"},
            "queues": {"wrapup_seconds": 1, "ring_seconds": 10,
                       "callback": {"retry_seconds": 5, "ring_seconds": 15, "offer_every_seconds": 30}},
            # every city open unless a test says otherwise: results must not depend on the hour
            "routing": {"schedules": {"default": {"always_open": True}}},
            # failed SIP logins block their address: soon and briefly, so a test can see it lifted
            "sip_guard": {"max_failures": 5, "window_seconds": 60, "block_seconds": 15},
        }
        self.controller: subprocess.Popen | None = None
        self.transcriber: subprocess.Popen | None = None
        self.parties: list[Party] = []
        self.reconfigure()

    def reconfigure(self) -> None:
        self.cfg: HotlineConfig = load_config(ROOT, self.overrides)
        self.env = {**os.environ, "HOTLINE_CONFIG_OVERRIDES": json.dumps(self.overrides), "PYTHONUNBUFFERED": "1"}
        self.asterisk = AsteriskInstance(self.cfg)

    def set_routing(self, routing: dict) -> None:
        """Regenerate Asterisk's config with these routing.yaml overrides and reload it (no restart)."""
        self.overrides["routing"] = routing
        self.reconfigure()
        self.asterisk.install(self.secrets, log=lambda *a: None)
        self.asterisk.rx("dialplan reload")
        self.asterisk.rx("module reload app_queue.so")
        # the controller reads the same config (for memberships): restart it on the new one
        self.stop_controller()
        self.start_controller()

    def restart_controller_with(self, **controller) -> None:
        self.overrides["controller"].update(controller)
        self.reconfigure()
        self.stop_controller()
        self.start_controller()

    # ---- lifecycle
    def start(self) -> None:
        ensure_rootfs(self.cfg.resolve(self.cfg.system.asterisk.rootfs))
        self.secrets = load_or_create(self.cfg)
        self.asterisk.install(self.secrets, log=lambda *a: None)
        # the stack's Redis user, as `hotline setup` creates it (on the machine's Redis: one more user)
        r = self.cfg.system.redis
        if r.url:
            provision(r.url, r.url, r.prefix, self.secrets.redis_password)
        try:
            self.asterisk.start()
            self.start_controller()
        except BaseException:
            # a stack that fails to come up must not outlive its test session (its Asterisk and
            # controller were left running after a setup error)
            self.close()
            raise

    def close(self) -> None:
        for p in self.parties:
            p.stop()
        self.stop_transcriber()
        self.stop_controller()
        self.asterisk.stop()
        self.asterisk.remove()
        if self.cfg.system.redis.url:
            with contextlib.suppress(redis.RedisError, OSError):
                redis.Redis.from_url(self.cfg.system.redis.url, socket_timeout=5).acl_deluser(self.cfg.system.redis.prefix)

    def start_controller(self, env_extra: dict | None = None) -> None:
        log = open(self.tmp / "controller.log", "ab")
        self.controller = subprocess.Popen([sys.executable, "-m", "hotline.cli", "serve"], cwd=ROOT,
                                           env={**self.env, **(env_extra or {})}, stdout=log, stderr=subprocess.STDOUT)
        self.wait_controller()

    def wait_controller(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                st = self.api("/api/status")
                if st["asterisk"]["ami_connected"] and st["controller"]["resynced"]:
                    return st
            except (urllib.error.URLError, OSError, ValueError) as e:
                last = e
            if self.controller and self.controller.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"controller not ready ({last}); log:\n{(self.tmp / 'controller.log').read_text()[-3000:]}")

    def start_transcriber(self, timeout: float = 60) -> None:
        """The transcription daemon; ready once its AudioSocket server listens (models loaded)."""
        log_path = self.tmp / "transcriber.log"
        self.transcriber = subprocess.Popen([sys.executable, "-m", "hotline.cli", "transcriber"], cwd=ROOT,
                                            env=self.env, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT)
        live = self.cfg.system.transcription.live
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.transcriber.poll() is not None:
                break
            with contextlib.suppress(OSError), socket.create_connection((live.host, live.port), timeout=0.5):
                return
            time.sleep(0.2)
        raise AssertionError(f"transcriber not ready; log:\n{log_path.read_text()[-3000:]}")

    def stop_transcriber(self) -> None:
        terminate(self.transcriber)

    @property
    def sip_blocklist(self) -> SipBlocklist:
        p = self.asterisk.paths
        return SipBlocklist(p.host(blocklist_path(p)))

    def unblock_sip(self) -> None:
        """Lift every SIP address block (a scanner test's must not refuse the next test's probes)."""
        for net in self.sip_blocklist.blocked():
            self.sip_blocklist.unblock(net)

    def kill_controller(self) -> None:
        if self.controller and self.controller.poll() is None:
            self.controller.send_signal(signal.SIGKILL)
            self.controller.wait()

    def stop_controller(self) -> None:
        terminate(self.controller)

    # ---- HTTP API
    def api(self, path: str, method: str = "GET", body=None, raw: bytes | None = None):
        c = self.cfg.system.controller
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(f"http://{c.http_host}:{c.http_port}{path}", method=method, data=data,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {self.secrets.service_token}"})
        with urllib.request.urlopen(req, timeout=15) as r:
            return json.loads(r.read())

    def api_error(self, path: str, method: str = "POST", body=None, raw: bytes | None = None) -> tuple[int, dict]:
        try:
            self.api(path, method, body, raw)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        raise AssertionError(f"{method} {path} unexpectedly succeeded")

    # ---- desk users
    def set_password(self, user: str, password: str) -> None:
        subprocess.run([sys.executable, "-m", "hotline.cli", "passwd", user, "--password-stdin"], cwd=ROOT,
                       env=self.env, input=password + "\n", text=True, check=True, capture_output=True, timeout=60)

    def desk_session(self, user: str, password: str) -> "DeskSession":
        c = self.cfg.system.controller
        return DeskSession(f"http://{c.http_host}:{c.http_port}", user, password)

    @property
    def base_url(self) -> str:
        c = self.cfg.system.controller
        return f"http://{c.http_host}:{c.http_port}"

    # ---- parties
    def _spawn(self, args: list[str], name: str, stdin: bool = False) -> Party:
        log = self.tmp / f"{name}-{len(self.parties)}.log"
        proc = subprocess.Popen([sys.executable, "-m", "hotline.cli", *args], cwd=ROOT, env=self.env,
                                stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, text=stdin or None)
        party = Party(proc, log)
        self.parties.append(party)
        return party

    def agent(self, agent_id: str, play: Path | None = None, record_dir: Path | None = None,
              login: bool = True, answer_delay: float = 0.5, commands: bool = False) -> Party:
        args = ["agent", "--id", agent_id, "--auto-answer", "--answer-delay", str(answer_delay)]
        args += ["--commands"] if commands else []
        if play:
            args += ["--play", str(play)]
        if record_dir:
            args += ["--record-dir", str(record_dir)]
        party = self._spawn(args, agent_id, stdin=commands)
        party.wait_event("registered", 20)
        if login:
            self.api(f"/api/agents/{agent_id}/login", "POST", {"ready": True})
        return party

    def call(self, to: str, dtmf: str = "", play: Path | None = None, record: Path | None = None,
             hangup_after: float = 20, caller: str = "13800000000", extra: list[str] | None = None) -> Party:
        args = ["call", "--to", to, "--caller", caller, "--dtmf", dtmf, "--hangup-after", str(hangup_after)]
        args += extra or []
        if play:
            args += ["--play", str(play)]
        if record:
            args += ["--record", str(record)]
        return self._spawn(args, f"caller-{to}")

    def logout_all(self) -> None:
        for a in self.cfg.agents:
            with contextlib.suppress(Exception):
                self.api(f"/api/agents/{a.id}/logout", "POST", {})

    def records(self, limit: int = 20) -> list[dict]:
        return self.api(f"/api/calls?limit={limit}")

    def wait_record(self, pred, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        recs = []
        while time.monotonic() < deadline:
            recs = self.records()
            for r in recs:
                if pred(r):
                    return r
            time.sleep(0.3)
        raise AssertionError(f"no matching record within {timeout}s; have: {json.dumps(recs, ensure_ascii=False)[:3000]}")


class DeskSession:
    """A desk user logged in over HTTP like the browser is: session cookie plus CSRF header."""

    def __init__(self, base: str, user: str, password: str):
        import http.cookiejar
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.csrf = ""
        self.csrf = self.request("/api/login", "POST", {"user": user, "password": password})[1]["csrf"]

    def request(self, path: str, method: str = "GET", body=None, csrf: bool = True) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if csrf and self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        req = urllib.request.Request(self.base + path, method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
        try:
            with self.opener.open(req, timeout=15) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")


@contextlib.contextmanager
def fresh(stack: Stack):
    """A test's start: every agent logged out, no stray softphones, the controller running."""
    def stop_parties():
        for p in stack.parties:
            p.stop()
        stack.parties.clear()
    stop_parties()
    stack.unblock_sip()
    if stack.controller is None or stack.controller.poll() is not None:
        stack.start_controller()
    stack.logout_all()
    try:
        yield stack
    finally:
        stop_parties()


PG_ADMIN_URL = os.environ.get("HOTLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def postgres_database():
    """A fresh PostgreSQL database for one test module, dropped afterwards."""
    import psycopg

    name = f"hotline_test_{os.getpid()}_{random.randint(1000, 9999)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def finished_wav(directory: Path, timeout: float = 10) -> Path:
    """The newest WAV a softphone recorded, once its recorder has closed it (header finalised)."""
    import wave
    deadline = time.monotonic() + timeout
    while True:
        files = sorted(directory.glob("*.wav"))
        if files:
            try:
                with wave.open(str(files[-1])) as w:
                    if w.getnframes() > 0:
                        return files[-1]
            except (wave.Error, EOFError):
                pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no finished recording in {directory}")
        time.sleep(0.2)


@contextlib.asynccontextmanager
async def http_app(db_url: str, tmp_path: Path, overrides: dict | None = None, **secrets):
    """The real HTTP app (every route, the real stores and audit log) on a migrated database, without
    Asterisk: a started aiohttp TestClient with ``.ctl`` (the controller) and ``.tmp``."""
    from aiohttp.test_utils import TestClient, TestServer
    from hotline import compose
    from store.engine import migrate
    from store.secrets import Secrets
    migrate(db_url, ROOT)
    cfg = load_config(None, {"state_dir": str(tmp_path), "database": {"url": db_url}, **(overrides or {})})
    keys = Secrets(**{"ami_user": "u", "ami_secret": "s", "agent_passwords": {}, "service_token": "t",
                      "privacy_key": "k", "bus_key": "k", **secrets})
    ctl = compose.controller(cfg, keys)
    client = TestClient(TestServer(compose.api(ctl, keys)))
    await client.start_server()
    client.ctl, client.tmp = ctl, tmp_path
    try:
        yield client
    finally:
        await client.close()
        await ctl.db.close()
