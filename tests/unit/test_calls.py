"""The call state machine as a pure function of AMI events."""
from callcenter.tracker import CallTracker
from core.calls import CallState

L = "1700000000.1"


def ev(name, ts, **kw):
    return {"Event": name, "Linkedid": L, "Timestamp": str(ts), **kw}


def story():
    return [
        ev("Newchannel", 100.0, Uniqueid=L, Channel="PJSIP/carrier-00000001", Context="hotline-trunk",
           Exten="083312348", CallerIDNum="13800001111"),
        ev("UserEvent", 100.1, UserEvent="HotlineCall", DID="083312348", City="leshan", Area="0833", Uniqueid=L),
        ev("UserEvent", 103.0, UserEvent="HotlineIVRInvalid", Menu="language", Input="*", Uniqueid=L),
        # one event for the queue step: the IVR path and the routing facts ride on it
        ev("UserEvent", 106.2, UserEvent="HotlineQueue", Queue="leshan", Target="city", Path="lang=zh/svc=consultation",
           Recording="20261125/x.wav", Open="1", Green="", Priority="0", Routed="106100", Uniqueid=L),
        ev("QueueCallerJoin", 108.0, Queue="leshan", Position="1", Uniqueid=L),
        ev("AgentCalled", 108.1, Queue="leshan", Interface="PJSIP/agent1001", Uniqueid=L),
        ev("AgentConnect", 111.0, Queue="leshan", Interface="PJSIP/agent1001", MemberName="agent1001",
           HoldTime="3", Uniqueid=L),
        # the agent's leg hangs up first: not the end of the call record
        ev("Hangup", 140.0, Uniqueid="1700000000.2", Cause="16"),
        ev("Hangup", 140.2, Uniqueid=L, Cause="16", **{"Cause-txt": "Normal Clearing"}),
    ]


def test_full_story():
    t = CallTracker()
    for e in story():
        t.apply(e)
    c = t.calls[L]
    assert (c.city, c.language, c.service, c.queue, c.agent) == ("leshan", "zh", "consultation", "leshan", "agent1001")
    assert c.ivr_path == "lang=zh/svc=consultation" and c.recording == "20261125/x.wav"
    assert c.green == "" and not c.after_hours
    assert c.status == "ended" and c.outcome == "answered" and c.hangup_cause == 16
    assert c.wait_seconds == 3.0 and c.talk_seconds == 29.2
    assert t.live() == []


def test_events_after_end_and_unrelated_events_are_ignored():
    t = CallTracker()
    for e in story():
        t.apply(e)
    assert t.apply(ev("AgentConnect", 150, Interface="PJSIP/agent1002")) is None
    assert t.calls[L].agent == "agent1001"
    assert t.apply({"Event": "Newchannel", "Linkedid": "9", "Uniqueid": "9", "Context": "hotline-agents"}) is None
    assert t.apply({"Event": "QueueCallerJoin", "Linkedid": "unknown"}) is None


def test_malformed_events_do_not_raise():
    t = CallTracker()
    t.apply(story()[0])
    for bad in [{}, {"Event": ""}, {"Linkedid": L}, {"Event": "Hangup", "Linkedid": L, "Uniqueid": L, "Cause": "x",
                                                    "Timestamp": "not-a-number"},
                {"Event": "UserEvent", "Linkedid": L, "UserEvent": "HotlineQueue", "Path": "=/==/lang=", "Open": "x"}]:
        t.apply(bad)
    c = t.calls[L]
    assert c.status == "ended" and c.hangup_cause is None and c.outcome == "ivr_hangup"


def test_overflow_path_green_and_after_hours():
    t = CallTracker()
    for e in story()[:3]:
        t.apply(e)
    t.apply(ev("UserEvent", 107.5, UserEvent="HotlineQueue", Queue="leshan", Path="lang=zh/svc=green/green=elderly",
               Service="consultation", Recording="r.wav", Open="0", Green="elderly", Uniqueid=L))
    t.apply(ev("UserEvent", 140, UserEvent="HotlineOverflow", From="province", Reason="TIMEOUT",
               Path="leshan:EMPTY/province:TIMEOUT", Uniqueid=L))
    c = t.calls[L]
    assert c.green == "elderly" and c.after_hours and c.service == "consultation"
    assert c.overflow == "leshan:EMPTY/province:TIMEOUT"


def test_abandon_in_queue():
    t = CallTracker()
    for e in story()[:5]:
        t.apply(e)
    t.apply(ev("QueueCallerAbandon", 130, Queue="leshan", HoldTime="22", Uniqueid=L))
    t.apply(ev("Hangup", 130.1, Uniqueid=L, Cause="16"))
    c = t.calls[L]
    assert c.outcome == "abandoned" and c.wait_seconds == 22.1 and c.talk_seconds is None


