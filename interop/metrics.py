"""The interop daemon's Prometheus metrics (served by `hotline interop` on interop.metrics): the
partner outbox by partner and status, its depth (messages still to send) and its dead letters, read
from the database every few seconds, and the deliveries this process made."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

# the statuses of a partner message (store/interop.py); always exported, 0 when none
STATUSES = ("pending", "sending", "sent", "dead", "cancelled")


class OutboxMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.messages = Gauge("hotline_outbox_messages", "Partner outbox messages by partner and status",
                              ["partner", "status"], registry=registry)
        self.depth = Gauge("hotline_outbox_depth", "Partner messages still to deliver (pending + sending)",
                           registry=registry)
        self.dead = Gauge("hotline_outbox_dead_letters", "Partner messages given up on (dead letters), "
                          "until retried with `hotline outbox retry`", registry=registry)
        self.delivered = Counter("hotline_outbox_delivered", "Messages this process delivered", registry=registry)

    def update(self, counts: dict[str, dict[str, int]]) -> None:
        """``counts``: InteropStore.counts(), {partner: {status: n}}."""
        for partner, by_status in counts.items():
            for status in STATUSES:
                self.messages.labels(partner, status).set(by_status.get(status, 0))
        self.depth.set(sum(c.get("pending", 0) + c.get("sending", 0) for c in counts.values()))
        self.dead.set(sum(c.get("dead", 0) for c in counts.values()))


# the statuses of a text to a caller (store/sms.py); always exported, 0 when none
SMS_STATUSES = ("pending", "sending", "submitted", "delivered", "failed", "dead", "cancelled")


class SmsMetrics:
    """Texts over SMPP (interop/sms.py): the outbox's sms channel by status, the link, throttling."""

    def __init__(self, registry: CollectorRegistry):
        self.messages = Gauge("hotline_sms_messages", "Texts to callers by status", ["status"], registry=registry)
        self.link_up = Gauge("hotline_sms_link_up", "1 while bound to the SMSC", registry=registry)
        self.submitted = Counter("hotline_sms_parts_submitted", "Parts the SMSC acknowledged", registry=registry)
        self.throttled = Counter("hotline_sms_throttled", "ESME_RTHROTTLED/ESME_RMSGQFUL answers", registry=registry)

    def update(self, counts: dict[str, int]) -> None:
        for status in SMS_STATUSES:
            self.messages.labels(status).set(counts.get(status, 0))
