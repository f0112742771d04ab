"""Run Asterisk 22 from a debootstrapped Debian-unstable rootfs (DESIGN §4).

The rootfs is built once and cached outside the repo; each instance gets its own directories
inside it and is started with ``chroot ROOTFS asterisk -f -C <instance>/etc/asterisk.conf``.
"""
from __future__ import annotations

import collections
import fcntl
import grp
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from callcenter.asterisk import confgen
from callcenter.asterisk.acl import SipBlocklist, blocklist_path
from callcenter.asterisk.confgen.prompt_recording import pins_file, pins_path
from callcenter.asterisk.rootfs import READY_FILE, VERSION_FILE, RootfsError, check_version
from core.paths import InstancePaths
from store.secrets import Secrets
from store.tls import TlsError, ensure_tls
from core.config import HotlineConfig
from ivr_flows.prompts import build_prompts, SOX_OUT

PACKAGES = "asterisk,asterisk-modules,asterisk-core-sounds-en-gsm"
# Asterisk runs as this user (never root, DESIGN §4), in the group our daemons share its files through
ASTERISK_USER = "hotline-asterisk"
GROUP = "hotline"
ASTERISK_DIRS = ("etc/asterisk", "var/lib/asterisk", "var/spool/asterisk", "var/log/asterisk", "run/asterisk")


class AsteriskRuntimeError(RuntimeError):
    """Asterisk could not be installed, started or reached; the message says what to do."""


def rootfs_ready(rootfs: Path) -> bool:
    return (rootfs / "usr/sbin/asterisk").exists() and (rootfs / READY_FILE).exists()


