"""The transcriber daemon (`hotline transcriber`): post-call jobs in a process pool, live streams
from Asterisk's AudioSocket, keyword alerts, and the retention purge.

It shares the database with the controller (jobs are rows in ``transcripts``) and talks to desks
through Redis (``<prefix>:transcription``), which the controller relays to its WebSocket. Killing
it costs no call and no job: a job's lease runs out and the next daemon takes it up."""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import socket
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath

from prometheus_client import CollectorRegistry

from core.paths import InstancePaths
from store.bus import Bus
from core.config import HotlineConfig
from core.config.system import usable_cores
from store.alerts import AlertStore
from store.engine import Database, migrate
from store.secrets import Secrets
from store.transcripts import TranscriptStore
from transcription import allocator, audiosocket
from transcription.jobs import die_with_parent, transcribe_and_index
from transcription.keywords import KeywordRules, compile_rules
from transcription.metrics import TranscriberMetrics
from transcription.models import ModelRegistry, live_variant
from transcription.recognize import LIVE_POOL, StreamRecognizer, load_model

log = logging.getLogger("hotline.transcriber")
TOPIC = "transcription"
POLL_SECONDS = 1.0
LIVE_CHUNK = 3200          # 200 ms of 8 kHz audio per recognition step
METRICS_SECONDS = 5        # how often the backlog figures of /metrics are read from the database


def recording_tracks(paths: InstancePaths, recording: str) -> dict[str, Path]:
    """The host paths of a call's recordings: the mix and one track per speaker (MixMonitor r/t).
    Nothing ({}) for a name that is not a relative ``.wav`` path inside the monitor directory: the name
    comes from an AMI event or the CDR, and is served to the desk and deleted by the retention purge,
    so a forged ``../../…`` must reach no other file."""
    name = recording or ""
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or rel.suffix != ".wav" or "\x00" in name:
        return {}
    mixed = paths.host(paths.monitor / rel)
    stem = str(mixed)[:-4]
    return {"mixed": mixed, "caller": Path(f"{stem}-caller.wav"), "agent": Path(f"{stem}-agent.wav")}


def alert_rows(rules: KeywordRules, job: dict, segments: list[dict], phase: str) -> tuple[list[dict], list[str]]:
    """Keyword hits in a transcript as alert rows (one per topic) and the suggested categories."""
    found: dict[str, dict] = {}
    hits_all = []
    for seg in segments:
        for h in rules.find(job["language"], seg["text"]):
            hits_all.append(h)
            found.setdefault(h.topic, {"kind": "keyword", "city": job["city"], "call_id": job["call_id"],
                                       "agent": job.get("agent", ""), "topic": h.topic, "term": h.term,
                                       "severity": h.severity, "phase": phase, "speaker": seg["speaker"],
                                       "detail": seg["text"][:500]})
    return list(found.values()), rules.categories(hits_all)


