"""The broadcaster process (dashboard/broadcast.py) on real TCP connections handed over as the controller
hands them: a browser's ping is answered, its Close echoed, a frame that breaks RFC 6455 closes the
connection with the right code, a viewer that answers no ping is dropped and the controller told, and
the end of a login closes with its code after what was queued. The frame parser on its own too."""
from __future__ import annotations

import asyncio
import os
import socket
import struct

import pytest

from dashboard.broadcast import Link, ProtocolError, client_frames, frame, text_frame


def masked(opcode: int, payload: bytes, key: bytes = b"\x01\x02\x03\x04", fin: bool = True) -> bytes:
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


def test_whole_frames_are_taken_and_a_partial_one_waits():
    buf = bytearray(masked(0x9, b"hi") + masked(0x1, b"x" * 300) + masked(0x8, struct.pack("!H", 1000))[:3])
    assert client_frames(buf) == [(0x9, b"hi"), (0x1, b"")]
    assert buf == masked(0x8, struct.pack("!H", 1000))[:3]


def test_frames_that_break_the_protocol_are_refused_with_their_codes():
    cases = [(bytes([0x81, 0x01]) + b"a", 1002),                       # not masked
             (bytes([0xC1, 0x81]) + b"\0\0\0\0a", 1002),               # a reserved bit: no extension agreed
             (masked(0x9, b"p" * 126), 1002),                          # a control frame over 125 bytes
             (masked(0x8, b"", fin=False), 1002),                      # a fragmented control frame
             (masked(0x2, b"z" * 70_000), 1009)]                       # more than a desk ever sends
    for data, code in cases:
        with pytest.raises(ProtocolError) as e:
            client_frames(bytearray(data))
        assert e.value.code == code, data[:4]


class Harness:
    """A listening socket whose accepted connections go to a real broadcaster through a Link."""

    def __init__(self, heartbeat: float = 20.0, write_limit: int = 1 << 20):
        self.gone: list[int] = []
        self.lost = 0
        self.link = Link(self.gone.append, self._lost, write_limit, heartbeat)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.ids = iter(range(1, 1000))

    def _lost(self) -> None:
        self.lost += 1

    async def viewer(self, audience: int = 1, snapshot: str = "hello"):
        loop = asyncio.get_running_loop()
        port = self.listener.getsockname()[1]
        connecting = asyncio.ensure_future(asyncio.open_connection("127.0.0.1", port))
        conn, _ = await loop.sock_accept(self.listener)
        reader, writer = await connecting
        vid = next(self.ids)
        self.link.add(vid, audience, os.dup(conn.fileno()), text_frame(snapshot))
        conn.close()           # the controller's copy goes, as aiohttp's does
        return vid, reader, writer

    async def close(self) -> None:
        await self.link.close()
        self.listener.close()


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await asyncio.wait_for(reader.readexactly(2), 10)
    assert not b1 & 0x80, "a server's frames are not masked"
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    return b0 & 0x0F, await asyncio.wait_for(reader.readexactly(n), 10)


async def test_pings_are_answered_a_close_is_echoed_and_updates_follow_the_snapshot():
    h = Harness()
    try:
        vid, reader, writer = await h.viewer(snapshot="snap")
        h.link.data(1, text_frame("u1") + text_frame("u2"))
        h.link.data(2, text_frame("not yours"))
        assert [await read_frame(reader) for _ in range(3)] == [(1, b"snap"), (1, b"u1"), (1, b"u2")]
        writer.write(masked(0x9, b"are you there"))
        assert await read_frame(reader) == (0xA, b"are you there")
        writer.write(masked(0x8, struct.pack("!H", 1001) + b"bye"))
        assert await read_frame(reader) == (0x8, struct.pack("!H", 1001))
        assert await asyncio.wait_for(reader.read(), 10) == b""      # then the connection ends
        for _ in range(100):
            if h.gone:
                break
            await asyncio.sleep(0.05)
        assert h.gone == [vid]
        writer.close()
    finally:
        await h.close()


async def test_an_unmasked_frame_closes_with_1002():
    h = Harness()
    try:
        _, reader, writer = await h.viewer()
        assert await read_frame(reader) == (1, b"hello")
        writer.write(bytes([0x81, 0x01]) + b"a")
        op, payload = await read_frame(reader)
        assert op == 0x8 and struct.unpack("!H", payload[:2])[0] == 1002
        writer.close()
    finally:
        await h.close()


async def test_a_viewer_that_answers_no_ping_is_dropped_and_one_that_does_stays():
    h = Harness(heartbeat=0.3)
    try:
        silent, silent_reader, silent_writer = await h.viewer()
        alive, reader, writer = await h.viewer()

        async def answer():
            while True:
                op, payload = await read_frame(reader)
                if op == 0x9:
                    writer.write(masked(0xA, payload))
        task = asyncio.create_task(answer())
        for _ in range(100):
            if h.gone:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)     # three more heartbeats: the one that answers is still there
        assert h.gone == [silent]
        assert not task.done()
        task.cancel()
        for w in (silent_writer, writer):
            w.close()
    finally:
        await h.close()


async def test_the_end_of_a_login_closes_after_what_was_queued_and_the_controller_going_ends_all():
    h = Harness()
    try:
        vid, reader, writer = await h.viewer()
        _, other_reader, other_writer = await h.viewer()
        h.link.data(1, text_frame("last"))
        h.link.end(vid, 4401, "logged out")
        assert [await read_frame(reader) for _ in range(3)] == \
            [(1, b"hello"), (1, b"last"), (0x8, struct.pack("!H", 4401) + b"logged out")]
        writer.write(masked(0x8, struct.pack("!H", 4401)))
        assert await asyncio.wait_for(reader.read(), 10) == b""
        assert [await read_frame(other_reader) for _ in range(2)] == [(1, b"hello"), (1, b"last")]
        proc = h.link.proc
        await h.link.close()              # the controller stops: its broadcaster and viewers go too
        assert await asyncio.wait_for(other_reader.read(), 10) == b""
        assert proc.returncode == 0 and h.lost == 0
        for w in (writer, other_writer):
            w.close()
    finally:
        await h.close()


def test_frame_lengths():
    assert frame(0xA, b"") == b"\x8a\x00"
    assert text_frame("a") == b"\x81\x01a"
