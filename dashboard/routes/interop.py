"""Partner-facing endpoints (signed with HMAC instead of a desk session) and the desk's handoff of
a ticket to a partner. A refused request (bad signature, stale, replayed) is answered 401 and
audited; a malformed one gets 400 with the reason and writes nothing. The signed endpoints have
their own document, generated from interop/schema.py, at /api/interop/openapi.json."""
from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from backoffice.tickets import TicketError, check_transition
from core import access
from dashboard.common import audit, audit_refusal, json_error, me, ok, refuse, services, ticket_row
from dashboard.schemas import Handoff, Vocab
from dashboard.spec import op
from interop import signing
from interop.partners import handoff_payload
from interop.schema import InboundTicket, StatusUpdate, openapi
from store.interop import Replay

log = logging.getLogger("hotline.interop.api")
routes = web.RouteTableDef()


class HandoffRequest(BaseModel):
    partner: Annotated[str, Vocab("partners")]
    consent: bool = Field(description="the caller agreed that their number and name go to the partner")


class InteropDocument(BaseModel):
    openapi: Any
    info: Any
    paths: Any


def _json(status: int, body: dict) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


def validation_message(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'body'}: {err['msg']}" for err in e.errors()[:5])


async def signed(request, model):
    """(partner, nonce, document) of a signed, well-formed request, or the web.Response refusing it."""
    svc = services(request)
    body = await request.read()
    try:
        partner, nonce = signing.verify(request.headers, request.method, request.path, body, svc.partner_keys,
                                        time.time())
    except signing.SignatureError as e:
        sender = signing.header_text(request.headers.get(signing.KEY, ""))[:64]
        await audit_refusal(request, "interop_refused", sender, "partner", request.path, str(e))
        return _json(401, {"error": str(e)})
    try:
        doc = model.model_validate_json(body)
    except ValidationError as e:
        log.warning("malformed %s from %s: %s", request.path, partner, validation_message(e))
        return _json(400, {"error": validation_message(e)})
    return partner, nonce, doc


async def answered(request, partner, nonce, work):
    """The stored answer to a request seen before (same nonce or Idempotency-Key), else ``work``'s."""
    svc = services(request)
    key = request.headers.get(signing.IDEMPOTENCY) or None
    if key and len(key) > 128:
        return _json(400, {"error": "Idempotency-Key is at most 128 characters"})
    try:
        earlier = await svc.interop.seen_request(partner, nonce, key)
        if earlier is not None:
            return _json(earlier["status"], {**earlier["body"], "idempotent_replay": True})
        result = await work(key)
    except Replay:
        await audit_refusal(request, "interop_refused", partner, "partner", request.path, f"replayed nonce {nonce}")
        return _json(401, {"error": "replayed request (nonce already used)"})
    return _json(result["status"], result["body"])


@routes.post("/api/interop/v1/tickets")
async def inbound_ticket(request):
    got = await signed(request, InboundTicket)
    if isinstance(got, web.Response):
        return got
    partner, nonce, doc = got
    svc = services(request)
    if doc.city not in svc.city_ids:
        return _json(400, {"error": f"city: unknown city {doc.city!r}"})
    hours = svc.ticket_rules.deadline(False)
    resp = await answered(request, partner, nonce, lambda key: svc.interop.receive_ticket(
        partner, nonce, key, request.path, doc, hours))
    if resp.status == 201:
        await svc.audit_log.audit(partner, "partner", "ticket_received", target=doc.partner_ticket_id,
                              detail=f"city={doc.city} callback={doc.consent}")
    return resp


@routes.post("/api/interop/v1/status")
async def inbound_status(request):
    got = await signed(request, StatusUpdate)
    if isinstance(got, web.Response):
        return got
    partner, nonce, doc = got
    return await answered(request, partner, nonce, lambda key: services(request).interop.receive_status(
        partner, nonce, key, request.path, doc))


@routes.get("/api/interop/openapi.json")
@op("interop_openapi", "the signed partner and city-node API's document", tag="interop", public=True,
    ok=InteropDocument)
async def spec(request):
    return _json(200, openapi())


@routes.post("/api/tickets/{ticket_id}/handoff")
@op("handoff", "hand a ticket to a partner hotline", tag="interop", errors=("403", "404", "409"),
    body=HandoffRequest, ok=Handoff)
async def hand_off(request):
    t, p, svc = await ticket_row(request), me(request), services(request)
    if not access.may_handle_call(p, t["agent"], t["city"]):
        await refuse(request, "handoff", t["call_id"] or "", str(t["id"]), "not your ticket")
    try:
        body = await request.json()
    except ValueError:
        return json_error(400, "body is not valid JSON")
    partner = body.get("partner") if isinstance(body, dict) else None
    if not isinstance(partner, str) or partner not in svc.partners:   # a list or object was a 500 (unhashable)
        return json_error(400, f"partner must be one of {', '.join(svc.partners)}")
    consent = body.get("consent")
    if not isinstance(consent, bool):
        return json_error(400, "consent must be true or false: did the caller agree that their number and "
                               "name go to the partner?")
    outcome = f"referred_{partner}" if f"referred_{partner}" in svc.ticket_rules.outcomes else "referred_other"
    try:
        check_transition({**t, "outcome": outcome}, "referred")
    except TicketError as e:
        return json_error(409, str(e))
    h = await svc.interop.hand_off(t["id"], partner, consent, p.user_id,
                                   lambda facts: handoff_payload(svc.partners[partner], facts, consent), outcome,
                                   expect_status=t["status"])
    if h is None:
        return json_error(409, "the ticket changed meanwhile; reload it")
    await audit(request, "handoff", t["call_id"] or "", str(t["id"]), f"{partner} consent={consent}")
    return ok(h)


@routes.get("/api/tickets/{ticket_id}/handoffs")
@op("handoffs", "a ticket's handoffs", tag="interop", errors=("400", "403", "404"), ok=list[Handoff])
async def handoffs(request):
    t = await ticket_row(request)
    return ok(await services(request).interop.handoffs(ticket_id=t["id"]))
