"""The live sockets' broadcaster: a process of its own that writes every wallboard and desk update to
the viewers' connections, so that the controller's loop, which follows Asterisk and writes the records,
does one small write per update and audience instead of one system call per viewer (500 at a command
center's peak).

The controller's LiveHub (dashboard/live.py) authenticates a viewer and completes the WebSocket
handshake, then hands the connection over: the socket itself (SCM_RIGHTS) and the viewer's snapshot.
From then on this process alone reads and writes it: updates, heartbeat pings, answers to the browser's
pings and Close, the end of a login, and cutting off a viewer that stops reading. Everything comes on one
ordered control channel (a SOCK_SEQPACKET socketpair), so a viewer never gets an update before its
snapshot, and each message is written to a viewer in one write.

Control messages, each one packet (controller -> broadcaster):
    A viewer audience        + the socket (SCM_RIGHTS): a new viewer of that audience
    S viewer       bytes     a slice of that viewer's snapshot frame, sent right after its A: before any D
    D audience     bytes     frames for every viewer of that audience
    E viewer code  reason    end that viewer: a Close frame after what is queued, then the connection
and back (broadcaster -> controller):
    G viewer                 that viewer's connection has ended

The process has no state the controller cannot rebuild: if it dies, the viewers' connections drop and
the desks reconnect to a fresh snapshot; if the controller goes, this process sees the channel close and
exits. Only the standard library, so it starts in a few milliseconds.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Callable

log = logging.getLogger("hotline.broadcast")

PACKET = 64 << 10         # largest control packet: well under the kernel's socket buffer for a SOCK_SEQPACKET
HEAD = struct.Struct("!cI")               # kind, viewer or audience
END = struct.Struct("!cIH")               # E, viewer, close code
MAX_CLIENT_FRAME = 64 << 10               # desks send nothing we act on; anything larger is refused (1009)


def text_frame(text: str) -> bytes:
    """One unfragmented text frame as a server sends it (RFC 6455 §5.2: FIN, opcode 1, no mask), built
    once per update and audience. The sockets negotiate no extension (no permessage-deflate)."""
    return frame(0x1, text.encode())


def frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def close_frame(code: int, reason: str = "") -> bytes:
    return frame(0x8, struct.pack("!H", code) + reason.encode()[:120])


class ProtocolError(Exception):
    def __init__(self, code: int, why: str):
        super().__init__(why)
        self.code = code


def client_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Take the whole frames a browser sent off the front of ``buf`` (RFC 6455 §5.2): (opcode, payload)
    each, the payload unmasked for control frames and left out (b"") for data frames, which we do not act
    on; a partial frame stays in ``buf``. A client's frames must be masked (§5.1)."""
    out: list[tuple[int, bytes]] = []
    while len(buf) >= 2:
        b0, b1 = buf[0], buf[1]
        if b0 & 0x70:
            raise ProtocolError(1002, "reserved bits set: no extension was negotiated")
        if not b1 & 0x80:
            raise ProtocolError(1002, "a client's frames must be masked")
        opcode, n, at = b0 & 0x0F, b1 & 0x7F, 2
        if opcode & 0x8 and (n > 125 or not b0 & 0x80):
            raise ProtocolError(1002, "a control frame must be whole and at most 125 bytes")
        if n == 126:
            if len(buf) < 4:
                break
            n, at = struct.unpack_from("!H", buf, 2)[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, at = struct.unpack_from("!Q", buf, 2)[0], 10
        if n > MAX_CLIENT_FRAME:
            raise ProtocolError(1009, "message too big")
        if len(buf) < at + 4 + n:
            break
        data = b""
        if opcode & 0x8:     # only control frames are read; the desk's own messages are not acted on
            key = buf[at:at + 4]
            data = bytes(c ^ key[i % 4] for i, c in enumerate(buf[at + 4:at + 4 + n]))
        del buf[:at + 4 + n]
        out.append((opcode, data))
    return out


class Viewer:
    """One handed-over connection: what is still to be written, and whether it answers our pings."""
    __slots__ = ("id", "audience", "sock", "out", "inbuf", "closing", "pinged")

    def __init__(self, vid: int, audience: int, sock: socket.socket):
        self.id, self.audience, self.sock = vid, audience, sock
        self.out = bytearray()      # unsent bytes (the socket's buffer was full)
        self.inbuf = bytearray()
        self.closing = False        # our Close frame is queued: nothing may follow it
        self.pinged = False         # a ping went out and nothing has come back since


class Broadcaster:
    def __init__(self, control: socket.socket, write_limit: int, heartbeat: float):
        self.control = control
        self.write_limit, self.heartbeat = write_limit, heartbeat
        self.viewers: dict[int, Viewer] = {}
        self.audiences: dict[int, set[Viewer]] = {}
        self.untold: deque[bytes] = deque()     # "gone" packets not yet sent to the controller
        self.loop = asyncio.get_running_loop()
        self.done = asyncio.Event()

    async def run(self) -> None:
        self.control.setblocking(False)
        self.loop.add_reader(self.control.fileno(), self._on_control)
        beat = self.loop.create_task(self._beat())
        try:
            await self.done.wait()
        finally:
            beat.cancel()
            for v in list(self.viewers.values()):
                self._drop(v, tell=False)

    # ---- the controller's channel
    def _on_control(self) -> None:
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.control, PACKET + 64, 1)
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            if not data:        # the controller has gone: so do its viewers
                self.loop.remove_reader(self.control.fileno())
                self.done.set()
                return
            try:
                self._handle(data, fds)
            except Exception:   # a bad packet is the controller's bug: log it, keep the other viewers
                log.exception("bad control packet %r", data[:16])
                for fd in fds:
                    os.close(fd)

    def _handle(self, data: bytes, fds: list[int]) -> None:
        kind, n = HEAD.unpack_from(data)
        if kind == b"D":
            payload = data[HEAD.size:]
            for v in list(self.audiences.get(n, ())):
                if not v.closing:
                    self._write(v, payload)
        elif kind == b"A":
            (audience,) = struct.unpack_from("!I", data, HEAD.size)
            sock = socket.socket(fileno=fds[0])
            sock.setblocking(False)
            v = Viewer(n, audience, sock)
            self.viewers[n] = v
            self.audiences.setdefault(audience, set()).add(v)
            self.loop.add_reader(sock.fileno(), self._on_readable, v)
        elif kind == b"S":
            v = self.viewers.get(n)
            if v is not None:
                self._write(v, data[HEAD.size:])
        elif kind == b"E":
            _, vid, code = END.unpack_from(data)
            v = self.viewers.get(vid)
            if v is not None:
                self._close(v, code, data[END.size:].decode(errors="replace"))
        else:
            raise ValueError(f"unknown kind {kind!r}")

    def _tell_gone(self, v: Viewer) -> None:
        # kept in order while the controller's end is full, so it never keeps a viewer that has gone
        if not self.untold:
            self.loop.call_soon(self._tell)
        self.untold.append(HEAD.pack(b"G", v.id))

    def _tell(self) -> None:
        while self.untold:
            try:
                self.control.send(self.untold[0])
            except BlockingIOError:
                self.loop.call_later(0.05, self._tell)
                return
            except OSError:     # the controller is going; it forgets its viewers anyway
                self.untold.clear()
                return
            self.untold.popleft()

    # ---- one viewer
    def _write(self, v: Viewer, data: bytes) -> None:
        if not v.out:
            try:
                sent = v.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._drop(v)
                return
            if sent == len(data):
                return
            data = data[sent:]
            self.loop.add_writer(v.sock.fileno(), self._on_writable, v)
        v.out += data
        if len(v.out) > self.write_limit:
            # a Close frame would wait behind the unsent megabyte for a reader that does not read: the
            # connection is dropped instead (the desk reconnects and gets a fresh snapshot)
            log.warning("viewer %d is not reading; disconnecting it", v.id)
            self._drop(v)

    def _on_writable(self, v: Viewer) -> None:
        try:
            sent = v.sock.send(v.out)
        except BlockingIOError:
            return
        except OSError:
            self._drop(v)
            return
        del v.out[:sent]
        if not v.out:
            self.loop.remove_writer(v.sock.fileno())
            if v.closing:
                self._finish_close(v)

    def _on_readable(self, v: Viewer) -> None:
        try:
            data = v.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(v)
            return
        v.pinged = False
        v.inbuf += data
        try:
            frames = client_frames(v.inbuf)
        except ProtocolError as e:
            v.inbuf.clear()
            self._close(v, e.code, str(e))
            return
        for opcode, payload in frames:
            if opcode == 0x8:          # the browser closes: answer with its code, then end the connection
                if v.closing:
                    self._drop(v)
                    return
                code = payload[:2] if len(payload) >= 2 else b""
                self._write(v, frame(0x8, code))
                v.closing = True
                if not v.out:
                    self._finish_close(v)
                return
            if opcode == 0x9 and not v.closing:
                self._write(v, frame(0xA, payload))

    def _close(self, v: Viewer, code: int, reason: str) -> None:
        if v.closing:
            return
        self._write(v, close_frame(code, reason))
        v.closing = True
        if v.id in self.viewers and not v.out:
            self._finish_close(v)

    def _finish_close(self, v: Viewer) -> None:
        # our Close is out: stop sending, and give the browser a moment to answer before the connection goes
        try:
            v.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.loop.call_later(2, self._drop, v)

    def _drop(self, v: Viewer, tell: bool = True) -> None:
        if self.viewers.pop(v.id, None) is None:
            return
        members = self.audiences.get(v.audience)
        if members is not None:
            members.discard(v)
            if not members:
                del self.audiences[v.audience]
        fd = v.sock.fileno()
        if fd >= 0:
            self.loop.remove_reader(fd)
            self.loop.remove_writer(fd)
        v.sock.close()
        if tell:
            self._tell_gone(v)

    async def _beat(self) -> None:
        """A ping to every viewer each ``heartbeat`` seconds; one that answered nothing since the last is
        gone (a desk PC switched off without closing its connections)."""
        ping = frame(0x9, b"")
        while True:
            await asyncio.sleep(self.heartbeat)
            for v in list(self.viewers.values()):
                if v.closing:
                    continue
                if v.pinged:
                    log.info("viewer %d answered no ping; dropping it", v.id)
                    self._drop(v)
                else:
                    v.pinged = True
                    self._write(v, ping)


