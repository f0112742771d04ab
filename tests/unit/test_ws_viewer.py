"""The benches' bare WebSocket viewer cuts frames from a byte stream however the reads split them, and
against the controller's own frame encoder (dashboard/live.py text_frame) over a real socket."""
from __future__ import annotations

import asyncio
import time

from dashboard.live import text_frame
from tests.ws_viewer import PING, TEXT, FrameCutter, client_frame, open_viewers

HEAD = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"


def _stream() -> tuple[bytes, list[str]]:
    texts = ["short", "x" * 200, "长" * 30000]          # the three length forms: 7-bit, 16-bit, 64-bit
    return HEAD + b"".join(text_frame(t) for t in texts) + bytes([0x89, 2]) + b"hi", texts


def test_cuts_frames_split_anywhere():
    data, texts = _stream()
    for size in (1, 2, 3, 7, 125, 4096, len(data)):
        cutter, got = FrameCutter(), []
        for i in range(0, len(data), size):
            got += cutter.feed(float(i), data[i:i + size])
        assert cutter.head.startswith(b"HTTP/1.1 101")
        assert [(op, p) for _, op, p in got] == [(TEXT, t.encode()) for t in texts] + [(PING, b"hi")]
        # a frame's time is the read that completed it
        assert got[-1][0] == float((len(data) - 1) // size * size)


def test_client_frame_is_masked():
    f = client_frame(0xA, b"hi")
    assert f[0] == 0x8A and f[1] == 0x80 | 2
    key = f[2:6]
    assert bytes(b ^ key[i % 4] for i, b in enumerate(f[6:])) == b"hi"


def test_viewer_over_a_socket_answers_pings_and_stamps_arrival():
    async def run():
        got_server: list[bytes] = []
        done = asyncio.Event()

        async def server(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            data, texts = _stream()
            # a frame at a time, apart: the kernel turns its stamping on a moment after the first ask
            # (deferred work), so the first reads may come unstamped, not the later ones
            cut = [len(HEAD)] + [len(HEAD) + sum(len(text_frame(t)) for t in texts[:i + 1]) for i in range(len(texts))]
            for a, b in zip([0] + cut, cut + [len(data)]):
                writer.write(data[a:b])
                await writer.drain()
                await asyncio.sleep(0.3)
            got_server.append(await reader.readexactly(8))     # the pong: 2 head bytes, key, 2 payload bytes
            done.set()
            writer.close()

        srv = await asyncio.start_server(server, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        frames: list[tuple[float, float, bytes]] = []
        before = time.time()
        (v,) = await open_viewers("127.0.0.1", port, "t", 1, on_frame=lambda a, r, p: frames.append((a, r, p)))
        await asyncio.wait_for(done.wait(), 5)
        await asyncio.wait_for(v.closed, 5)
        v.close()
        srv.close()
        return got_server[0], frames, v, before

    pong, frames, v, before = asyncio.run(run())
    assert v.upgraded and v.unstamped < 4
    assert [p.decode() for _, _, p in frames] == _stream()[1]
    # a frame's time is the kernel's arrival stamp, or the read time where the read had none; the
    # last one is stamped, and before this process read it
    assert all(before <= arrived <= read_at for arrived, read_at, _ in frames), [(before, a, r) for a, r, _ in frames]
    assert frames[-1][0] < frames[-1][1]
    assert pong[0] == 0x8A and bytes(b ^ pong[2:6][i % 4] for i, b in enumerate(pong[6:])) == b"hi"
