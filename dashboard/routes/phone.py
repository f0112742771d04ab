"""The desk's browser phone: its SIP account over secure WebSocket (for the agent's own session only)
and the call quality it measures (WebRTC stats), stored on the call record."""
from __future__ import annotations

import math

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from core import access
from dashboard.auth import SESSION
from dashboard.common import audit, call_record, json_error, me, ok, refuse, services
from dashboard.common import body as read_body
from dashboard.spec import op

routes = web.RouteTableDef()


class Phone(BaseModel):
    browser: bool = Field(description="the agent's phone is this desk (false: a SIP phone rings)")
    ws_url: str = ""
    uri: str = ""
    username: str = ""
    password: str = ""
    display_name: str = ""


class Quality(BaseModel):
    jitter_ms: float = Field(ge=0, le=60_000, description="worst inbound jitter seen so far")
    loss_pct: float = Field(ge=0, le=100, description="inbound packets lost of those expected so far")
    rtt_ms: float | None = Field(None, ge=0, le=60_000, description="round trip (RTCP), if measured")


class QualitySaved(Quality):
    call_id: str


def _edge_wss(cfg) -> bool:
    """Cluster mode with a WebSocket at the edge: browsers register at Kamailio like every phone."""
    c = cfg.system.cluster
    return bool(c.nodes) and c.kamailio.wss_port is not None


def ws_host(cfg) -> str:
    """The name the browser reaches the SIP WebSocket by; it must be one the certificate names
    (store/tls.py server_names): the first tls_name in production, else the SIP address; behind the
    edge, Kamailio's address (its certificate, callcenter/edge/runtime.py)."""
    if _edge_wss(cfg):
        return cfg.system.cluster.kamailio.address
    a = cfg.system.asterisk
    if a.tls_names:
        return a.tls_names[0]
    return "127.0.0.1" if a.sip_bind in ("0.0.0.0", "::") else a.sip_bind


def wss_origin(cfg) -> str | None:
    """The secure WebSocket's origin, for the pages' connect-src; none without browser phones."""
    port = cfg.system.cluster.kamailio.wss_port if _edge_wss(cfg) else cfg.system.asterisk.wss_port
    return f"wss://{ws_host(cfg)}:{port}" if port is not None else None


@routes.get("/api/phone")
@op("phone", "the desk's browser phone account (agents with a browser phone, logged in at the desk)",
    tag="agents", errors=("403",), ok=Phone)
async def phone(request):
    p, svc = me(request), services(request)
    if p.role != "agent" or not p.agent_id:
        await refuse(request, "phone_account", why="only an agent's desk has a phone")
    cfg = svc.cfg
    if p.agent_id not in cfg.system.phones.browser:
        return ok({"browser": False})
    if not (request.get(SESSION) or {}).get("csrf"):
        # the SIP password goes to the agent's own desk session, never to an API token's holder
        await refuse(request, "phone_account", target=p.agent_id, why="the browser phone's account is for a desk login")
    host = ws_host(cfg)
    await audit(request, "phone_account", target=p.agent_id)
    return ok({"browser": True, "ws_url": f"{wss_origin(cfg)}/ws", "uri": f"sip:{p.agent_id}@{host}",
               "username": p.agent_id, "password": svc.phone_passwords.get(p.agent_id, ""),
               "display_name": p.name})


@routes.put("/api/calls/{call_id}/quality")
@op("call_quality", "the browser phone's call quality so far (WebRTC stats)", tag="calls",
    errors=("403", "404"), body=Quality, ok=QualitySaved)
async def quality(request):
    rec, p, svc = await call_record(request), me(request), services(request)
    if p.agent_id is None or rec["agent"] != p.agent_id or not access.may_handle_call(p, rec["agent"], rec["city"]):
        await refuse(request, "call_quality", rec["call_id"], why="only the agent on the call reports its quality")
    try:
        q = Quality.model_validate(await read_body(request))
    except ValidationError as e:
        return json_error(400, "; ".join(f"{'.'.join(map(str, x['loc'])) or 'body'}: {x['msg']}" for x in e.errors()))
    if not all(math.isfinite(v) for v in (q.jitter_ms, q.loss_pct, q.rtt_ms or 0.0)):
        return json_error(400, "figures must be finite numbers")
    await svc.call_records.set_quality(rec["call_id"], q.jitter_ms, q.loss_pct, q.rtt_ms)
    return ok({"call_id": rec["call_id"], **q.model_dump()})
