"""The AudioSocket wire protocol (Asterisk chan_audiosocket / app_audiosocket): a 3-byte header
(type, big-endian payload length) and a payload. Pure: bytes in, frames out."""
from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

HANGUP, UUID, DTMF, AUDIO, ERROR = 0x00, 0x01, 0x03, 0x10, 0xFF
AUDIO_RATES = {0x10: 8000, 0x11: 16000, 0x12: 24000, 0x13: 32000, 0x14: 44100, 0x15: 48000, 0x16: 96000, 0x17: 192000}
MAX_PAYLOAD = 65535


class ProtocolError(ValueError):
    pass


@dataclass(frozen=True)
class Frame:
    kind: int
    payload: bytes

    @property
    def uuid(self) -> str:
        if self.kind != UUID or len(self.payload) != 16:
            raise ProtocolError(f"UUID frame must carry 16 bytes, got {len(self.payload)}")
        return str(uuid.UUID(bytes=self.payload))

    @property
    def rate(self) -> int | None:
        return AUDIO_RATES.get(self.kind)


class FrameReader:
    """Incremental parser: feed it whatever the socket gave, take whole frames out."""

    def __init__(self):
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames = []
        while len(self._buf) >= 3:
            kind, length = struct.unpack(">BH", self._buf[:3])
            if kind not in (HANGUP, UUID, DTMF, ERROR) and kind not in AUDIO_RATES:
                raise ProtocolError(f"unknown AudioSocket frame type 0x{kind:02x}")
            if len(self._buf) < 3 + length:
                break
            frames.append(Frame(kind, bytes(self._buf[3:3 + length])))
            del self._buf[:3 + length]
        return frames


def encode(kind: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError("payload too long")
    return struct.pack(">BH", kind, len(payload)) + payload
