"""Vosk recognition: whole recordings (post-call, in worker processes) and streams (live).

Vosk's C calls release the GIL (cffi), so live streams can run in threads; post-call jobs run in
processes so a long recording never competes with anything else in one interpreter."""
from __future__ import annotations

import json
import os
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


class StreamRecognizer:
    """Incremental recognition of one live stream (signed 16-bit little-endian PCM)."""

    def __init__(self, model_dir: str, rate: int = 8000):
        from vosk import KaldiRecognizer
        self.rec = KaldiRecognizer(load_model(model_dir), rate)
        # live text needs no word timings (the post-call pass has them): skipping the word
        # alignment makes the end of each utterance cheaper, which is what keeps many streams on time
        self.rec.SetWords(False)
        self.partial = ""

    def feed(self, pcm: bytes) -> tuple[str | None, str]:
        """(final text when an utterance ended, else None; current partial text)."""
        if self.rec.AcceptWaveform(pcm):
            text = clean(json.loads(self.rec.Result()).get("text"))
            self.partial = ""
            return text, ""
        self.partial = clean(json.loads(self.rec.PartialResult()).get("partial"))
        return None, self.partial

    def finish(self) -> str:
        return clean(json.loads(self.rec.FinalResult()).get("text"))