def test_adopt_from_channel_variables():
    t = CallTracker()
    c = t.adopt(L, "PJSIP/carrier-00000001", {
        "HOTLINE_DID": "02812348", "HOTLINE_CITY": "meishan", "HOTLINE_AREA": "028",
        "HOTLINE_IVR_PATH": "lang=bo/city=meishan/svc=mediation", "HOTLINE_QUEUE": "meishan",
        "HOTLINE_QUEUED_AT": "200", "HOTLINE_ANSWERED_AT": "230", "HOTLINE_AGENT": "agent1003",
        "HOTLINE_START": "190", "CALLERID(num)": "139"}, bridged_to="PJSIP/agent1003-0000000a")
    assert (c.city, c.language, c.service, c.agent, c.status) == ("meishan", "bo", "mediation", "agent1003", "talking")
    assert c.wait_seconds == 30.0 and c.started_at == 190.0
    t.apply({"Event": "Hangup", "Linkedid": L, "Uniqueid": L, "Cause": "16", "Timestamp": "260"})
    assert c.talk_seconds == 30.0


def test_a_call_that_ends_while_the_controller_resynchronises_is_not_brought_back():
    """The controller lists the live channels, then asks each for its variables; a call can hang up in
    between. Its Hangup (the channel's variables gone, the listing stale) must win over the adoption."""
    vars_ = {"HOTLINE_CITY": "leshan", "HOTLINE_QUEUED_AT": "200", "CALLERID(num)": "139"}
    # known from the store (in progress at the kill): its Hangup arrives before its adoption
    t = CallTracker()
    t.calls[L] = CallState(call_id=L, city="leshan", status="queued", queued_at=200.0, started_at=190.0)
    t.apply({"Event": "Hangup", "Linkedid": L, "Uniqueid": L, "Cause": "16", "Timestamp": "240"})
    c = t.adopt(L, "PJSIP/carrier-00000001", {}, bridged_to="PJSIP/agent1003-0000000a")
    assert (c.status, c.ended_at, c.agent) == ("ended", 240.0, "") and t.live() == []
    # unknown to the store (it began while the controller was down): its Hangup is kept for the adoption
    t = CallTracker()
    t.apply({"Event": "Hangup", "Linkedid": L, "Uniqueid": L, "Cause": "16", "Timestamp": "240"})
    c = t.adopt(L, "PJSIP/carrier-00000001", vars_, bridged_to="PJSIP/agent1003-0000000a")
    assert (c.status, c.ended_at, c.outcome, c.agent) == ("ended", 240.0, "answered", "agent1003")
    assert t.live() == []
    # an agent leg's Hangup is not the call's
    t = CallTracker()
    t.apply({"Event": "Hangup", "Linkedid": L, "Uniqueid": "1700000000.2", "Cause": "16", "Timestamp": "240"})
    assert t.adopt(L, "PJSIP/carrier-00000001", vars_).status == "queued"


def test_agent_channel_names():
    from callcenter.tracker import _agent_from
    assert _agent_from("PJSIP/agent1001-0000002a") == "agent1001"
    assert _agent_from("PJSIP/agent1001") == "agent1001"
    assert _agent_from("PJSIP/agent-x") == "agent-x"


def test_voicemail_message_file():
    from callcenter.voicemail import parse_message
    text = """;
; Message Information file
;
[message]
origmailbox=leshan
context=hotline-voicemail
callerchan=PJSIP/carrier-00000000
callerid="13944440022" <13944440022>
origdate=Wed Nov 25 12:33:55 PM UTC 2026
origtime=1795610035
msg_id=1795610035-00000000
duration=12
"""
    m = parse_message(text, "/srv/hotline/x/spool/voicemail/hotline/leshan/INBOX/msg0000")
    assert (m.mailbox, m.caller_number, m.msg_id, m.duration) == ("leshan", "13944440022", "1795610035-00000000", 12)
    assert parse_message("not an ini file", "p") is None
    assert parse_message("[message]\norigtime=soon\n", "p") is None


def test_cdr_row_rebuilds_a_call():
    from callcenter.cdr import parse_row
    row = ["", "13988880001", "s", "hotline-wf-standard-leshan", '"" <13988880001>', "PJSIP/carrier-0000001e",
           "PJSIP/agent1001-0000001f", "Queue", "leshan,,,,60", "2026-11-25 13:27:10", "2026-11-25 13:27:10",
           "2026-11-25 13:27:52", 42, 42, "ANSWERED", "DOCUMENTATION", "1795613230.30",
           "hl1|did=083312348|city=leshan|area=0833|lang=zh|path=lang=zh/svc=consultation|svc=consultation|"
           "queue=leshan|overflow=|green=|open=1|agent=agent1001|start=1795613230|queued=1795613238|"
           "answered=1795613240|rec=20261125/1795613230.30.wav|vm=|cause=16|end=1795613272"]
    c = parse_row(row)
    assert (c.call_id, c.caller_number, c.city, c.language, c.service, c.agent) == \
        ("1795613230.30", "13988880001", "leshan", "zh", "consultation", "agent1001")
    assert c.outcome == "answered" and c.wait_seconds == 2.0 and c.talk_seconds == 32.0 and c.hangup_cause == 16
    assert parse_row(row[:17] + ["someone else's userfield"]) is None and parse_row([]) is None


