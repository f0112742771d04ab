"""What Asterisk's AMI session threads are doing, sampled from /proc (a diagnosis for issue 22 §3).

Asterisk 22's manager runs one thread per AMI session: it sleeps in poll() on the session's socket
until a signal says events are queued, then writes them. When events reach the controller seconds
after Asterisk stamped them, this tells whether that thread was asleep in poll() (not woken), runnable
but waiting for a core, blocked on a lock (futex), or blocked writing (socket buffer full).

The session threads are found by the socket they poll: a thread in poll()/ppoll() has its pollfd
array's address in /proc/<pid>/task/<tid>/syscall; the fd is read from /proc/<pid>/mem and matched,
by socket inode and TCP port (/proc/net/tcp), to the client process's connections to the AMI port.
Needs root (or ptrace rights over Asterisk). Nothing here changes Asterisk."""
from __future__ import annotations

import contextlib
import os
import re
import struct
import threading
import time
from pathlib import Path

POLL_SYSCALLS = {7, 271}          # poll, ppoll (x86-64)
SOCKET = re.compile(r"socket:\[(\d+)\]")


def _tcp_table() -> list[tuple[int, int, int]]:
    """(local port, remote port, inode) of every TCP socket in this network namespace."""
    out = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(name).read_text().splitlines()[1:]:
                f = line.split()
                out.append((int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16), int(f[9])))
    return out


def _socket_inodes(pid: int) -> dict[int, int]:
    """fd -> socket inode of a process."""
    out = {}
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                m = SOCKET.match(os.readlink(f"/proc/{pid}/fd/{fd}"))
                if m:
                    out[int(fd)] = int(m.group(1))
    return out


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def session_threads(ast_pid: int, ami_port: int, client_pid: int) -> dict[int, int]:
    """tid of each Asterisk thread polling an AMI socket of ``client_pid`` -> the client's local port."""
    tcp = _tcp_table()
    client_inodes = set(_socket_inodes(client_pid).values())
    client_ports = {lp for lp, rp, ino in tcp if rp == ami_port and ino in client_inodes}
    server_inode_port = {ino: rp for lp, rp, ino in tcp if lp == ami_port and rp in client_ports}
    ast_fds = {fd: server_inode_port[ino] for fd, ino in _socket_inodes(ast_pid).items() if ino in server_inode_port}
    found: dict[int, int] = {}
    with open(f"/proc/{ast_pid}/mem", "rb", buffering=0) as mem:
        for tid in os.listdir(f"/proc/{ast_pid}/task"):
            f = _read(f"/proc/{ast_pid}/task/{tid}/syscall").split()
            if len(f) < 3 or not f[0].isdigit() or int(f[0]) not in POLL_SYSCALLS:
                continue
            addr, nfds = int(f[1], 16), int(f[2], 16)
            if not 0 < nfds <= 8:
                continue
            with contextlib.suppress(OSError, ValueError):
                mem.seek(addr)
                raw = mem.read(8 * nfds)
                for i in range(nfds):
                    fd = struct.unpack_from("i", raw, 8 * i)[0]
                    if fd in ast_fds:
                        found[int(tid)] = ast_fds[fd]
    return found


def _cpu_by_process() -> dict[str, int]:
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            stat = _read(f"/proc/{pid}/stat")
            if stat:
                comm = stat[stat.find("(") + 1:stat.rfind(")")]
                f = stat.rsplit(")", 1)[1].split()
                out[f"{comm}:{pid}"] = int(f[11]) + int(f[12])
    return out


def _wchar(ast_pid: int, tid: int) -> int:
    for line in _read(f"/proc/{ast_pid}/task/{tid}/io").splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


