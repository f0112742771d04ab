"""Run Kamailio (the host's package, not the Asterisk chroot) with its files under the state dir:
<state_dir>/kamailio/{kamailio.cfg, dispatcher.list, edge-secrets.cfg, kamailio.pid, kamailio_ctl}."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from core.config import HotlineConfig
from store.secrets import Secrets
from store.tls import issue_certificate

from . import confgen


class EdgeError(RuntimeError):
    """Kamailio could not be configured, started or reached; the message says what to do."""


class KamailioInstance:
    def __init__(self, cfg: HotlineConfig, rundir: Path | None = None):
        self.cfg = cfg
        self.settings = cfg.system.cluster.kamailio
        self.dir = rundir or cfg.state_dir / "kamailio"
        self.pidfile = self.dir / "kamailio.pid"
        self.log = self.dir / "kamailio.log"
        self.ctl = f"unix:{self.dir}/kamailio_ctl"

    def install(self, secrets: Secrets) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for name, text in confgen.generate(self.cfg, secrets, str(self.dir)).items():
            path = self.dir / name
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            tmp.replace(path)
        if self.settings.wss_port is not None:
            # the desks' WebSocket: a certificate for the edge's address from the install's CA, the one
            # the nodes' certificates come from (docs/agent-phones.md: browsers trust that CA)
            issue_certificate(self.cfg, [self.settings.address, "localhost"],
                              self.dir / confgen.KEY_FILE, self.dir / confgen.CERT_FILE)
        self.check()

    def check(self) -> None:
        """kamailio -c: the generated config parses and every module loads."""
        r = subprocess.run([self.settings.binary, "-c", "-f", str(self.dir / "kamailio.cfg")],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise EdgeError(f"kamailio refuses {self.dir / 'kamailio.cfg'}:\n{r.stderr[-3000:]}")

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, timeout: float = 20) -> None:
        if self.running():
            return
        self.pidfile.unlink(missing_ok=True)
        # -DD: no daemon fork (the pid we record is Kamailio's main process); -E: log to the file
        argv = [self.settings.binary, "-DD", "-E", "-f", str(self.dir / "kamailio.cfg"), "-P", str(self.pidfile),
                "-Y", str(self.dir), "-m", "64", "-M", "8"]
        with open(self.log, "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.proc = proc        # Kamailio writes the pid file itself (-P)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise EdgeError(f"kamailio exited ({proc.returncode}); log:\n{self.log.read_text()[-3000:]}")
            try:
                self.rpc("core.version")
                return
            except EdgeError:
                time.sleep(0.2)
        raise EdgeError(f"kamailio did not answer on {self.ctl} within {timeout}s")

    def rpc(self, *command: str, timeout: float = 10) -> str:
        """One RPC over the control socket (kamcmd), e.g. rpc("dispatcher.list")."""
        try:
            r = subprocess.run(["kamcmd", "-s", self.ctl, *command], capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise EdgeError(f"kamcmd {' '.join(command)}: {e}") from None
        if r.returncode != 0:
            raise EdgeError(f"kamcmd {' '.join(command)}: {r.stderr.strip() or r.stdout.strip()}")
        return r.stdout

    def reload_dispatcher(self) -> None:
        self.rpc("dispatcher.reload")

    def stop(self, timeout: float = 10) -> None:
        pid = self.pid()
        if pid is None:
            return
        # the whole process group: the main process and its workers
        os.killpg(pid, signal.SIGTERM) if _is_leader(pid) else os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL) if _is_leader(pid) else os.kill(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)


def _is_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # a zombie child of ours counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
