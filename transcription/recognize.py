"""Vosk recognition: whole recordings (post-call, in worker processes) and streams (live).

Vosk's C calls release the GIL (cffi), so live streams can run in threads; post-call jobs run in
processes so a long recording never competes with anything else in one interpreter."""
from __future__ import annotations

import array
import json
import math
import operator
import os
import sys
import threading
import wave
from functools import lru_cache
from pathlib import Path

CHUNK_FRAMES = 4000   # 0.25 s at 16 kHz, 0.5 s at 8 kHz


@lru_cache(maxsize=4)
def load_model(model_dir: str):
    """One model per directory per process (loading takes a second or more and ~100-300 MB)."""
    from vosk import Model, SetLogLevel
    SetLogLevel(-1)
    return Model(model_dir)


def _is_word(token: str) -> bool:
    """Models mark noise and unknown sounds with bracketed tokens ("[unk]", "[4]"): not speech."""
    return bool(token) and not (token.startswith("[") and token.endswith("]"))


def clean(text: str) -> str:
    return " ".join(t for t in (text or "").split() if _is_word(t))


def _segment(result: dict, speaker: str, offset: float = 0.0) -> dict | None:
    words = [w for w in result.get("result") or [] if _is_word(w.get("word", ""))]
    text = " ".join(w["word"] for w in words)
    if not text:
        return None
    return {"speaker": speaker, "start": round(words[0]["start"] + offset, 2), "end": round(words[-1]["end"] + offset, 2),
            "text": text,
            "words": [{"w": w["word"], "s": round(w["start"] + offset, 2), "e": round(w["end"] + offset, 2),
                       "c": round(w.get("conf", 1.0), 3)} for w in words]}


def transcribe_wav(path: str | Path, model_dir: str, speaker: str) -> tuple[list[dict], float]:
    """Segments (utterances with words and times) of one speaker's track, and its duration."""
    from vosk import KaldiRecognizer
    model = load_model(model_dir)
    segments: list[dict] = []
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit mono PCM, got {w.getnchannels()} channels of {w.getsampwidth() * 8} bits")
        rate = w.getframerate()
        rec = KaldiRecognizer(model, rate)
        rec.SetWords(True)
        while True:
            data = w.readframes(CHUNK_FRAMES)
            if not data:
                break
            if rec.AcceptWaveform(data):
                seg = _segment(json.loads(rec.Result()), speaker)
                if seg:
                    segments.append(seg)
        seg = _segment(json.loads(rec.FinalResult()), speaker)
        if seg:
            segments.append(seg)
        return segments, w.getnframes() / rate


def transcribe_call(tracks: list[tuple[str, str]], model_dir: str) -> dict:
    """Process-pool entry point: every speaker's track, merged into one time-ordered transcript."""
    segments: list[dict] = []
    duration = 0.0
    for speaker, path in tracks:
        segs, secs = transcribe_wav(path, model_dir, speaker)
        segments.extend(segs)
        duration = max(duration, secs)
    segments.sort(key=lambda s: (s["start"], s["speaker"]))
    return {"segments": segments, "text": transcript_text(segments), "audio_seconds": round(duration, 2),
            "pid": os.getpid()}


def transcript_text(segments: list[dict]) -> str:
    return "\n".join(f"{s['speaker']}: {s['text']}" for s in segments)


