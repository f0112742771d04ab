"""Agents: who may be managed, logging in and out of queues, pausing; and the audit log."""
from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from core import access
from dashboard.common import audit, json_error, limit, me, ok, refuse, services
from dashboard.common import body as read_body
from dashboard.schemas import PAUSE_REASONS, Agent, AuditEntry, Empty, PauseReason, Unset, WholeNumber
from dashboard.spec import ASTERISK, Op, operations, op

routes = web.RouteTableDef()


class Login(BaseModel):
    ready: bool = False


class Pause(BaseModel):
    reason: PauseReason = "other"


class AuditQuery(BaseModel):
    limit: WholeNumber = Field(None, description="1 to 1000, default 100")
    call_id: str = Unset


def _doc(action: str, summary: str, body: type[BaseModel]) -> Op:
    return Op(f"agent_{action}", summary, tag="agents", body=body, body_required=False, ok=Agent,
              errors=("403", "404") + (("409",) if action in ("ready", "pause") else ()) + ASTERISK)


@routes.get("/api/agents")
@op("agents", "the agents this principal may manage", tag="agents", ok=list[Agent])
async def agents(request):
    p, svc = me(request), services(request)
    return ok([a.as_dict() for a in svc.agents.agents.values()
               if access.may_manage_agent(p, a.id, svc.agent_cities.get(a.id, set()))])


@routes.post("/api/agents/{agent_id}/{action}")
@operations({"login": _doc("login", "log an agent into their queues (paused unless ready)", Login),
             "ready": _doc("ready", "take calls", Empty),
             "pause": _doc("pause", "stop taking calls, with a reason", Pause),
             "logout": _doc("logout", "leave every queue", Empty)})
async def agent_action(request):
    agent_id, action = request.match_info["agent_id"], request.match_info["action"]
    p, svc = me(request), services(request)
    if agent_id not in svc.agent_cities:
        return json_error(404, f"unknown agent {agent_id!r}")
    if not access.may_manage_agent(p, agent_id, svc.agent_cities[agent_id]):
        await refuse(request, f"agent_{action}"[:32], target=agent_id, why="not your desk or your city's agent")
    body = await read_body(request)
    if action == "login":
        ready = body.get("ready", False)
        if not isinstance(ready, bool):
            return json_error(400, "ready must be true or false")
        view = await svc.agents.login(agent_id, ready=ready)
    elif action == "ready":
        view = await svc.agents.ready(agent_id)
    elif action == "pause":
        reason = body.get("reason", "other")
        if reason not in PAUSE_REASONS:
            return json_error(400, f"reason must be one of {', '.join(PAUSE_REASONS)}")
        view = await svc.agents.pause(agent_id, reason)
    elif action == "logout":
        view = await svc.agents.logout(agent_id)
    else:
        return json_error(404, f"unknown action {action!r}")
    if p.agent_id != agent_id:   # someone else changed this agent's state: keep a trace
        await audit(request, f"agent_{action}", target=agent_id)
    return ok(view.as_dict())


@routes.get("/api/audit")
@op("audit", "the audit log, newest first", tag="agents", errors=("400", "403"), query=AuditQuery,
    ok=list[AuditEntry])
async def audit_log(request):
    p, svc = me(request), services(request)
    if p.role == "agent":
        await refuse(request, "view_audit", why="the audit log is for supervisors")
    n = limit(request, 100, 1000)
    rows = await svc.audit_log.audit_entries(n if p.all_cities else 1000, request.query.get("call_id") or None)
    if not p.all_cities:
        scope = {p.user_id} | {a for a, cities in svc.agent_cities.items() if cities & p.cities}
        rows = [r for r in rows if r["user_id"] in scope or r["target"] in scope][:n]
    return ok(rows)
