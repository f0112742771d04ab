"""Pure pieces of the desk: transfer targets and their extensions, agent states with wrap-up, and
following the caller through transfers from AMI bridge and transfer events."""
import time
from pathlib import Path

import pytest

from agents.service import AgentView
from callcenter.tracker import CallTracker
from core.config import load_config
from core.transfers import TransferError, transfer_extensions, transfer_target

ROOT = Path(__file__).resolve().parents[2]
CFG = load_config(ROOT)
L = "1700000000.1"


@pytest.mark.parametrize("kind, value, exten", [
    ("agent", "agent1002", "agent-agent1002"), ("queue", "leshan-female", "queue-leshan-female"),
    ("city", "chengdu", "queue-chengdu"), ("external", "12345", "ext-12345"),
])
def test_transfer_targets(kind, value, exten):
    assert transfer_target(kind, value, CFG).exten == exten


@pytest.mark.parametrize("kind, value, message", [
    ("agent", "agent9999", "unknown agent 'agent9999'"), ("external", "110", "one of 12345"),
    ("queue", "nowhere", "a queue id"), ("phone", "1", "must be agent, queue, city or external"),
])
def test_bad_transfer_targets_say_what_is_allowed(kind, value, message):
    with pytest.raises(TransferError, match=message):
        transfer_target(kind, value, CFG)


def test_numeric_extensions_are_unique_digits_and_cover_every_target():
    ext = transfer_extensions(CFG)
    assert all(v.isdigit() for v in ext.values()) and len(set(ext.values())) == len(ext)
    assert ext["agent-agent1001"] == "6001" and ext["ext-12345"] == "912345"
    # no numeric alias is a prefix of another: DTMF collection stops at the first full match
    vals = sorted(ext.values())
    assert not any(b.startswith(a) for a, b in zip(vals, vals[1:]))


def test_agent_states_with_wrapup():
    a = AgentView("agent1001", "王律师", queues={"leshan"}, paused=False, wrapup=5)
    now = time.time()
    assert a.state_at(now) == "ready"
    a.last_call = now - 2
    assert a.state_at(now) == "wrap_up" and a.state_at(now + 3.1) == "ready"
    a.device = "in_use"
    assert a.state_at(now) == "on_call"
    a.device, a.paused = "not_in_use", True
    assert a.state_at(now) == "paused"
    a.queues.clear()
    assert a.state_at(now) == "logged_out"


def ev(name, ts, **kw):
    return {"Event": name, "Timestamp": str(ts), **kw}


def answered_call(t: CallTracker) -> None:
    for e in [
        ev("Newchannel", 100, Linkedid=L, Uniqueid=L, Channel="PJSIP/carrier-00000001", Context="hotline-trunk",
           Exten="083312348", CallerIDNum="13800001111"),
        ev("QueueCallerJoin", 101, Linkedid=L, Uniqueid=L, Queue="leshan"),
        ev("AgentCalled", 101.5, Linkedid=L, Uniqueid=L, Queue="leshan", Interface="PJSIP/agent1001"),
        ev("AgentConnect", 102, Linkedid=L, Uniqueid=L, Queue="leshan", Interface="PJSIP/agent1001",
           DestChannel="PJSIP/agent1001-00000002"),
        ev("BridgeEnter", 102.1, Linkedid=L, BridgeUniqueid="b1", Channel="PJSIP/agent1001-00000002"),
        ev("BridgeEnter", 102.2, Linkedid=L, BridgeUniqueid="b1", Channel="PJSIP/carrier-00000001"),
    ]:
        t.apply(e)


def test_ringing_then_connected():
    t = CallTracker()
    answered_call(t)
    c = t.calls[L]
    assert c.agent == "agent1001" and c.agent_channel == "PJSIP/agent1001-00000002" and c.ringing == ""


def test_attended_transfer_moves_the_call_to_the_second_agent():
    t = CallTracker()
    answered_call(t)
    for e in [
        # agent1001 leaves to consult; agent1002 is swapped into the caller's bridge on completion
        ev("BridgeLeave", 110, Linkedid=L, BridgeUniqueid="b1", Channel="PJSIP/agent1001-00000002"),
        ev("BridgeEnter", 115, Linkedid=L, BridgeUniqueid="b1", Channel="PJSIP/agent1002-00000004"),
        ev("AttendedTransfer", 115.1, Result="Success", OrigTransfererChannel="PJSIP/agent1001-00000002",
           OrigTransfererLinkedid=L, TransfereeLinkedid=L, TransferTargetChannel="PJSIP/agent1002-00000004"),
    ]:
        t.apply(e)
    c = t.calls[L]
    assert c.agent == "agent1002" and c.agent_channel == "PJSIP/agent1002-00000004"
    assert c.transfers == "attended:agent1001>agent1002"


def test_a_third_party_in_the_bridge_does_not_take_the_call():
    t = CallTracker()
    answered_call(t)
    t.apply(ev("BridgeEnter", 120, Linkedid=L, BridgeUniqueid="b1", Channel="PJSIP/interp2001-00000009"))
    assert t.calls[L].agent == "agent1001"


def test_failed_or_foreign_transfer_events_change_nothing():
    t = CallTracker()
    answered_call(t)
    t.apply(ev("BlindTransfer", 130, Result="Fail", TransfererChannel="PJSIP/agent1001-00000002",
               TransfererLinkedid=L, Extension="queue-leshan"))
    t.apply(ev("BlindTransfer", 131, Result="Success", TransfererLinkedid="other", Extension="x"))
    t.apply(ev("AttendedTransfer", 132))     # malformed: no channels at all
    assert t.calls[L].transfers == ""
