"""What a worker process does with one job (picklable, no I/O but the recording files)."""
from __future__ import annotations

import ctypes
import signal

from transcription.recognize import transcribe_call
from transcription.segment import index_text


def die_with_parent() -> None:
    """Pool initializer: a worker process ends when the daemon that started it is killed (Linux
    PR_SET_PDEATHSIG), so a SIGKILLed transcriber never leaves recognisers running on."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def transcribe_and_index(tracks: list[tuple[str, str]], model_dir: str) -> dict:
    result = transcribe_call(tracks, model_dir)
    result["tokens"] = index_text(" ".join(s["text"] for s in result["segments"]))
    return result
