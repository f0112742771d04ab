"""The transcriber's Prometheus metrics (served by `hotline transcriber` on transcription.metrics):
the job backlog and the age of the oldest waiting job, read from the database every few seconds,
and the live streams in progress."""
from __future__ import annotations

import time
from datetime import datetime

from prometheus_client import CollectorRegistry, Gauge

# every status a job row can have (store/transcripts.py); always exported, 0 when none
STATUSES = ("pending", "running", "done", "no_model", "failed", "purged")


class TranscriberMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.jobs = Gauge("hotline_transcription_jobs", "Transcription jobs by status", ["status"], registry=registry)
        self.backlog = Gauge("hotline_transcription_backlog", "Jobs waiting or running (pending + running)",
                             registry=registry)
        self._oldest: float | None = None
        # computed when scraped: the age keeps growing between two reads of the database
        Gauge("hotline_transcription_oldest_pending_seconds",
              "Age of the oldest job still waiting or running (0 when none)", registry=registry
              ).set_function(lambda: 0.0 if self._oldest is None else max(0.0, time.time() - self._oldest))
        self.live_streams = Gauge("hotline_transcription_live_streams", "Live AudioSocket streams in progress",
                                  registry=registry)

    def update(self, counts: dict[str, int], oldest: datetime | None) -> None:
        for status in STATUSES:
            self.jobs.labels(status).set(counts.get(status, 0))
        self.backlog.set(counts.get("pending", 0) + counts.get("running", 0))
        self._oldest = oldest.timestamp() if oldest is not None else None