def test_a_caller_id_that_is_not_a_number_is_no_number():
    """Issue 16: the caller ID is the caller's or carrier's to set; with separators, control characters or
    dialplan syntax it is stored (and looked up, and logged) as no number at all, never as it came."""
    for raw, kept in (("+8613800001111", "+8613800001111"), ("13800001111", "13800001111"),
                      ("13800001111\r\nEvent: x", ""), ("1380000,1111", ""), ("138 0000 1111", ""),
                      ("anonymous", ""), ("${SHELL(id)}", ""), ("1+3800001111", "")):
        t = CallTracker()
        t.apply(ev("Newchannel", 100.0, Uniqueid=L, Channel="PJSIP/carrier-00000001", Context="hotline-trunk",
                   Exten="083312348", CallerIDNum=raw))
        assert t.calls[L].caller_number == kept, raw
        t.adopt(L, "PJSIP/carrier-00000001", {"CALLERID(num)": raw})
        assert t.calls[L].caller_number == kept, raw


def test_emergency_leg_answered_makes_the_outcome_emergency():
    """The 110/120 leg is originated (a linkedid of its own): its events name the call in `Call`."""
    t = CallTracker()
    for e in story()[:-2]:
        t.apply(e)
    other = "1700000099.7"
    ring = {"Event": "UserEvent", "Linkedid": other, "Timestamp": "120", "UserEvent": "HotlineEmergency",
            "Call": L, "Number": "110", "Status": "failed", "Reason": "BUSY"}
    # not reached: the outcome stays, but the desk hears why (issue 19: a busy 110 is not "dialling")
    assert t.apply({**ring, "Status": "ringing"}).emergency == "ringing:110"
    assert t.apply(ring).emergency == "failed:110:BUSY" and t.calls[L].outcome == "answered"
    assert t.calls[L].as_dict()["emergency"] == "failed:110:BUSY"
    assert t.apply({**ring, "Status": "bogus"}) is None
    assert t.apply({**ring, "Call": "no-such-call", "Status": "answered"}) is None
    assert t.apply({**ring, "Status": "answered", "Timestamp": "121"}).call_id == L
    for e in story()[-2:]:
        t.apply(e)
    c = t.calls[L]
    assert c.status == "ended" and c.outcome == "emergency" and c.transfers == "emergency:agent1001>110"


def _talking(t: CallTracker) -> CallState:
    for e in story():
        if e["Event"] == "Hangup":
            break
        t.apply(e)
    return t.calls[L]


def test_a_call_is_closed_unheard_only_when_two_listings_in_a_row_lack_it():
    t = CallTracker()
    _talking(t)
    listed = {"1700000000.2", L}                            # the agent's leg and the caller's channel
    assert t.unlisted(listed, {}, 150.0) == ({}, {})
    assert t.unlisted(set(), {}, 150.0) == ({}, {L: 150.0})             # missing once: a suspect
    assert t.unlisted(listed, {L: 150.0}, 210.0) == ({}, {})            # back: no longer one
    assert t.unlisted(set(), {L: 150.0}, 210.0) == ({L: 150.0}, {L: 150.0})
    # a bridge merged into an older call's: the caller's channel has that call's Linkedid, its own Uniqueid
    assert t.unlisted({L, "1699999999.7"}, {}, 150.0) == ({}, {})


def test_closing_unheard_keeps_what_was_followed_and_takes_the_end_from_the_cdr():
    t = CallTracker()
    c = _talking(t)
    c.transfers, c.agent = "blind:agent1001>agent-agent1002", "agent1002"
    cdr = CallState(call_id=L, agent="agent1001", city="leshan", voicemail="", hangup_cause=16,
                    hangup_cause_text="", ended_at=160.0, outcome="answered", status="ended", overflow="leshan:TIMEOUT")
    t.close_unheard(c, cdr, 150.0, "its end never reached the controller")
    assert c.status == "ended" and c.ended_at == 160.0 and c.hangup_cause == 16 and c.outcome == "answered"
    assert c.agent == "agent1002" and c.transfers.startswith("blind:")      # what we followed stays
    assert c.overflow == "leshan:TIMEOUT"                                   # what we had not heard is filled
    assert c.hangup_cause_text == "its end never reached the controller"
    # no CDR line (a callback's Local channel): ended when the first listing missed it
    t2 = CallTracker()
    q = t2.calls.setdefault("cb.1", CallState(call_id="cb.1", status="queued", queued_at=120.0))
    t2.close_unheard(q, None, 150.0, "its end never reached the controller")
    assert (q.status, q.outcome, q.ended_at, q.wait_seconds) == ("ended", "unobserved", 150.0, 30.0)