class RecognizerPool:
    """Live recognisers kept between streams, per (model, rate).

    A Vosk recogniser over a lookahead graph (HCLr.fst + Gr.fst, as the small models ship) composes the
    graph on the fly and caches what it composed inside the recogniser, not the shared Model: a new one
    decodes at 4-5x its steady cost for its first ~10 s of speech (bench/bench_vosk.py, "single stream").
    Handing a finished stream's recogniser to the next stream keeps that cache; its decoder, features
    and i-vector state start afresh (FinalResult drops them), so nothing of one call reaches the next.
    Each kept recogniser holds ~80 MB of cache: ``size`` bounds them (the live streams' limit)."""

    def __init__(self, size: int = 16):
        self.size = size
        self._idle: dict[tuple[str, int], list] = {}
        self._lock = threading.Lock()
        self.created = 0          # for the bench and the start log: how many were ever built

    def take(self, model_dir: str, rate: int):
        with self._lock:
            idle = self._idle.get((model_dir, rate))
            if idle:
                return idle.pop()
            self.created += 1
        from vosk import KaldiRecognizer
        rec = KaldiRecognizer(load_model(model_dir), rate)
        # live text needs no word timings (the post-call pass has them): skipping the word
        # alignment makes the end of each utterance cheaper
        rec.SetWords(False)
        return rec

    def give(self, model_dir: str, rate: int, rec) -> None:
        # A recogniser whose last utterance ended at an endpoint is not finalised by FinalResult (it
        # keeps its feature pipeline); 10 ms of silence then FinalResult always leave it finalised,
        # so the next stream starts from fresh features and i-vector.
        rec.AcceptWaveform(bytes(rate // 100 * 2))
        rec.FinalResult()
        with self._lock:
            if sum(len(v) for v in self._idle.values()) >= self.size:
                # full: a recogniser of another model (one replaced since) makes room, else this one goes
                other = next((v for k, v in self._idle.items() if k != (model_dir, rate) and v), None)
                if other is None:
                    return
                other.pop()
            self._idle.setdefault((model_dir, rate), []).append(rec)

    def idle(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._idle.values())


LIVE_POOL = RecognizerPool()


def level_dbfs(pcm: bytes) -> float:
    """RMS level of signed 16-bit little-endian PCM in dBFS (digital silence: -96)."""
    samples = array.array("h", pcm[:len(pcm) & ~1])
    if sys.byteorder == "big":
        samples.byteswap()
    if not samples:
        return -96.0
    mean_square = sum(map(operator.mul, samples, samples)) / len(samples)
    return max(-96.0, 10 * math.log10(mean_square / 32768.0 ** 2)) if mean_square else -96.0


class PauseDetector:
    """A pause after speech, told by the audio's level alone. The small models sometimes decode a
    pause's line noise as neither words nor silence, and their endpointer then waits for the next
    speech, seconds later; the level does not mistake it. The line's noise floor is followed from
    below: the quietest chunk, rising RISE_DB_PER_S between utterances, so a louder line is learnt within
    seconds; held while someone speaks, so a long sentence does not lift it to its own soft syllables;
    never under FLOOR_MIN_DB, so digital silence does not make line noise look like speech. A chunk
    SPEECH_DB over the floor is speech, one within QUIET_DB of it quiet, anything between is neither."""
    SPEECH_DB, QUIET_DB, RISE_DB_PER_S, FLOOR_MIN_DB, FLOOR_START_DB = 18.0, 6.0, 2.5, -70.0, -50.0

    def __init__(self, rate: int, pause_s: float):
        self.rate, self.pause_s = rate, pause_s
        self.floor: float | None = None
        self.spoken = False          # speech since the last utterance ended
        self.quiet = 0.0             # seconds of quiet audio since then

    def feed(self, pcm: bytes) -> bool:
        """True when this chunk completes a pause of ``pause_s`` after speech."""
        level, seconds = level_dbfs(pcm), len(pcm) / 2 / self.rate
        if self.floor is None:
            self.floor = max(min(level, self.FLOOR_START_DB), self.FLOOR_MIN_DB)
        if level >= self.floor + self.SPEECH_DB:
            self.spoken, self.quiet = True, 0.0
            return False
        rise = 0.0 if self.spoken else self.RISE_DB_PER_S * seconds
        self.floor = max(min(self.floor + rise, level), self.FLOOR_MIN_DB)
        if level <= self.floor + self.QUIET_DB:
            self.quiet += seconds
        else:
            self.quiet = 0.0
        if self.spoken and self.quiet >= self.pause_s:
            self.reset()
            return True
        return False

    def reset(self) -> None:
        """An utterance ended (by the model's endpointer or this): wait for speech again."""
        self.spoken, self.quiet = False, 0.0


class StreamRecognizer:
    """Incremental recognition of one live stream (signed 16-bit little-endian PCM).

    ``pool`` None builds a recogniser of its own and drops it at the end (what every stream did
    before the pool; the bench's "before")."""

    def __init__(self, model_dir: str, rate: int = 8000, pool: RecognizerPool | None = LIVE_POOL,
                 settle_s: float | None = None, pause_s: float | None = None):
        self.model_dir, self.rate, self.pool = model_dir, rate, pool
        # the endpointer's safety nets. The small models sometimes decode a pause's line noise as neither
        # words nor silence, and then call no endpoint until the next speech, seconds later
        # (bench/bench_vosk.py). pause_s: that much quiet audio after speech ends the utterance
        # (PauseDetector); settle_s: a partial text unchanged for this much audio does. None: off
        self.settle = settle_s
        self.pauses = PauseDetector(rate, pause_s) if pause_s else None
        self._heard = 0.0            # seconds of audio fed
        self._changed_at = 0.0       # when (in audio time) the partial text last changed
        if pool is not None:
            self.rec = pool.take(model_dir, rate)
        else:
            from vosk import KaldiRecognizer
            self.rec = KaldiRecognizer(load_model(model_dir), rate)
            self.rec.SetWords(False)
        self.partial = ""
        self._done = False

    def feed(self, pcm: bytes, partial: bool = True) -> tuple[str | None, str]:
        """(final text when an utterance ended, else None; current partial text). ``partial`` False
        skips the best-path walk of the partial text when it would not be sent anyway (the last
        partial is returned)."""
        self._heard += len(pcm) / 2 / self.rate
        paused = self.pauses is not None and self.pauses.feed(pcm)
        if self.rec.AcceptWaveform(pcm):
            text = clean(json.loads(self.rec.Result()).get("text"))
            self.partial, self._changed_at = "", self._heard
            if self.pauses is not None:
                self.pauses.reset()
            return text, ""
        if paused:
            # FinalResult ends the utterance; the recogniser then goes on with the next one
            text = clean(json.loads(self.rec.FinalResult()).get("text"))
            self.partial, self._changed_at = "", self._heard
            return text, ""
        if partial:
            text = clean(json.loads(self.rec.PartialResult()).get("partial"))
            if text != self.partial:
                self.partial, self._changed_at = text, self._heard
            elif text and self.settle is not None and self._heard - self._changed_at >= self.settle:
                # FinalResult ends the utterance; the recogniser then goes on with the next one
                # (its features and i-vector start afresh, as after a stream)
                text = clean(json.loads(self.rec.FinalResult()).get("text"))
                self.partial, self._changed_at = "", self._heard
                if self.pauses is not None:
                    self.pauses.reset()
                return text, ""
        return None, self.partial

    def finish(self) -> str:
        if self._done:
            return ""
        self._done = True
        text = clean(json.loads(self.rec.FinalResult()).get("text"))
        if self.pool is not None:
            self.pool.give(self.model_dir, self.rate, self.rec)
        self.rec = None
        return text
