"""KPIs from AMI event sequences run through the call tracker: known answers for service level,
ASA, abandonment and AHT (definitions in core/kpi.py and docs/kpis.md)."""
from callcenter.tracker import CallTracker
from core.kpi import Policy, compute, occupancy

T0 = 1_800_000_000.0


def _events(uid: str, start: float, *, wait: float, answered: bool, talk: float = 0, green: str = "") -> list[dict]:
    """The events one call produces: trunk channel, IVR, queue, then answer and hang-up, or abandon."""
    def ev(name, ts, **kw):
        return {"Event": name, "Linkedid": uid, "Uniqueid": uid, "Timestamp": str(ts), **kw}
    joined = start + 5
    evs = [ev("Newchannel", start, Channel=f"PJSIP/carrier-{uid[-8:]}", Context="hotline-trunk", Exten="083312348",
              CallerIDNum="13800001111"),
           ev("UserEvent", start + 0.1, UserEvent="HotlineCall", DID="083312348", City="leshan", Area="0833"),
           ev("UserEvent", start + 4.1, UserEvent="HotlineQueue", Queue="leshan", Target="city", Recording="",
              Open="1", Green=green),
           ev("QueueCallerJoin", joined, Queue="leshan", Position="1")]
    if answered:
        evs += [ev("AgentConnect", joined + wait, Queue="leshan", Interface="PJSIP/agent1001", MemberName="agent1001",
                   HoldTime=str(int(wait))),
                ev("Hangup", joined + wait + talk, Cause="16", **{"Cause-txt": "Normal Clearing"})]
    else:
        evs += [ev("QueueCallerAbandon", joined + wait, Queue="leshan", Position="1"),
                ev("Hangup", joined + wait, Cause="16", **{"Cause-txt": "Normal Clearing"})]
    return evs


def _calls(specs) -> list:
    tr = CallTracker()
    for i, spec in enumerate(specs):
        for e in _events(f"{int(T0) + i}.{i}", T0 + 100 * i, **spec):
            tr.apply(e)
    return list(tr.calls.values())


def test_known_answers_from_event_sequences():
    calls = _calls([
        dict(wait=10, answered=True, talk=100),            # within 20 s
        dict(wait=30, answered=True, talk=200, green="elderly"),   # late
        dict(wait=15, answered=True, talk=300),            # within
        dict(wait=40, answered=False),                     # abandoned after 40 s: queued, not within SL
        dict(wait=3, answered=False),                      # short abandon: excluded
    ])
    k = compute(calls, Policy(service_level_seconds=20, short_abandon_seconds=5, wrapup_seconds=10))
    assert (k.calls, k.queued, k.answered, k.abandoned, k.short_abandons) == (5, 4, 3, 1, 1)
    assert k.within_sl == 2 and k.service_level == 0.5          # 2 of 4 left the queue within 20 s
    assert k.asa_seconds == round((10 + 30 + 15) / 3, 2)        # 18.33
    assert k.abandonment_rate == 0.25
    assert k.aht_seconds == round((110 + 210 + 310) / 3, 2)     # talk + 10 s wrap-up
    assert k.green_share == 0.2


def test_short_abandons_counted_when_policy_says_so():
    calls = _calls([dict(wait=10, answered=True, talk=60), dict(wait=3, answered=False)])
    k = compute(calls, Policy(service_level_seconds=20, short_abandon_seconds=5, exclude_short_abandons=False))
    assert (k.queued, k.abandoned, k.service_level, k.abandonment_rate) == (2, 1, 1.0, 0.5)


def test_no_calls_no_ratios_and_occupancy():
    k = compute([])
    assert k.service_level is None and k.asa_seconds is None and k.aht_seconds is None
    assert occupancy(["ready", "on_call", "wrap_up", "paused", "logged_out"]) == round(2 / 3, 4)
    assert occupancy(["paused"]) is None


def test_reports_by_day_hour_and_agent():
    from core.kpi import by_agent, by_day, by_hour
    calls = _calls([dict(wait=10, answered=True, talk=100), dict(wait=30, answered=True, talk=200),
                    dict(wait=40, answered=False)])
    for c in calls:
        c.started_at = c.started_at or T0
    days = by_day(calls, "Asia/Shanghai", Policy(service_level_seconds=20))
    assert len(days) == 1 and days[0]["queued"] == 3 and days[0]["service_level"] == round(1 / 3, 4)
    hours = by_hour(calls, "Asia/Shanghai")
    assert sum(hours) == 3 and len(hours) == 24
    [a] = by_agent(calls, Policy(wrapup_seconds=0))
    assert a == {"agent": "agent1001", "answered": 2, "asa_seconds": 20.0, "aht_seconds": 150.0}