class Link:
    """The controller's end of the channel: starts the broadcaster, sends it packets in order (queued
    while its socket buffer is full, so the controller's loop never blocks on it), and hears which
    viewers have gone. A broadcaster that dies takes its viewers with it (``on_lost``); the next viewer
    starts a new one."""

    def __init__(self, on_gone: Callable[[int], None], on_lost: Callable[[], None],
                 write_limit: int, heartbeat: float):
        self.on_gone, self.on_lost = on_gone, on_lost
        self.write_limit, self.heartbeat = write_limit, heartbeat
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self._outbox: deque[tuple[bytes, int | None]] = deque()

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # -I: stdlib only, and the script's folder (dashboard/) is not put on the import path
            self.proc = subprocess.Popen(
                [sys.executable, "-I", os.path.abspath(__file__), "--fd", str(theirs.fileno()),
                 "--write-limit", str(self.write_limit), "--heartbeat", str(self.heartbeat)],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        ours.setblocking(False)
        asyncio.get_running_loop().add_reader(ours.fileno(), self._on_readable)
        self.sock = ours
        log.info("broadcaster started (pid %d)", self.proc.pid)
        return ours

    # ---- what the hub says
    def add(self, viewer: int, audience: int, fd: int, snapshot: bytes) -> None:
        """Hand a viewer's connection over (``fd`` is ours to give: it is closed once sent), with the
        snapshot it gets before any update."""
        if self.sock is None:
            self._start()
        self._send(HEAD.pack(b"A", viewer) + struct.pack("!I", audience), fd)
        for i in range(0, len(snapshot), PACKET):
            self._send(HEAD.pack(b"S", viewer) + snapshot[i:i + PACKET])

    def data(self, audience: int, frames: bytes) -> None:
        for i in range(0, len(frames), PACKET):
            self._send(HEAD.pack(b"D", audience) + frames[i:i + PACKET])

    def end(self, viewer: int, code: int, reason: str) -> None:
        self._send(END.pack(b"E", viewer, code) + reason.encode()[:120])

    def _send(self, packet: bytes, fd: int | None = None) -> None:
        if self.sock is None:        # no broadcaster (it died): nobody to send to
            if fd is not None:
                os.close(fd)
            return
        if not self._outbox and self._try(packet, fd):
            return
        if not self._outbox:
            asyncio.get_running_loop().add_writer(self.sock.fileno(), self._drain)
        self._outbox.append((packet, fd))

    def _try(self, packet: bytes, fd: int | None) -> bool:
        assert self.sock is not None
        try:
            if fd is None:
                self.sock.send(packet)
            else:
                socket.send_fds(self.sock, [packet], [fd])
                os.close(fd)
        except BlockingIOError:
            return False
        except OSError:
            self._lost()
            return True
        return True

    def _drain(self) -> None:
        while self._outbox and self.sock is not None:
            packet, fd = self._outbox[0]
            if not self._try(packet, fd):
                return
            if self._outbox:
                self._outbox.popleft()
        if self.sock is not None:
            asyncio.get_running_loop().remove_writer(self.sock.fileno())

    def _on_readable(self) -> None:
        while self.sock is not None:
            try:
                data = self.sock.recv(64)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                log.error("the broadcaster has gone (exit %s); its viewers will reconnect",
                          self.proc.poll() if self.proc else None)
                self._lost()
                return
            kind, viewer = HEAD.unpack_from(data)
            if kind == b"G":
                self.on_gone(viewer)

    def _detach(self) -> socket.socket | None:
        sock, self.sock = self.sock, None
        if sock is not None:
            loop = asyncio.get_running_loop()
            loop.remove_reader(sock.fileno())
            loop.remove_writer(sock.fileno())
            sock.close()
            for _, fd in self._outbox:
                if fd is not None:
                    os.close(fd)
            self._outbox.clear()
        return sock

    def _lost(self) -> None:
        if self._detach() is None:
            return
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:     # alive but deaf: it cannot be trusted with the viewers
                proc.kill()
            proc.wait()
        self.on_lost()

    async def close(self) -> None:
        """At the controller's stop: the broadcaster sees its channel close and exits with its viewers."""
        proc, self.proc = self.proc, None
        if self._detach() is not None and proc is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(proc.wait), 5)
            except asyncio.TimeoutError:
                proc.kill()
                await asyncio.to_thread(proc.wait)

async def _main(fd: int, write_limit: int, heartbeat: float) -> None:
    control = socket.socket(fileno=fd)
    await Broadcaster(control, write_limit, heartbeat).run()


def main() -> None:
    ap = argparse.ArgumentParser(description="the live sockets' broadcaster (started by the controller)")
    ap.add_argument("--fd", type=int, required=True, help="the control channel (a SOCK_SEQPACKET socket)")
    ap.add_argument("--write-limit", type=int, default=1 << 20)
    ap.add_argument("--heartbeat", type=float, default=20.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_main(args.fd, args.write_limit, args.heartbeat))


if __name__ == "__main__":
    main()
