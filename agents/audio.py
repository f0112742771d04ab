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


def wav_stats(path: Path | str, start: float = 0.0, end: float | None = None) -> AudioStats:
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
