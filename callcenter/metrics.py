"""The controller's Prometheus metrics (served at /metrics): AMI events by type, call outcomes, the
event delay and the routing time measured from Asterisk's own timestamps, record-write errors, and at
scrape time the queues and agents by state from the live view."""
from __future__ import annotations

from typing import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector

# a call's outcomes (docs/architecture.md "Call records"); any other value is counted as "other"
OUTCOMES = frozenset({"answered", "abandoned", "voicemail", "unknown_number", "ivr_hangup", "callback_requested",
                      "callback_done", "callback_retry", "callback_failed", "unobserved"})


def process_registry() -> CollectorRegistry:
    """A registry with the standard process and platform figures (CPU, memory, open files, start
    time, Python version): every daemon's /metrics starts from one."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


class Metrics:
    def __init__(self, cities: Iterable[str] = (), queues: Iterable[str] = ()):
        """``cities`` and ``queues``: the configured ids, the only values their labels take (label
        values fed from call data are bounded: anything else is "other")."""
        self.cities, self.queues = frozenset(cities), frozenset(queues)
        self.registry = process_registry()
        # by event name (a bounded set: Asterisk's event types that pass the AMI user's filters)
        self.events = Counter("hotline_ami_events_total", "AMI events received", ["event"], registry=self.registry)
        self._event_names: set[str] = set()
        self.bad_events = Counter("hotline_ami_events_failed_total", "AMI events that failed handling", registry=self.registry)
        self.unheard_ends = Counter("hotline_calls_closed_unheard_total",
                                    "calls closed because Asterisk no longer had them, their Hangup event never received",
                                    registry=self.registry)
        self.calls = Counter("hotline_calls_total", "Calls ended", ["city", "outcome"], registry=self.registry)
        self.live_calls = Gauge("hotline_live_calls", "Calls in progress", registry=self.registry)
        self.ami_up = Gauge("hotline_ami_connected", "1 when the AMI session is logged in", registry=self.registry)
        self.event_lag = Gauge("hotline_ami_event_lag_seconds", "Last event's age when handled", registry=self.registry)
        self.db_errors = Counter("hotline_db_errors_total", "Failed record writes (retried)", registry=self.registry)
        # failed SIP authentications are hotline_ami_events_total{event="ChallengeResponseFailed"}
        self.sip_blocks = Counter("hotline_sip_blocks_total", "SIP addresses blocked after failed authentications",
                                  registry=self.registry)
        fine = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
        # from Asterisk's own event timestamps: is the controller keeping up, is the dialplan fast under load
        self.event_delay = Histogram("hotline_ami_event_delay_seconds", "Event's age when handled",
                                     buckets=fine, registry=self.registry)
        # the same age as the event is read off the socket: delay - arrival = the wait in the controller
        self.event_arrival = Histogram("hotline_ami_event_arrival_seconds", "Event's age when read off the AMI socket",
                                       buckets=fine, registry=self.registry)
        self.loop_lag = Histogram("hotline_event_loop_lag_seconds", "How late the controller's event loop ran a timer",
                                  buckets=fine, registry=self.registry)
        self.routing = Histogram("hotline_routing_decision_seconds",
                                 "Dialplan routing: hours, priority and queue checks until the caller joins or is told "
                                 "the wait", buckets=fine, registry=self.registry)

    def event_label(self, name) -> str:
        """The event name as a label; malformed or past the 100th distinct name: "other" (bounded series)."""
        if isinstance(name, str) and name in self._event_names:
            return name
        if not (isinstance(name, str) and name.isascii() and name.isalnum() and len(name) <= 40) \
                or len(self._event_names) >= 100:
            return "other"
        self._event_names.add(name)
        return name

    def call_ended(self, city: str, outcome: str) -> None:
        self.calls.labels(self.city_label(city), self.outcome_label(outcome)).inc()

    def city_label(self, city: str) -> str:
        return "unknown" if not city else city if city in self.cities else "other"

    @staticmethod
    def outcome_label(outcome: str) -> str:
        return "unknown" if not outcome else outcome if outcome in OUTCOMES else "other"

    def queue_label(self, queue: str) -> str:
        return queue if queue in self.queues else "other"

    def watch(self, ctl) -> None:
        """Queue sizes and agents by state, read from the live view when Prometheus scrapes."""
        self.registry.register(_LiveCollector(ctl, self.queue_label))


class _LiveCollector:
    def __init__(self, ctl, queue_label):
        self.ctl, self.queue_label = ctl, queue_label

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        st = self.ctl.status()
        waiting = GaugeMetricFamily("hotline_queue_waiting", "Callers waiting in a queue", labels=["queue"])
        talking = GaugeMetricFamily("hotline_queue_talking", "Calls of a queue connected to an agent", labels=["queue"])
        per_label: dict[str, list[int]] = {}
        for q, v in st["queues"].items():     # queue names from events: configured ones, else "other"
            n = per_label.setdefault(self.queue_label(q), [0, 0])
            n[0] += v["waiting"]
            n[1] += v["talking"]
        for q, (w, t) in sorted(per_label.items()):
            waiting.add_metric([q], w)
            talking.add_metric([q], t)
        agents = GaugeMetricFamily("hotline_agents", "Agents by state", labels=["state"])
        counts: dict[str, int] = {}
        for a in st["agents"]:
            counts[a["state"]] = counts.get(a["state"], 0) + 1
        for state in ("logged_out", "ready", "on_call", "paused", "wrap_up"):
            agents.add_metric([state], counts.get(state, 0))
        # messages on the install's Redis channels that its daemons did not sign: someone is forging
        refused = CounterMetricFamily("hotline_bus_refused_messages", "Redis messages and values dropped: "
                                      "not signed by this install's daemons, moved, old or replayed",
                                      value=st.get("redis", {}).get("refused_messages", 0))
        yield from (waiting, talking, agents, refused)
