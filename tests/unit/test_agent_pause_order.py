"""Our own QueuePause's events may now come before its response: the events have an AMI session of
their own (callcenter/asterisk/ami.py). A pause half-applied while ours is on its way is ours, not a
stray one from a phone's feature code to be aligned across the queues (an extra QueuePause each)."""
import asyncio

from agents.service import AgentService
from core.config import load_config

CFG = load_config()


class HeldAmi:
    """Answers every action, a QueuePause only once ``release`` is set (as a busy Asterisk would)."""

    def __init__(self):
        self.actions: list[dict] = []
        self.release = asyncio.Event()

    async def action(self, act, timeout=10.0, as_list=False):
        self.actions.append(act)
        if act["Action"] == "QueuePause":
            await self.release.wait()
        return {"Response": "Success"}


def member_event(name, agent_id, queue, paused):
    return {"Event": name, "Queue": queue, "MemberName": agent_id, "Interface": f"PJSIP/{agent_id}",
            "Paused": "1" if paused else "0", "PausedReason": "lunch" if paused else ""}


def pauses(ami):
    return [a for a in ami.actions if a["Action"] == "QueuePause"]


async def test_our_pause_half_applied_is_not_aligned_a_stray_one_is():
    ami = HeldAmi()
    svc = AgentService(CFG, ami, store=None)
    view = next(a for a in svc.agents.values() if a.home)
    agent = view
    queues = sorted(view.home)[:1] + ["spare-queue"]
    view.queues = set(queues)
    view.paused, view.paused_in = False, {q: False for q in queues}

    ours = asyncio.create_task(svc._set_paused(view, True, "lunch"))
    await asyncio.sleep(0)
    assert len(pauses(ami)) == 1
    # its first queue's event, before the response
    svc.apply_event(member_event("QueueMemberPause", agent.id, queues[0], True))
    await asyncio.sleep(0.01)
    assert len(pauses(ami)) == 1, "our own pause on its way was 'aligned' with an extra QueuePause"
    ami.release.set()
    await ours
    svc.apply_event(member_event("QueueMemberPause", agent.id, queues[1], True))   # its second, after
    await asyncio.sleep(0.01)
    assert view.paused and set(view.paused_in.values()) == {True} and len(pauses(ami)) == 1

    # a pause that reaches one queue only with none of ours on its way (a phone's feature code): aligned
    svc.apply_event(member_event("QueueMemberPause", agent.id, queues[0], False))
    await asyncio.sleep(0.01)
    assert len(pauses(ami)) == 2 and pauses(ami)[-1]["Paused"] == "false"


class TrailingAmi:
    """Answers at once; a QueuePause's events come later, on the other session: they arrive when the
    service waits for the events to catch up (``barrier``), or at the end if it never does."""

    def __init__(self):
        self.actions: list[dict] = []
        self.trailing: list[dict] = []
        self.svc: AgentService | None = None

    async def action(self, act, timeout=10.0, as_list=False):
        self.actions.append(act)
        if act["Action"] == "QueuePause":
            agent = act["Interface"].split("/", 1)[1]
            paused = act["Paused"] == "true"
            self.trailing += [{**member_event("QueueMemberPause", agent, q, paused), "PausedReason": act["Reason"]}
                              for q in sorted(self.svc.agents[agent].queues)]
        return {"Response": "Success"}

    async def barrier(self, timeout=10.0):
        self.deliver()

    def deliver(self):
        events, self.trailing = self.trailing, []
        for ev in events:
            self.svc.apply_event(ev)


async def test_our_pauses_events_trailing_their_response_do_not_undo_the_next_pause():
    """Found by the fresh-clone CI run (test_call_flow: ready, then a meal pause, left one queue ready):
    the ready's events came after its response and after the meal pause's, and were taken for a phone's
    half-applied pause, 'aligned' across the queues."""
    ami = TrailingAmi()
    svc = AgentService(CFG, ami, store=None)
    ami.svc = svc
    view = next(a for a in svc.agents.values() if len(a.home) >= 2)
    view.queues = set(sorted(view.home)[:2])
    view.paused, view.pause_reason, view.paused_in = True, "lunch", {q: True for q in view.queues}

    await svc._set_paused(view, False, "")          # ready
    await svc._set_paused(view, True, "meal")       # then a meal break
    ami.deliver()                                   # whatever never caught up arrives now
    await asyncio.sleep(0.01)
    assert [a["Paused"] for a in pauses(ami)] == ["false", "true"], "a late event of ours was 'aligned'"
    assert view.paused and view.pause_reason == "meal" and set(view.paused_in.values()) == {True}
