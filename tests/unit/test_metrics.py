"""Prometheus label values are bounded (security review 16 §9): a label fed from call data (the
city a caller's dialled number claimed, an outcome, a queue name in an event) takes only configured
or known values, anything else is "other"."""
from callcenter.metrics import OUTCOMES, Metrics
from core import workflow
from core.config import load_config

CFG = load_config()
CITIES = [c.id for c in CFG.cities] + [CFG.province.id]
QUEUES = workflow.all_queues(CFG)


def _samples(m: Metrics, family: str) -> list:
    return [s for fam in m.registry.collect() if fam.name == family for s in fam.samples]


def test_call_labels_are_configured_cities_and_known_outcomes():
    m = Metrics(cities=CITIES, queues=QUEUES)
    m.call_ended("chengdu", "answered")
    m.call_ended("", "")
    m.call_ended("chengdu,028", "answered")          # an injected city
    m.call_ended("leshan", "callback_<script>")      # an outcome from an event's Result header
    for i in range(200):                             # many distinct values: still a bounded set
        m.call_ended(f"x{i}", f"y{i}")
    labels = {(s.labels["city"], s.labels["outcome"]): s.value
              for s in _samples(m, "hotline_calls") if s.name == "hotline_calls_total"}
    assert labels == {("chengdu", "answered"): 1, ("unknown", "unknown"): 1, ("other", "answered"): 1,
                      ("leshan", "other"): 1, ("other", "other"): 200}
    assert set(OUTCOMES) >= {"answered", "abandoned", "voicemail", "unknown_number", "ivr_hangup",
                             "callback_requested", "callback_done", "callback_retry", "callback_failed",
                             "unobserved"}


def test_live_queue_labels_are_configured_queues():
    class Ctl:
        def status(self):
            return {"queues": {"leshan": {"waiting": 2, "talking": 1}, "evil\"q": {"waiting": 1, "talking": 0},
                               "zz1": {"waiting": 1, "talking": 1}},
                    "agents": [{"state": "ready"}, {"state": "bogus"}], "redis": {"refused_messages": 3}}
    m = Metrics(cities=CITIES, queues=QUEUES)
    m.watch(Ctl())
    waiting = {s.labels["queue"]: s.value for s in _samples(m, "hotline_queue_waiting")}
    talking = {s.labels["queue"]: s.value for s in _samples(m, "hotline_queue_talking")}
    assert waiting == {"leshan": 2, "other": 2} and talking == {"leshan": 1, "other": 1}
    assert set(waiting) <= set(QUEUES) | {"other"}
    agents = {s.labels["state"]: s.value for s in _samples(m, "hotline_agents")}
    assert set(agents) == {"logged_out", "ready", "on_call", "paused", "wrap_up"}
    assert [s.value for s in _samples(m, "hotline_bus_refused_messages")] == [3]