def ensure_rootfs(rootfs: Path, log=print, mirror: str | None = None, step=None) -> None:
    """Build the rootfs with debootstrap if it is missing (~40 s, ~500 MB), record its Asterisk version
    and refuse any major but 22, and give it the Asterisk user. Idempotent, locked; a rootfs built
    before the record or the user gets them here, in place. ``step(text)`` is told each stage
    debootstrap reports (retrieving, unpacking, configuring …)."""
    if rootfs_ready(rootfs) and (rootfs / VERSION_FILE).exists():
        _check(rootfs, record=False)
        if _upgraded(rootfs):
            return
    if shutil.which("debootstrap") is None and not rootfs_ready(rootfs):
        raise AsteriskRuntimeError("debootstrap is not installed (apt-get install debootstrap)")
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    with open(rootfs.parent / ".rootfs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not rootfs_ready(rootfs):
            if not (rootfs / "usr/sbin/asterisk").exists():
                _build(rootfs, log, mirror, step)
            # else debootstrap finished before but the marker was not written: finish the fix-ups
            _fix_ownership(rootfs)
            (rootfs / READY_FILE).write_text("ok\n")
        _check(rootfs, record=True)
        ensure_asterisk_user(rootfs)


def _build(rootfs: Path, log, mirror: str | None, step=None) -> None:
    tmp = rootfs.with_name(rootfs.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"building Asterisk rootfs in {rootfs} (debootstrap sid, about a minute)…")
    # no mirror: debootstrap's own default; a site pins a dated snapshot with asterisk.debian_mirror
    proc = subprocess.Popen(["debootstrap", "--variant=minbase", f"--include={PACKAGES}", "sid", str(tmp),
                             *([mirror] if mirror else [])], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: collections.deque[str] = collections.deque(maxlen=60)
    for line in proc.stdout:
        tail.append(line)
        if step and line.startswith("I: "):     # debootstrap's progress lines
            step(line[3:].strip())
    if proc.wait() != 0:
        raise AsteriskRuntimeError(f"debootstrap failed ({proc.returncode}):\n{''.join(tail)[-4000:]}")
    _fix_ownership(tmp)
    # refused before it replaces anything: a sid that moved to another major keeps the old rootfs
    _check(tmp, record=True)
    if rootfs.exists():
        shutil.rmtree(rootfs)
    tmp.rename(rootfs)


def _fix_ownership(rootfs: Path) -> None:
    # Debian's own Asterisk directories belong to the rootfs's uid 101, another user on the host
    # (postgres here); our instances live in /srv/hotline and never use them
    for d in ASTERISK_DIRS:
        p = rootfs / d
        if p.exists():
            subprocess.run(["chown", "-R", "root:root", str(p)], check=True)


def asterisk_ids() -> tuple[int, int]:
    """(uid, gid) Asterisk runs as: the host's ASTERISK_USER and the group it shares with our daemons."""
    try:
        return pwd.getpwnam(ASTERISK_USER).pw_uid, grp.getgrnam(GROUP).gr_gid
    except KeyError:
        raise AsteriskRuntimeError(f"no user {ASTERISK_USER} or group {GROUP} on this host: run `hotline setup` "
                                   "(as root) once") from None


def _upgraded(rootfs: Path) -> bool:
    try:
        uid, gid = asterisk_ids()
    except AsteriskRuntimeError:
        return False
    return f"{ASTERISK_USER}:x:{uid}:{gid}:" in (rootfs / "etc/passwd").read_text()


def ensure_asterisk_user(rootfs: Path) -> None:
    """The unprivileged user Asterisk runs as: a system user on the host (file ownership) with the
    same numbers inside the rootfs (names for Asterisk). Idempotent; a rootfs moved to a host whose
    numbers differ gets this host's."""
    if subprocess.run(["getent", "group", GROUP], capture_output=True).returncode != 0:
        subprocess.run(["groupadd", "--system", GROUP], check=True)
    if subprocess.run(["getent", "passwd", ASTERISK_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--gid", GROUP, "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", "--comment", "12348 hotline Asterisk", ASTERISK_USER],
                       check=True)
    uid, gid = asterisk_ids()
    for name, line in (("passwd", f"{ASTERISK_USER}:x:{uid}:{gid}:12348 hotline Asterisk:/nonexistent:/usr/sbin/nologin"),
                       ("group", f"{GROUP}:x:{gid}:")):
        path = rootfs / "etc" / name
        key = (ASTERISK_USER if name == "passwd" else GROUP) + ":"
        lines = [entry for entry in path.read_text().splitlines() if not entry.startswith(key)]
        text = "\n".join([*lines, line]) + "\n"
        if text != path.read_text():
            tmp = path.with_name(name + ".hotline-tmp")
            tmp.write_text(text)
            tmp.chmod(0o644)
            tmp.replace(path)


def _check(rootfs: Path, record: bool) -> None:
    try:
        check_version(rootfs, record=record)
    except RootfsError as e:
        raise AsteriskRuntimeError(str(e)) from e


def module_dir(rootfs: Path) -> str:
    for cand in sorted((rootfs / "usr/lib").glob("*/asterisk/modules")) + [rootfs / "usr/lib/asterisk/modules"]:
        if (cand / "app_queue.so").exists():
            return "/" + str(cand.relative_to(rootfs))
    raise AsteriskRuntimeError(f"no Asterisk modules found under {rootfs}/usr/lib")


class AsteriskInstance:
    """One Asterisk process with its own config, spool and sockets inside the shared rootfs."""

    def __init__(self, cfg: HotlineConfig):
        self.cfg = cfg
        a = cfg.system.asterisk
        self.paths = InstancePaths(cfg.resolve(a.rootfs), a.instance)
        self.pidfile = cfg.state_dir / f"asterisk-{a.instance}.pid"
        self.logfile = cfg.state_dir / f"asterisk-{a.instance}.out"

    # ---- files
    def install(self, secrets: Secrets, log=print, progress=None) -> None:
        """``progress(done, total)``: the prompts synthesised so far (build_prompts)."""
        p = self.paths
        for d in (p.etc, p.sounds, p.moh, p.spool, p.monitor, p.log, p.log / "cdr-csv", p.run, p.lib,
                  p.spool / "prompt-inbox"):
            p.host(d).mkdir(parents=True, exist_ok=True)
        if self.cfg.system.asterisk.tls_port is not None:
            self._install_tls(log)
        moddir = module_dir(p.rootfs)
        missing = [m for m in self.cfg.system.asterisk.extra_modules if not p.host(f"{moddir}/{m}").exists()]
        if missing:
            raise AsteriskRuntimeError(f"asterisk.extra_modules: {', '.join(missing)} not in {moddir} of the rootfs")
        files = confgen.generate(self.cfg, secrets, p, moddir)
        self._check_custom_files(files)
        for name, text in files.items():
            dest = p.host(p.etc / name)
            tmp = dest.with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.chmod(tmp, 0o600 if name in confgen.SECRET_FILES else 0o644)
            tmp.replace(dest)
        self._install_custom_files(files)
        # supervisors' PINs for recording prompts from outside (hashes only, Asterisk's alone)
        pins = p.host(pins_path(p))
        tmp = pins.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(pins_file(self.cfg, secrets.prompt_pins))
        tmp.replace(pins)
        # the table must exist before Asterisk starts: a missing one costs an error per SIP request
        SipBlocklist(p.host(blocklist_path(p))).ensure()
        statuses = build_prompts(self.cfg, p.host(p.sounds), self.cfg.state_dir / "prompt-cache", progress)
        # app_queue plays announcements by language (sounds/<lang>/...): link our prompts in there
        for lang in self.cfg.ivr.languages:
            subprocess.run(["chroot", str(p.rootfs), "sh", "-c",
                            f'mkdir -p /usr/share/asterisk/sounds/{lang.code} && '
                            f'ln -sfn {p.sounds}/{lang.code} /usr/share/asterisk/sounds/{lang.code}/hl-{p.name}'],
                           check=True)
        placeholders = sum(1 for s in statuses if s.source == "placeholder")
        log(f"prompts: {len(statuses)} installed ({placeholders} placeholders awaiting recordings)")
        moh = p.host(p.moh / "hold.wav")
        if not moh.exists():
            # a calm, quiet chord: callers in queue hear that the line is alive
            subprocess.run(["sox", "-n", *SOX_OUT, str(moh), "synth", "8", "sine", "392", "sine", "494",
                            "sine", "587", "remix", "-", "tremolo", "0.5", "40", "vol", "0.15"], check=True)
        self._own()

    def _own(self) -> None:
        """The instance's files belong to Asterisk's user and our group: Asterisk writes its spool, logs,
        astdb and run files as that user; our daemons (root in development, the hotline user in
        production) read recordings, voicemail and CDRs and write the SIP blocklist through the group
        (setgid directories keep new files in it, Asterisk's umask 007 makes them group-writable)."""
        uid, gid = asterisk_ids()
        top = self.paths.host(self.paths.inner)
        for dirpath, dirnames, filenames in os.walk(top):
            for path, shared in ((dirpath, 0o2770), *((os.path.join(dirpath, n), None) for n in filenames)):
                if os.path.islink(path):
                    continue
                os.chown(path, uid, gid)
                mode = os.stat(path).st_mode & 0o777
                # secrets (manager.conf, pjsip.conf, keys/ and the TLS key) stay Asterisk's alone
                if mode & 0o077:
                    os.chmod(path, shared or (mode | 0o060) & 0o770)

    def _check_custom_files(self, files: dict[str, str]) -> None:
        """Before anything is written: an admin's file that would break the generated file it continues
        stops setup with what to fix, and the running configuration stays as it was."""
        found = confgen.existing_problems(self.paths.host(self.paths.etc), files)
        if found:
            raise AsteriskRuntimeError("the admin's Asterisk files need fixing:\n  " + "\n  ".join(
                f"{path}: {problem}" for path, problems in found.items() for problem in problems))

    def _install_custom_files(self, files: dict[str, str]) -> None:
        """The admin's files (confgen/custom.py): created once, then never written or deleted here."""
        for rel, (text, mode) in confgen.custom_files(files).items():
            dest = self.paths.host(self.paths.etc / rel)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)

    def _install_tls(self, log) -> None:
        """Asterisk's certificate and key, and the CA list of its TLS transport, into the chroot
        (Asterisk cannot read the state directory)."""
        try:
            tls = ensure_tls(self.cfg, log)
        except TlsError as e:
            raise AsteriskRuntimeError(f"asterisk.tls_port is set but no TLS certificate could be made: {e}") from e
        t = self.cfg.system.trunk
        ca_list = tls.ca_cert.read_text()
        if t.transport == "tls" and t.tls_ca_file:
            src = self.cfg.resolve(t.tls_ca_file)
            if not src.is_file():
                raise AsteriskRuntimeError(f"trunk.tls_ca_file: {src} does not exist")
            ca_list = src.read_text()
        keys = self.paths.host(self.paths.keys)
        keys.mkdir(parents=True, exist_ok=True)
        keys.chmod(0o700)
        for name, text, mode in (("asterisk.pem", tls.cert.read_text(), 0o644),
                                 ("asterisk.key", tls.key.read_text(), 0o600), ("ca.pem", ca_list, 0o644)):
            fd = os.open(keys / f"{name}.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            (keys / f"{name}.tmp").replace(keys / name)

    # ---- process
    def _cmd(self, *args: str) -> list[str]:
        # chroot needs root (CAP_SYS_CHROOT), then --userspec drops to Asterisk's user before exec:
        # Asterisk itself never holds a privilege (asterisk -U would start as root inside)
        uid, gid = asterisk_ids()
        return ["chroot", f"--userspec={uid}:{gid}", str(self.paths.rootfs), "/usr/sbin/asterisk",
                "-C", str(self.paths.conf_file), *args]

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, timeout: float = 60) -> None:
        if self.running():
            return
        self.cfg.state_dir.mkdir(parents=True, exist_ok=True)
        # a stale control socket from a killed instance would make -r talk to nobody
        for sock in ("asterisk.ctl", "asterisk.pid"):
            self.paths.host(self.paths.run / sock).unlink(missing_ok=True)
        out = open(self.logfile, "ab")
        _check(self.paths.rootfs, record=False)
        # no -g: a core dump would hold passwords and call audio (docs/security.md)
        # cores of its own (asterisk.cpus): taskset before the exec, so every thread Asterisk starts has them
        cpus = self.cfg.system.asterisk.cpus
        if cpus:
            self.cfg.system.asterisk.daemon_cpus(os.sched_getaffinity(0))   # our error, not taskset's
        pinned = ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []
        proc = subprocess.Popen([*pinned, *self._cmd("-f", "-n")], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, umask=0o007)
        self.pidfile.write_text(str(proc.pid))
        self.wait_booted(timeout, proc)

    def wait_booted(self, timeout: float = 60, proc: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise AsteriskRuntimeError(f"Asterisk exited with {proc.returncode}; see {self.logfile}")
            res = subprocess.run(self._cmd("-rx", "core waitfullybooted"), capture_output=True, text=True, timeout=30)
            if res.returncode == 0 and "fully booted" in res.stdout.lower():
                return
            time.sleep(0.3)
        raise AsteriskRuntimeError(f"Asterisk did not boot in {timeout:.0f}s; see {self.logfile}")

    def rx(self, command: str, timeout: float = 15) -> str:
        res = subprocess.run(self._cmd("-rx", command), capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise AsteriskRuntimeError(f"asterisk -rx {command!r} failed: {res.stderr.strip() or res.stdout.strip()}")
        return res.stdout

    def reload(self) -> None:
        self.rx("core reload")

    def stop(self, timeout: float = 15) -> None:
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return
        try:
            self.rx("core stop now", timeout=timeout)
        except (AsteriskRuntimeError, subprocess.TimeoutExpired):
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete this instance's files (tests' throwaway instances)."""
        for lang in self.cfg.ivr.languages:
            subprocess.run(["chroot", str(self.paths.rootfs), "rm", "-f",
                            f"/usr/share/asterisk/sounds/{lang.code}/hl-{self.paths.name}"], check=False)
        shutil.rmtree(self.paths.host(self.paths.inner), ignore_errors=True)

    def kill(self) -> None:
        """Hard kill (fault tests): no clean shutdown."""
        pid = self.pid()
        if pid is not None:
            os.killpg(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
