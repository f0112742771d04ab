"""Private Redis and PostgreSQL servers for the fault suite: each test may stop and start its own
without touching the machine's shared ones (other tests and CI jobs use those)."""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers import free_port


class RedisServer:
    """With an aclfile, as production runs Redis: the install's user that `hotline setup` creates (ACL
    SAVE) outlives a crash. ``acl``: its first lines, e.g. the default user turned off."""

    def __init__(self, workdir: Path, acl: list[str] | None = None):
        self.workdir, self.port = workdir, free_port()
        self.proc: subprocess.Popen | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.aclfile = workdir / "users.acl"
        self.aclfile.write_text("".join(line + "\n" for line in acl or []))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.workdir),
                                      "--aclfile", str(self.aclfile)],
                                     stdout=open(self.workdir / "redis.log", "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()           # as a crash would: no clean shutdown
            self.proc.wait(10)


class PostgresServer:
    """initdb + pg_ctl as the postgres user (PostgreSQL refuses to run as root), on a free port, in a
    directory of its own under /tmp (pytest's are private to root)."""

    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            raise AssertionError("PostgreSQL server binaries not found under /usr/lib/postgresql (package postgresql)")
        self.bin = Path(bins[-1]).parent
        self.workdir, self.port = Path(tempfile.mkdtemp(prefix="hotline-pg-")), free_port()
        self.data = self.workdir / "pgdata"
        shutil.chown(self.workdir, "postgres", "postgres")
        self._as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                           "-E", "UTF8", "--no-sync"])

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, cmd: list[str], timeout: float = 120) -> None:
        res = subprocess.run(["runuser", "-u", "postgres", "--", *cmd], capture_output=True, text=True,
                             timeout=timeout, cwd=self.workdir)
        if res.returncode != 0:
            raise AssertionError(f"{cmd[0]} failed: {res.stdout[-1500:]}{res.stderr[-1500:]}")

    def start(self) -> None:
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.workdir / "pg.log"), "-w",
                           "-o", f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off",
                           "start"])

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: the server dies without a checkpoint, as in a crash or power loss."""
        pidfile = self.data / "postmaster.pid"
        if not pidfile.exists():
            return
        try:
            self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])
        except AssertionError:
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        self.stop("fast")
        shutil.rmtree(self.workdir, ignore_errors=True)