class Transcriber:
    def __init__(self, cfg: HotlineConfig, secrets: Secrets, registry: CollectorRegistry | None = None):
        self.cfg = cfg
        self.ts = cfg.system.transcription
        self.metrics = TranscriberMetrics(registry or CollectorRegistry())
        self.metrics.live_streams.set_function(lambda: self.live_streams)
        self.db = Database(cfg.system.database.url, cfg.root)
        self.jobs = TranscriptStore(self.db)
        self.alerts = AlertStore(self.db)
        self.models = ModelRegistry(cfg)
        self.rules = compile_rules(cfg.keywords)
        self.bus = Bus.for_install(cfg.system.redis, secrets)
        self.paths = InstancePaths(cfg.resolve(cfg.system.asterisk.rootfs), cfg.system.asterisk.instance)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.pool = self._new_pool()
        self.cores = usable_cores()
        self.live_calls = self.ts.live.calls(self.cores)
        # as many recognition threads as cores: a chunk waits its turn rather than sharing a core with
        # a dozen others (Vosk's C code runs outside the GIL, so threads do use every core)
        self.live_threads = ThreadPoolExecutor(max_workers=max(1, int(self.cores)), thread_name_prefix="live")
        LIVE_POOL.size = 2 * self.live_calls
        self.running: dict[int, dict] = {}
        self.live_streams = 0
        self._variant_failed: set[Path] = set()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: list[asyncio.Task] = []

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the daemon has threads (live streams), and a forked child could inherit a held lock
        return ProcessPoolExecutor(max_workers=self.ts.workers, initializer=die_with_parent,
                                   mp_context=multiprocessing.get_context("spawn"))

    async def start(self) -> None:
        await asyncio.to_thread(migrate, self.cfg.system.database.url, self.cfg.root)
        for lang, path in self.models.available().items():
            log.info("model for %s: %s", lang, path or f"none (no model for {lang})")
        self._tasks = [asyncio.create_task(self._job_slot(i), name=f"job-{i}") for i in range(self.ts.workers)]
        self._tasks.append(asyncio.create_task(self._purge_loop(), name="retention"))
        self._tasks.append(asyncio.create_task(self._watch(), name="metrics"))
        if self.ts.live.enabled:
            # live recognisers share the models loaded here (Vosk's C calls run outside the GIL)
            for lang in self.models.entries:
                path = await asyncio.to_thread(self._live_model, lang)
                if path:
                    await asyncio.to_thread(load_model, str(path))
            self._server = await asyncio.start_server(self._live, self.ts.live.host, self.ts.live.port)
            log.info("AudioSocket server on %s:%s; live transcription for up to %d calls (%s); allocator %s",
                     self.ts.live.host, self.ts.live.port, self.live_calls,
                     f"live.max_calls auto: {self.cores:g} cores" if self.ts.live.max_calls == "auto"
                     else "live.max_calls", allocator.describe())

    async def stop(self) -> None:
        if self._server:
            self._server.close()
        for t in self._tasks:
            t.cancel()
        for job_id in list(self.running):
            await self.jobs.release(job_id, self.worker_id)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.live_threads.shutdown(wait=False, cancel_futures=True)
        await self.db.close()
        await self.bus.close()

    # ---- post-call jobs
    async def _job_slot(self, slot: int) -> None:
        while True:
            try:
                job = await self.jobs.claim(self.worker_id, self.ts.lease_seconds, self.ts.max_attempts)
            except Exception as e:   # database away: try again shortly
                log.warning("claiming a job failed: %s", e)
                job = None
            if job is None:
                await asyncio.sleep(POLL_SECONDS)
                continue
            self.running[job["id"]] = job
            try:
                await self._run(job)
            except Exception:
                log.exception("job %s (call %s) failed unexpectedly", job["id"], job["call_id"])
                await self._retry_or_fail(job, "internal error (logged)")
            finally:
                self.running.pop(job["id"], None)

    async def _retry_or_fail(self, job: dict, reason: str) -> None:
        if job["attempts"] >= self.ts.max_attempts:
            await self.jobs.finish(job["id"], self.worker_id, "failed", reason)
            log.warning("job %s (call %s) failed for good: %s", job["id"], job["call_id"], reason)
        else:
            retry_at = datetime.now(timezone.utc) + timedelta(seconds=self.ts.retry_seconds * job["attempts"])
            await self.jobs.finish(job["id"], self.worker_id, "pending", reason, retry_at=retry_at)

    async def _run(self, job: dict) -> None:
        model = self.models.locate(job["language"])
        if model is None:
            await self.jobs.finish(job["id"], self.worker_id, "no_model", self.models.status(job["language"]))
            return
        files = recording_tracks(self.paths, job["recording"])
        if not files:
            await self.jobs.finish(job["id"], self.worker_id, "failed", f"not a recording name: {job['recording']!r}")
            return
        tracks = [(who, str(files[who])) for who in ("caller", "agent") if files[who].exists()]
        if not tracks and files["mixed"].exists():
            tracks = [("mixed", str(files["mixed"]))]   # recorded before per-speaker tracks existed
        if not tracks:
            await self._retry_or_fail(job, f"recording not found: {files['mixed']}")
            return
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self.pool, transcribe_and_index, tracks, str(model))
        try:
            while True:
                done, _ = await asyncio.wait([fut], timeout=max(0.5, self.ts.lease_seconds / 3))
                if done:
                    break
                if not await self.jobs.renew(job["id"], self.worker_id, self.ts.lease_seconds):
                    log.warning("job %s: lease lost; leaving it to whoever has it", job["id"])
                    return
            result = fut.result()
        except BrokenProcessPool:
            log.warning("a recognition process died during job %s; restarting the pool", job["id"])
            self.pool = self._new_pool()
            await self._retry_or_fail(job, "recognition process died")
            return
        except (ValueError, OSError, EOFError) as e:
            await self._retry_or_fail(job, f"unreadable recording: {e}")
            return
        alerts, categories = alert_rows(self.rules, job, result["segments"], "post_call")
        completed, raised = await self.jobs.complete(job["id"], self.worker_id, result, result["tokens"], categories, alerts)
        secs = time.monotonic() - started
        if completed:
            log.info("job %s (call %s): %d segments from %.1fs of audio in %.1fs", job["id"], job["call_id"],
                     len(result["segments"]), result["audio_seconds"], secs)
            await self.bus.publish(TOPIC, {"type": "transcript_done", "call_id": job["call_id"], "city": job["city"],
                                           "agent": job["agent"]})
            for a in raised:
                await self.bus.publish(TOPIC, {"type": "alert", "alert": a})

    async def _watch(self) -> None:
        """The job backlog for /metrics, read every METRICS_SECONDS."""
        while True:
            try:
                self.metrics.update(*await self.jobs.backlog())
            except Exception as e:    # database away: the figures stay as last read
                log.warning("reading the job backlog failed: %s", e)
            await asyncio.sleep(METRICS_SECONDS)

    # ---- retention
    async def _purge_loop(self) -> None:
        while True:
            try:
                await self.purge()
            except Exception as e:
                log.warning("retention purge failed: %s", e)
            await asyncio.sleep(3600)

    async def purge(self) -> dict:
        """Delete recordings past their retention (the transcript stays) and empty old transcripts."""
        files = 0
        r = self.ts.retention
        for row in await self.jobs.expired_recordings(r.recordings_days):
            for path in recording_tracks(self.paths, row["recording"]).values():
                try:
                    path.unlink()
                    files += 1
                except FileNotFoundError:
                    pass
            await self.jobs.mark_recording_purged(row["id"])
        emptied = await self.jobs.purge_transcripts(r.transcripts_days)
        if files or emptied:
            log.info("retention: %d recording files deleted, %d transcripts emptied", files, emptied)
        return {"files": files, "transcripts": emptied}

    # ---- live streams
    async def _live(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = audiosocket.FrameReader()
        info = None
        rec: StreamRecognizer | None = None
        loop = asyncio.get_running_loop()
        buf = bytearray()
        last_partial, last_sent, last_asked = "", 0.0, 0.0
        every = self.ts.live.partial_every_ms / 1000
        self.live_streams += 1
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                for f in frames.feed(data):
                    if f.kind == audiosocket.UUID:
                        info = await self._stream_info(f.uuid)
                        if info is None:
                            log.warning("AudioSocket stream %s is not one we asked for; closing", f.uuid)
                            return
                        model = await asyncio.to_thread(self._live_model, info["language"])
                        if model is None:
                            return
                        rec = await loop.run_in_executor(self.live_threads, lambda: StreamRecognizer(
                            str(model), 8000, settle_s=self.ts.live.settle_ms / 1000,
                            pause_s=self.ts.live.endpoint_silence_ms / 1000))
                    elif f.kind in (audiosocket.HANGUP, audiosocket.ERROR):
                        return
                    elif f.rate is not None and rec is not None:
                        if f.rate != 8000:
                            log.warning("unexpected %d Hz AudioSocket audio; closing", f.rate)
                            return
                        buf += f.payload
                if rec is None or len(buf) < LIVE_CHUNK:
                    continue
                chunk, buf[:] = bytes(buf), b""
                # the partial text is worked out only when it may be sent (at most every partial_every_ms)
                want = time.monotonic() - last_asked >= every
                if want:
                    last_asked = time.monotonic()
                final, partial = await loop.run_in_executor(self.live_threads, rec.feed, chunk, want)
                if final:
                    await self._live_text(info, final, True)
                    last_partial = ""
                elif partial and partial != last_partial and time.monotonic() - last_sent >= every:
                    await self._live_text(info, partial, False)
                    last_partial, last_sent = partial, time.monotonic()
        except audiosocket.ProtocolError as e:
            log.warning("AudioSocket protocol error: %s", e)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.live_streams -= 1
            if rec is not None and info is not None:
                try:
                    final = await loop.run_in_executor(self.live_threads, rec.finish)
                    if final:
                        await self._live_text(info, final, True)
                except Exception:
                    log.exception("finishing a live stream failed")
            writer.close()

    def _live_model(self, lang: str) -> Path | None:
        """The language's model with the live endpointer (models.live_variant), or the model as it is
        when that cannot be built: live text is late then, never missing."""
        path = self.models.locate(lang)
        if path is None:
            return None
        silence = self.ts.live.endpoint_silence_ms / 1000
        try:
            return live_variant(path, silence, self.cfg.state_dir / "live-models")
        except OSError as e:
            if path not in self._variant_failed:
                self._variant_failed.add(path)
                log.warning("cannot build the live variant of %s (%s): live text uses the model's own endpointer",
                            path, e)
            return path

    async def _stream_info(self, stream: str) -> dict | None:
        # the controller writes the stream's call before asking Asterisk to connect; allow a moment
        for _ in range(20):
            info = await self.bus.take(f"live:{stream}")
            if info:
                return info
            await asyncio.sleep(0.05)
        return None

    async def _live_text(self, info: dict, text: str, final: bool) -> None:
        await self.bus.publish(TOPIC, {"type": "transcript", "final": final, "text": text, "at": time.time(),
                                       **{k: info.get(k, "") for k in ("call_id", "speaker", "city", "agent", "language")}})
        if not final:
            return
        for h in self.rules.find(info.get("language", ""), text):
            a = await self.alerts.add_alert(kind="keyword", city=info.get("city", ""), call_id=info["call_id"],
                                          agent=info.get("agent", ""), topic=h.topic, term=h.term, severity=h.severity,
                                          phase="live", speaker=info.get("speaker", ""), detail=text[:500])
            if a is not None:
                log.warning("keyword alert on call %s: %s (%s)", info["call_id"], h.topic, h.term)
                await self.bus.publish(TOPIC, {"type": "alert", "alert": a})


async def serve(cfg: HotlineConfig, secrets: Secrets, stop: asyncio.Event,
                registry: CollectorRegistry | None = None) -> None:
    t = Transcriber(cfg, secrets, registry)
    await t.start()
    try:
        await stop.wait()
    finally:
        await t.stop()
