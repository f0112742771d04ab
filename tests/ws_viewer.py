"""A wallboard viewer reduced to its socket, for benches that hold hundreds of them in one process.

An aiohttp client per viewer costs a frame parser, a message object and a task wake-up per update; with
500 viewers in one Python process on the machine under test that reader's own work was the larger part of
the latency it measured (the last of 500 readers waited for the 499 before it). Here a viewer is a bare
socket: the HTTP upgrade, then WebSocket frames cut from the byte stream, each stamped with the kernel's
time of its arrival and the time the process read it. Pings are answered (the server's heartbeat would
close a silent viewer).
"""
from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time
from collections.abc import Callable

TEXT, CLOSE, PING = 0x1, 0x8, 0x9


class FrameCutter:
    """Server-to-client WebSocket frames (RFC 6455 §5.2; a server does not mask) from a byte stream fed
    read by read, after the HTTP response head. Gives (receive time, opcode, payload) per whole frame."""

    def __init__(self):
        self.buf = bytearray()
        self.head: bytes | None = None      # the HTTP response head, once read

    def feed(self, at: float, data: bytes) -> list[tuple[float, int, bytes]]:
        self.buf += data
        if self.head is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return []
            self.head = bytes(self.buf[:end])
            del self.buf[:end + 4]
        out, pos, buf = [], 0, self.buf
        while len(buf) - pos >= 2:
            op, n, start = buf[pos] & 0x0F, buf[pos + 1] & 0x7F, pos + 2
            if n == 126:
                if len(buf) - start < 2:
                    break
                n, start = struct.unpack_from("!H", buf, start)[0], start + 2
            elif n == 127:
                if len(buf) - start < 8:
                    break
                n, start = struct.unpack_from("!Q", buf, start)[0], start + 8
            if start + n > len(buf):
                break
            out.append((at, op, bytes(buf[start:start + n])))
            pos = start + n
        del buf[:pos]
        return out


def client_frame(op: int, payload: bytes = b"") -> bytes:
    """A client's frame: FIN, masked (RFC 6455 §5.3; a server closes on an unmasked one), under 126 bytes."""
    key = os.urandom(4)
    return bytes([0x80 | op, 0x80 | len(payload)]) + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


# the kernel's receive time of a socket's data (Linux, asm-generic/socket.h: SO_TIMESTAMPNS_OLD = 35, its
# control message the same number; a struct timespec of two 64-bit fields). Python's socket module
# does not name them.
SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("qq")


class RawViewer:
    """One viewer on a bare non-blocking socket, read with recvmsg: each read carries the kernel's time
    stamp of its data's arrival at the socket (for TCP, of the last segment the read took), as well as
    the time this process got to read it. On a machine shared with the stack the viewer process waits
    for a core too; the socket's time is what a browser on a machine of its own would have seen.

    ``on_frame(arrived, read, payload)`` gets each text frame as it is read; with ``keep_reads`` the reads
    are only stored, and ``frames()`` cuts them after the run (the lightest way to watch)."""

    def __init__(self, sock: socket.socket, on_frame: Callable[[float, float, bytes], None] | None = None,
                 keep_reads: bool = False):
        self.sock, self.on_frame, self.keep_reads = sock, on_frame, keep_reads
        self.reads: list[tuple[float, float, bytes]] = []
        self.unstamped = 0       # reads that came without the kernel's stamp (their read time stands in)
        self.cutter = FrameCutter()
        self.loop = asyncio.get_running_loop()
        self.closed = self.loop.create_future()
        self.loop.add_reader(sock.fileno(), self._readable)

    def write(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)       # a handful of bytes on an idle socket: never blocks
        except OSError:
            self._lost()

    def _readable(self) -> None:
        # one read per wake-up: the selector is level-triggered and calls again while data is left
        try:
            data, anc, _, _ = self.sock.recvmsg(1 << 16, socket.CMSG_SPACE(TIMESPEC.size))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._lost()
            return
        read_at = time.time()
        if not data:
            self._lost()
            return
        arrived = 0.0
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(cdata) >= TIMESPEC.size:
                sec, ns = TIMESPEC.unpack_from(cdata)
                arrived = sec + ns / 1e9
        if not arrived:
            # the kernel turns stamping on a moment after the first socket asks for it
            # (net_enable_timestamp's deferred work): the first reads may come without
            self.unstamped += 1
            arrived = read_at
        if self.keep_reads:
            self.reads.append((arrived, read_at, data))
            return
        for arr, op, payload in self.cutter.feed(arrived, data):
            self._frame(arr, read_at, op, payload)

    def _frame(self, arrived: float, read_at: float, op: int, payload: bytes) -> None:
        if op == TEXT:
            if self.on_frame is not None:
                self.on_frame(arrived, read_at, payload)
        elif op == PING:
            self.write(client_frame(0xA, payload))

    def _lost(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        if not self.closed.done():
            self.closed.set_result(None)

    @property
    def upgraded(self) -> bool:
        head = self.cutter.head if not self.keep_reads else (self.reads[0][2] if self.reads else b"")
        return bool(head) and head.startswith(b"HTTP/1.1 101")

    def frames(self, arrival: bool = True) -> list[tuple[float, bytes]]:
        """With ``keep_reads``: (time, payload) of each text frame, cut after the run; the time is the
        data's arrival at the socket, or with ``arrival=False`` when this process read it."""
        cutter = FrameCutter()
        return [(at, p) for arrived, read_at, data in self.reads
                for at, op, p in cutter.feed(arrived if arrival else read_at, data) if op == TEXT]

    def close(self) -> None:
        if not self.closed.done():
            self.write(client_frame(CLOSE, struct.pack("!H", 1000)))
            self._lost()
        self.sock.close()


async def open_viewers(host: str, port: int, token: str, n: int, **kw) -> list[RawViewer]:
    """``n`` viewers on /ws with a bearer token (``upgraded`` tells whether the server took each)."""
    loop = asyncio.get_running_loop()
    request = (f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n")
    viewers = []
    for _ in range(n):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # before connecting: data that comes before the option is set carries no time stamp
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        await loop.sock_sendall(sock, f"{request}Sec-WebSocket-Key: {key}\r\n\r\n".encode())
        viewers.append(RawViewer(sock, **kw))
    return viewers
