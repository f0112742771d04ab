"""Small audio checks on WAV files (16-bit PCM): is there speech-level sound, and how much."""
from __future__ import annotations

import math
import subprocess
import wave
from array import array
from dataclasses import dataclass
from pathlib import Path

ACTIVE_DBFS = -45.0  # a 20 ms frame louder than this counts as sound, quieter as silence/comfort noise


@dataclass(frozen=True)
class AudioStats:
    duration: float
    active_seconds: float
    peak_dbfs: float

    @property
    def non_silent(self) -> bool:
        return self.active_seconds >= 0.5


def _samples(path: Path | str, start: float = 0.0, end: float | None = None) -> tuple[array, int]:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        rate, channels = w.getframerate(), w.getnchannels()
        total = w.getnframes()
        first = min(total, int(start * rate))
        last = total if end is None else min(total, int(end * rate))
        w.setpos(first)
        samples = array("h", w.readframes(max(0, last - first)))
    if channels > 1:
        samples = array("h", samples[::channels])
    return samples, rate


def wav_stats(path: Path | str, start: float = 0.0, end: float | None = None) -> AudioStats:
    samples, rate = _samples(path, start, end)
    frame = max(1, rate // 50)
    active, peak = 0, 0.0
    for i in range(0, len(samples) - frame + 1, frame):
        chunk = samples[i:i + frame]
        rms = math.sqrt(sum(s * s for s in chunk) / frame)
        db = 20 * math.log10(rms / 32768) if rms > 0 else -120.0
        peak = max(peak, rms)
        if db > ACTIVE_DBFS:
            active += 1
    return AudioStats(duration=len(samples) / rate, active_seconds=active * frame / rate,
                      peak_dbfs=20 * math.log10(peak / 32768) if peak > 0 else -120.0)


def speech_wav(text: str, voice: str, dest: Path) -> Path:
    """Speech for a simulated caller or agent (espeak-ng), as 8 kHz mono telephone audio. Cached."""
    if not dest.exists():
        raw = dest.with_suffix(".raw.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
        subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(dest), "vol", "0.7"], check=True)
        raw.unlink()
    return dest


def tone_wav(freq: float, seconds: float, dest: Path, level: float = 0.3, rate: int = 8000) -> Path:
    """A steady sine: a party that is easy to recognise on every other leg of a call."""
    n = int(seconds * rate)
    data = array("h", (int(level * 32767 * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)))
    with wave.open(str(dest), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return dest


def tone_presence(path: Path | str, freq: float, start: float = 0.0, end: float | None = None,
                  min_share: float = 0.1) -> float:
    """Share of 50 ms blocks (with sound) in which ``freq`` carries at least ``min_share`` of the energy
    (Goertzel). A pure tone scores ~1 per block, two equal tones ~0.5 each, absence ~0."""
    samples, rate = _samples(path, start, end)
    n = max(1, rate // 20)
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    hits = blocks = 0
    for i in range(0, len(samples) - n + 1, n):
        block = samples[i:i + n]
        energy = sum(x * x for x in block)
        if energy < n * 100 ** 2:        # below about -50 dBFS: silence, not evidence either way
            continue
        s1 = s2 = 0.0
        for x in block:
            s1, s2 = x + coeff * s1 - s2, s1
        power = s1 * s1 + s2 * s2 - coeff * s1 * s2
        blocks += 1
        if power / (energy * n / 2) >= min_share:
            hits += 1
    return hits / blocks if blocks else 0.0
