"""Call control from the desk: hang up, mute, hold, transfer, and a supervisor's listen, whisper
and barge (ChanSpy). Only live calls; each action is checked against core.access and audited."""
from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, Field, create_model

from core import access
from core.transfers import transfer_target
from dashboard.common import audit, json_error, me, ok, refuse, services
from dashboard.common import body as read_body
from dashboard.schemas import Empty, Vocab
from dashboard.spec import ASTERISK, Op, operations

routes = web.RouteTableDef()
SPY = ("listen", "whisper", "barge")


class CallDone(BaseModel):
    call_id: str
    action: str


class TransferTarget(BaseModel):
    type: Literal["agent", "queue", "city", "external"]
    id: str = Field(description="agent id, queue id, city id, or a transfer number")


class Transfer(BaseModel):
    target: TransferTarget
    attended: bool = False


class Transferred(BaseModel):
    call_id: str
    action: Literal["transfer"]
    target: str
    attended: bool


class Emergency(BaseModel):
    number: str = Field(description="a configured emergency number (routing.yaml emergency_numbers), e.g. 110 or 120")
    reason: str = Field("", max_length=500, description="why: the agent's judgement, a keyword alert")


class EmergencyStarted(BaseModel):
    call_id: str
    action: Literal["emergency"]
    number: str


class Spy(BaseModel):
    phone: Annotated[str, Vocab("sip_accounts")] = Field(
        None, description="the SIP phone to ring; required for the service token (a desk user's own phone is used "
                          "otherwise)")


def _spied(mode: str) -> type[BaseModel]:
    return create_model(f"Spied_{mode}", call_id=(str, ...), action=(Literal[mode], ...), phone=(str, ...))


LIVE_ERRORS = ("403", "404", "409") + ASTERISK
_SIMPLE = {"hangup": "the agent leaves the call", "mute": "mute the agent's leg", "unmute": "unmute the agent's leg",
           "hold": "caller to music, agent to quiet", "resume": "take the call off hold",
           "complete": "complete an attended transfer", "cancel": "cancel an attended transfer"}
DOC = {
    **{a: Op(f"call_{a}", summary, tag="calls", errors=LIVE_ERRORS, body=Empty, ok=CallDone, body_required=False,
             description="404 unless the call is live. The body is ignored (may be left out).")
       for a, summary in _SIMPLE.items()},
    "transfer": Op("call_transfer", "blind or attended transfer of a live call", tag="calls", errors=LIVE_ERRORS,
                   body=Transfer, ok=Transferred),
    "emergency": Op("call_emergency", "warm transfer of a caller in danger to 110/120: a conference, the agent stays on",
                    tag="calls", errors=("400",) + LIVE_ERRORS, body=Emergency, ok=EmergencyStarted,
                    description="The emergency service is dialled through the trunk and joins the caller and "
                                "agent when it answers; audited; the call's outcome becomes `emergency`."),
    **{mode: Op(f"call_{mode}", f"{mode} on a live call (ChanSpy)", tag="calls", errors=("400",) + LIVE_ERRORS,
                body=Spy, body_required=False, ok=_spied(mode)) for mode in SPY},
}


@routes.post("/api/calls/{call_id}/{action}")
@operations(DOC)
async def call_action(request):
    call_id, action = request.match_info["call_id"], request.match_info["action"]
    if action not in DOC:   # before any refusal: the audit row's action column holds our names only
        return json_error(404, f"unknown call action {action[:40]!r}")
    live = services(request).tracker.calls.get(call_id)
    if live is None or live.status == "ended":
        return json_error(404, "no such live call")
    body = await read_body(request)
    if action in SPY:
        return await _spy(request, live, action, body)
    if not access.may_handle_call(me(request), live.agent, live.city):
        await refuse(request, action, call_id, live.agent, "not your call")
    desk = services(request).desk
    if action == "transfer":
        return await _transfer(request, live, body)
    if action == "emergency":
        return await _emergency(request, live, body)
    steps = {"hangup": lambda: desk.hangup(live), "mute": lambda: desk.mute(live, True),
             "unmute": lambda: desk.mute(live, False), "hold": lambda: desk.hold(live),
             "resume": lambda: desk.resume(live), "complete": lambda: desk.complete_transfer(live),
             "cancel": lambda: desk.cancel_transfer(live)}
    if action not in steps:
        return json_error(404, f"unknown call action {action!r}")
    await steps[action]()
    await audit(request, action, call_id, live.agent)
    return ok({"call_id": call_id, "action": action})


async def _spy(request, live, action: str, body: dict) -> web.Response:
    p, svc = me(request), services(request)
    if not access.may_supervise_call(p, live.city):
        await refuse(request, action, live.call_id, live.agent, "supervising is for supervisors of the call's city")
    phone = p.user_id
    if p.user_id == access.SERVICE.user_id:   # the local operator names the phone to ring
        phone = body.get("phone", "")
        if phone not in svc.cfg.sip_accounts():
            return json_error(400, "phone must be one of our SIP accounts")
    await svc.desk.spy(live, action, phone, p.name)
    await audit(request, action, live.call_id, live.agent, f"phone {phone}")
    return ok({"call_id": live.call_id, "action": action, "phone": phone})


async def _transfer(request, live, body: dict) -> web.Response:
    target = body.get("target")
    if not isinstance(target, dict):
        return json_error(400, "target must be an object {type, id}")
    attended = body.get("attended", False)
    if not isinstance(attended, bool):
        return json_error(400, "attended must be true or false")
    svc = services(request)
    t = transfer_target(str(target.get("type", "")), str(target.get("id", "")), svc.cfg)
    await svc.desk.transfer(live, t, attended)
    await audit(request, "transfer", live.call_id, t.exten, "attended" if attended else "blind")
    return ok({"call_id": live.call_id, "action": "transfer", "target": t.exten, "attended": attended})


async def _emergency(request, live, body: dict) -> web.Response:
    number, reason = body.get("number"), body.get("reason", "")
    svc = services(request)
    if not isinstance(number, str) or number not in svc.cfg.routing.emergency_numbers:
        return json_error(400, f"number must be one of {sorted(svc.cfg.routing.emergency_numbers)}")
    if not isinstance(reason, str) or len(reason) > 500:
        return json_error(400, "reason must be text of at most 500 characters")
    await svc.desk.emergency(live, number)
    await audit(request, "emergency", live.call_id, number, reason)
    return ok({"call_id": live.call_id, "action": "emergency", "number": number})
