"""Logging in and out, who is asking (with the desk's reference data), liveness, the API document."""
from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from core.workflow import all_queues
from dashboard.auth import COOKIE, SESSION, login_refused, unusable_login
from dashboard.common import AUTH, SPEC, audit_refusal, json_error, me, ok, services
from dashboard.common import body as read_body
from dashboard.schemas import PAUSE_REASONS, PauseReason, Principal
from dashboard.spec import op

routes = web.RouteTableDef()


class CityNames(BaseModel):
    zh: str
    en: str


class Me(BaseModel):
    user: Principal
    csrf: str
    pause_reasons: list[PauseReason]
    transfer_numbers: dict[str, str]
    wrapup_seconds: float
    cities: dict[str, CityNames]
    agents: dict[str, str]
    queues: list[str]
    ticket_categories: dict
    ticket_outcomes: dict
    keyword_topics: dict
    emergency_numbers: dict[str, str] = {}


class Health(BaseModel):
    up: bool
    ami_connected: bool
    resynced: bool
    database: bool
    down: list[str]


class Document(BaseModel):
    openapi: Any
    info: Any
    paths: Any
    components: Any


@routes.post("/api/login")
async def login(request):
    svc, auth = services(request), request.app[AUTH]
    # JSON only: a cross-site <form> can post urlencoded, multipart or text/plain, never JSON, so no other
    # site can log a browser in (login CSRF); a JSON body from another site needs CORS, which we do not allow
    if request.content_type != "application/json":
        return json_error(415, "send the login as JSON (Content-Type: application/json)")
    body = await read_body(request)    # not a JSON object: 400, and like any malformed request, not audited
    user, password = body.get("user"), body.get("password")
    # refusals are audited, folded per address and minute: no login is needed to cause one
    why = unusable_login(user, password)
    if why:
        await audit_refusal(request, "login", user if isinstance(user, str) else "", detail=why)
        return json_error(400, why)
    client = auth.client(request)
    try:
        principal, token, csrf = await auth.login(user, password, client)
    except PermissionError as e:
        await audit_refusal(request, "login", user, detail=str(e))
        return login_refused(e)
    await svc.audit_log.audit(principal.user_id, principal.role, "login", source=client)
    resp = ok({"user": principal.as_dict(), "csrf": csrf})
    resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                    max_age=int(auth.max_age), secure=request.secure)
    return resp


@routes.post("/api/logout")
async def logout(request):
    if request.get(SESSION):     # the session, or the API token the request came with; its sockets close
        await request.app[AUTH].revoke(request[SESSION]["hash"])
    resp = ok({"ok": True})
    resp.del_cookie(COOKIE, path="/")
    return resp


@routes.get("/api/me")
@op("whoami", "who is asking, with the desk's reference data", tag="session", ok=Me)
async def whoami(request):
    svc = services(request)
    cfg, rules = svc.cfg, svc.ticket_rules
    session = request.get(SESSION) or {}
    return ok({"user": me(request).as_dict(), "csrf": session.get("csrf", ""),
               "pause_reasons": PAUSE_REASONS, "transfer_numbers": cfg.routing.transfer_numbers,
               "emergency_numbers": cfg.routing.emergency_numbers,
               "wrapup_seconds": cfg.system.queues.wrapup_seconds,
               "cities": {c.id: {"zh": c.names.zh, "en": c.names.en} for c in cfg.cities},
               "agents": {a.id: a.name for a in cfg.agents},
               "queues": all_queues(cfg),
               "ticket_categories": {k: v.model_dump() for k, v in rules.categories.items()},
               "ticket_outcomes": {k: v.model_dump() for k, v in rules.outcomes.items()},
               "keyword_topics": {k: v.names for k, v in svc.keyword_rules.topics.items()}})


@routes.get("/api/health")
@op("health", "health: 200 when AMI and the database are up, 503 naming what is down (no login needed)",
    tag="session", public=True, ok=Health, errors=("503",))
async def health(request):
    svc = services(request)
    state = svc.health()
    db_error = await svc.db.ping()
    down = (["ami"] if not state["ami_connected"] else []) + (["database"] if db_error else [])
    body = {"up": not down, **state, "database": db_error is None, "down": down}
    if down:   # a load balancer or monitor takes the node out on the status alone
        # the database's own message (host, user) is for the log, not for an unauthenticated caller
        if db_error:
            logging.getLogger("hotline.api").warning("health: the database does not answer: %s", db_error)
        body["error"] = "down: " + ", ".join(down)
        return ok(body, status=503)
    return ok(body)


@routes.get("/api/openapi.json")
@op("openapi", "this document", tag="session", ok=Document)
async def openapi(request):
    return ok(request.app[SPEC])
