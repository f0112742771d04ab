"""Partner-facing endpoints (signed with HMAC instead of a desk session) and the desk's handoff of
a ticket to a partner. A refused request (bad signature, stale, replayed) is answered 401 and
audited; a malformed one gets 400 with the reason and writes nothing."""
from __future__ import annotations

import json
import logging
import time

from aiohttp import web
from pydantic import ValidationError

from core import access
from store.interop import InteropStore, Replay
from backoffice.tickets import TicketError, check_transition
from interop import signing
from interop.partners import handoff_payload
from interop.schema import InboundTicket, StatusUpdate, openapi

log = logging.getLogger("hotline.interop.api")


def _json(status: int, body: dict) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


def validation_message(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'body'}: {err['msg']}" for err in e.errors()[:5])


def add_routes(app: web.Application, ctl, *, me, refuse, audit, ticket, ok, json_error) -> None:
    partners = ctl.cfg.partners
    store = InteropStore(ctl.db, ctl.cfg.system.node.name)
    ctl.interop = store
    keys = dict(ctl.secrets.partner_secrets)
    cities = {c.id for c in ctl.cfg.cities}

    async def signed(request, model):
        """(partner, nonce, document) of a signed, well-formed request, or the web.Response refusing it."""
        body = await request.read()
        try:
            partner, nonce = signing.verify(request.headers, request.method, request.path, body, keys, time.time())
        except signing.SignatureError as e:
            await ctl.audit_log.audit(request.headers.get(signing.KEY, "")[:64], "partner", "interop_refused",
                                  target=request.path, allowed=False, detail=str(e))
            return _json(401, {"error": str(e)})
        try:
            doc = model.model_validate_json(body)
        except ValidationError as e:
            log.warning("malformed %s from %s: %s", request.path, partner, validation_message(e))
            return _json(400, {"error": validation_message(e)})
        return partner, nonce, doc

    async def answered(request, partner, nonce, work):
        key = request.headers.get(signing.IDEMPOTENCY) or None
        if key and len(key) > 128:
            return _json(400, {"error": "Idempotency-Key is at most 128 characters"})
        try:
            earlier = await store.seen_request(partner, nonce, key)
            if earlier is not None:
                return _json(earlier["status"], {**earlier["body"], "idempotent_replay": True})
            result = await work(key)
        except Replay:
            await ctl.audit_log.audit(partner, "partner", "interop_refused", target=request.path, allowed=False,
                                  detail=f"replayed nonce {nonce}")
            return _json(401, {"error": "replayed request (nonce already used)"})
        return _json(result["status"], result["body"])

    async def inbound_ticket(request):
        got = await signed(request, InboundTicket)
        if isinstance(got, web.Response):
            return got
        partner, nonce, doc = got
        if doc.city not in cities:
            return _json(400, {"error": f"city: unknown city {doc.city!r}"})
        hours = ctl.ticket_rules.deadline(False)
        resp = await answered(request, partner, nonce, lambda key: store.receive_ticket(
            partner, nonce, key, request.path, doc, hours))
        if resp.status == 201:
            await ctl.audit_log.audit(partner, "partner", "ticket_received", target=doc.partner_ticket_id,
                                  detail=f"city={doc.city} callback={doc.consent}")
        return resp

    async def inbound_status(request):
        got = await signed(request, StatusUpdate)
        if isinstance(got, web.Response):
            return got
        partner, nonce, doc = got
        return await answered(request, partner, nonce, lambda key: store.receive_status(
            partner, nonce, key, request.path, doc))

    async def spec(request):
        return _json(200, openapi())

    def payload_for(partner_id: str, consent: bool):
        return lambda facts: handoff_payload(partners[partner_id], facts, consent)

    async def hand_off(request):
        t = await ticket(request)
        p = me(request)
        if not access.may_handle_call(p, t["agent"], t["city"]):
            await refuse(request, "handoff", t["call_id"] or "", str(t["id"]), "not your ticket")
        try:
            body = await request.json()
        except ValueError:
            return json_error(400, "body is not valid JSON")
        partner = body.get("partner") if isinstance(body, dict) else None
        if not isinstance(partner, str) or partner not in partners:   # a list or object was a 500 (unhashable)
            return json_error(400, f"partner must be one of {', '.join(partners)}")
        consent = body.get("consent")
        if not isinstance(consent, bool):
            return json_error(400, "consent must be true or false: did the caller agree that their number and "
                                   "name go to the partner?")
        outcome = f"referred_{partner}" if f"referred_{partner}" in ctl.ticket_rules.outcomes else "referred_other"
        try:
            check_transition({**t, "outcome": outcome}, "referred")
        except TicketError as e:
            return json_error(409, str(e))
        h = await store.hand_off(t["id"], partner, consent, p.user_id, payload_for(partner, consent), outcome,
                                 expect_status=t["status"])
        if h is None:
            return json_error(409, "the ticket changed meanwhile; reload it")
        await audit(request, "handoff", t["call_id"] or "", str(t["id"]), f"{partner} consent={consent}")
        return ok(h)

    async def handoffs(request):
        t = await ticket(request)
        return ok(await store.handoffs(ticket_id=t["id"]))

    app.router.add_post("/api/interop/v1/tickets", inbound_ticket)
    app.router.add_post("/api/interop/v1/status", inbound_status)
    app.router.add_get("/api/interop/openapi.json", spec)
    app.router.add_post("/api/tickets/{ticket_id}/handoff", hand_off)
    app.router.add_get("/api/tickets/{ticket_id}/handoffs", handoffs)
