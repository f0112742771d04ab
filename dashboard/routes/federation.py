"""Command-center node: city nodes' signed reports and ticket events in, the province's view out.
City nodes are trusted by their shared secret (`hotline federation trust`); a replayed request is
refused (nonces kept in the database for twice the signature window, so also after a restart); events
are stored once by (node, seq)."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from aiohttp import web
from pydantic import BaseModel, ValidationError

from dashboard.common import audit_refusal, me, ok, refuse, services
from dashboard.routes.interop import validation_message
from dashboard.schemas import FederatedEvent, Unset
from dashboard.spec import op
from interop import signing
from interop.schema import CityReport, TicketEvent
from store.interop import Replay

routes = web.RouteTableDef()


class Nodes(BaseModel):
    mode: str
    stale_after_seconds: float
    nodes: list[dict]


class EventsQuery(BaseModel):
    node: str = Unset


def _json(status: int, body) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


async def signed(request, model):
    """The document of a signed, fresh, well-formed request from a trusted node, or the refusal."""
    svc = services(request)
    body = await request.read()
    try:
        node, nonce = signing.verify(request.headers, request.method, request.path, body, svc.federation_keys(),
                                     time.time())
    except signing.SignatureError as e:
        sender = signing.header_text(request.headers.get(signing.KEY, ""))[:64]
        await audit_refusal(request, "federation_refused", sender, "node", request.path, str(e))
        return _json(401, {"error": str(e)})
    try:
        # twice the window: a timestamp up to WINDOW ahead of our clock stays valid that long
        await svc.federation.use_nonce(node, nonce, 2 * signing.WINDOW)
    except Replay:
        await audit_refusal(request, "federation_refused", node, "node", request.path, f"replayed nonce {nonce}")
        return _json(401, {"error": "replayed request (nonce already used)"})
    try:
        doc = model.model_validate_json(body)
    except ValidationError as e:
        return _json(400, {"error": validation_message(e)})
    if doc.node != node:
        return _json(403, {"error": f"signed by {node} but says it is {doc.node}"})
    return doc


async def from_node(request, model):
    """What a city node sent the command center, or the refusal (404 on any other node)."""
    if services(request).cfg.system.federation.mode != "command":
        return _json(404, {"error": "this node is not the command center"})
    return await signed(request, model)


@routes.post("/api/federation/v1/report")
async def report(request):
    doc = await from_node(request, CityReport)
    if isinstance(doc, web.Response):
        return doc
    svc = services(request)
    await svc.federation.report(doc)
    # the live hub: wallboards update at once
    svc.events.broadcast({"type": "federation", "node": doc.node, "cities": doc.cities})
    return _json(200, {"ok": True})


@routes.post("/api/federation/v1/events")
async def event(request):
    doc = await from_node(request, TicketEvent)
    if isinstance(doc, web.Response):
        return doc
    return _json(200, {"stored": await services(request).federation.event(doc)})


@routes.get("/api/federation/nodes")
@op("federation_nodes", "city nodes' latest reports", tag="federation", errors=("403",), ok=Nodes)
async def nodes(request):
    p, svc = me(request), services(request)
    f = svc.cfg.system.federation
    if p.role == "agent":
        await refuse(request, "view_federation", why="the province view is for supervisors and the command center")
    now = datetime.now(timezone.utc)
    out = []
    for n in await svc.federation.nodes():
        if not p.all_cities and not (set(n["cities"]) & p.cities):
            continue
        seen = n["last_seen"]
        if seen is not None and seen.tzinfo is None:
            seen = seen.replace(tzinfo=timezone.utc)
        age = (now - seen).total_seconds() if seen else None
        n["last_seen"] = seen.isoformat() if seen else None
        n["seconds_since_report"] = round(age, 1) if age is not None else None
        n["stale"] = age is None or age > f.stale_seconds
        n["events_missing"] = max(0, n["events_sent"] - n["events_contiguous"])
        if not p.all_cities:   # a supervisor sees their own cities' queues only
            n["report"]["queues"] = {q: v for q, v in n["report"].get("queues", {}).items() if q in p.cities}
        out.append(n)
    return ok({"mode": f.mode, "stale_after_seconds": f.stale_seconds, "nodes": out})


@routes.get("/api/federation/events")
@op("federation_events", "ticket events received from city nodes", tag="federation", errors=("403",),
    query=EventsQuery, ok=list[FederatedEvent])
async def events(request):
    if not me(request).all_cities:
        await refuse(request, "view_federation", why="federated ticket events are for the command center")
    return ok(await services(request).federation.events(request.query.get("node") or None))