class AmiThreadWatch(threading.Thread):
    """Samples every ``every`` s, with the wall clock (to compare with AMI time stamps): each session
    thread's state, kernel wait channel and CPU ticks, and how many of Asterisk's threads and of the
    machine's tasks are runnable. ``events`` names the session that writes the most (the events')."""

    def __init__(self, ast_pid: int, ami_port: int, client_pid: int, every: float = 0.01):
        super().__init__(daemon=True, name="ami-thread-watch")
        self.ast_pid, self.ami_port, self.client_pid, self.every = ast_pid, ami_port, client_pid, every
        self.threads: dict[int, str] = {}          # tid -> "events" / "actions"
        self.samples: list[tuple] = []              # (wall time, tid, state, wchan, cpu ticks)
        self.running: list[tuple[float, int, int]] = []   # (wall time, Asterisk threads R, machine tasks R)
        self.stacks: dict[str, str] = {}            # wchan -> one kernel stack seen with it
        self.cpu: list[tuple[float, dict[str, int]]] = []   # every second: CPU ticks per process (comm:pid)
        self.stop = threading.Event()

    def identify(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = session_threads(self.ast_pid, self.ami_port, self.client_pid)
            if len(set(found.values())) >= 2:
                before = {t: _wchar(self.ast_pid, t) for t in found}
                time.sleep(3)
                wrote = sorted(found, key=lambda t: _wchar(self.ast_pid, t) - before[t], reverse=True)
                self.threads = {t: ("events" if i == 0 else "actions") for i, t in enumerate(wrote)}
                return
            time.sleep(0.5)
        raise RuntimeError(f"AMI session threads not found (found {found})")

    def run(self) -> None:
        ast = self.ast_pid
        tids = list(self.threads)
        n = 0
        while not self.stop.wait(self.every):
            now = time.time()
            for tid in tids:
                stat = _read(f"/proc/{ast}/task/{tid}/stat")
                if not stat:
                    continue
                f = stat.rsplit(")", 1)[1].split()
                state, ticks = f[0], int(f[11]) + int(f[12])
                wchan = _read(f"/proc/{ast}/task/{tid}/wchan") if state != "R" else ""
                if state != "R" and wchan and wchan not in self.stacks and not wchan.startswith("poll_"):
                    self.stacks[wchan] = _read(f"/proc/{ast}/task/{tid}/stack")
                self.samples.append((now, tid, state, wchan, ticks))
            n += 1
            if n % 5 == 0:       # every 50 ms: who is runnable
                r = 0
                with contextlib.suppress(OSError):
                    for t in os.listdir(f"/proc/{ast}/task"):
                        s = _read(f"/proc/{ast}/task/{t}/stat")
                        if s and s.rsplit(")", 1)[1].split()[0] == "R":
                            r += 1
                machine = int(_read("/proc/loadavg").split()[3].split("/")[0] or 0)
                self.running.append((now, r, machine))
            if n % 100 == 0:
                self.cpu.append((now, _cpu_by_process()))

    def boost(self, policy: str) -> None:
        """An experiment, not a setting: give the events' session thread a better place in line for a
        core. "fifo": SCHED_FIFO 10 (it preempts every ordinary task when woken); "nice-N": nice -N."""
        tid = next(t for t, k in self.threads.items() if k == "events")
        if policy == "fifo":
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(10))
        elif policy.startswith("nice-"):
            os.setpriority(os.PRIO_PROCESS, tid, -int(policy[5:]))
        elif policy.startswith("controller-nice-"):   # and the controller's threads too
            self.boost("fifo")
            for t in os.listdir(f"/proc/{self.client_pid}/task"):
                os.setpriority(os.PRIO_PROCESS, int(t), -int(policy[16:]))
        elif policy != "none":
            raise ValueError(f"unknown policy {policy!r}")

    def dump(self) -> dict:
        return {"threads": {str(t): k for t, k in self.threads.items()}, "samples": self.samples,
                "running": self.running, "stacks": self.stacks, "cpu": self.cpu}


def episodes(timeline: list[tuple[float, float]], late: float = 0.3, gap: float = 1.0) -> list[tuple[float, float, int, float]]:
    """Late events grouped: (first event's stamp, last arrival, events, worst lateness s), from
    (arrival, Asterisk's stamp) pairs."""
    out: list[list] = []
    for arrived, at in sorted(timeline, key=lambda x: x[1]):
        if arrived - at < late:
            continue
        if out and at - out[-1][1] < gap:
            e = out[-1]
            e[1], e[2], e[3] = max(e[1], arrived), e[2] + 1, max(e[3], arrived - at)
        else:
            out.append([at, arrived, 1, arrived - at])
    return [tuple(e) for e in out]


def explain(watch: dict, timeline: list[tuple[float, float]], late: float = 0.3) -> list[str]:
    """For each episode of late events, what the session threads were doing meanwhile."""
    from collections import Counter
    names = {int(t): k for t, k in watch["threads"].items()}
    lines = []
    for start, end, n, worst in episodes(timeline, late):
        lines.append(f"episode {time.strftime('%H:%M:%S', time.localtime(start))}.{int(start % 1 * 1000):03d} "
                     f"+{end - start:.2f} s: {n} events late, worst {worst * 1000:.0f} ms")
        for tid, name in names.items():
            ss = [s for s in watch["samples"] if s[1] == tid and start <= s[0] <= end]
            if not ss:
                continue
            states = Counter(f"{s[2]}:{s[3] or '-'}" for s in ss)
            cpu = ss[-1][4] - ss[0][4]
            lines.append(f"  {name:7} {len(ss)} samples, {cpu} CPU ticks: "
                         + ", ".join(f"{k} {v}" for k, v in states.most_common(5)))
        rr = [r for r in watch["running"] if start <= r[0] <= end]
        if rr:
            lines.append(f"  runnable: Asterisk threads max {max(r[1] for r in rr)}, "
                         f"machine max {max(r[2] for r in rr)} mean {sum(r[2] for r in rr) / len(rr):.1f}")
    return lines
