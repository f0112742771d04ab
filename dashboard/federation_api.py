"""Command-center node: city nodes' signed reports and ticket events in, the province's view out.
City nodes are trusted by their shared secret (`hotline federation trust`); a replayed request is
refused (nonces remembered for the signature window); events are stored once by (node, seq)."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from aiohttp import web
from pydantic import ValidationError

from store.secrets import load_or_create
from store.interop import FederationStore
from dashboard.interop_api import validation_message
from interop import signing
from interop.schema import CityReport, TicketEvent


def _json(status: int, body) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


def add_routes(app: web.Application, ctl, *, me, refuse, ok) -> None:
    fed = FederationStore(ctl.db)
    f = ctl.cfg.system.federation
    nonces: dict[str, float] = {}

    trusted: dict = {"mtime": None, "keys": {}}

    def keys() -> dict[str, str]:
        # a node trusted with `hotline federation trust` is accepted without a restart: re-read the
        # secrets file only when it changed (a stat per request, not a read and parse per report)
        path = ctl.cfg.state_dir / "secrets.json"
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime is None or mtime != trusted["mtime"]:
            trusted["keys"], trusted["mtime"] = load_or_create(ctl.cfg).federation_keys, mtime
        return trusted["keys"]

    async def signed(request, model):
        body = await request.read()
        now = time.time()
        try:
            node, nonce = signing.verify(request.headers, request.method, request.path, body, keys(), now)
        except signing.SignatureError as e:
            await ctl.audit_log.audit(request.headers.get(signing.KEY, "")[:64], "node", "federation_refused",
                                  target=request.path, allowed=False, detail=str(e))
            return _json(401, {"error": str(e)})
        for n, seen in list(nonces.items()):
            if now - seen > 2 * signing.WINDOW:
                nonces.pop(n, None)
        if f"{node}:{nonce}" in nonces:
            await ctl.audit_log.audit(node, "node", "federation_refused", target=request.path, allowed=False,
                                  detail=f"replayed nonce {nonce}")
            return _json(401, {"error": "replayed request (nonce already used)"})
        nonces[f"{node}:{nonce}"] = now
        try:
            doc = model.model_validate_json(body)
        except ValidationError as e:
            return _json(400, {"error": validation_message(e)})
        if doc.node != node:
            return _json(403, {"error": f"signed by {node} but says it is {doc.node}"})
        return doc

    async def report(request):
        if f.mode != "command":
            return _json(404, {"error": "this node is not the command center"})
        doc = await signed(request, CityReport)
        if isinstance(doc, web.Response):
            return doc
        await fed.report(doc)
        for listener in list(ctl.transcription_listeners):   # the live hub: wallboards update at once
            listener({"type": "federation", "node": doc.node, "cities": doc.cities})
        return _json(200, {"ok": True})

    async def event(request):
        if f.mode != "command":
            return _json(404, {"error": "this node is not the command center"})
        doc = await signed(request, TicketEvent)
        if isinstance(doc, web.Response):
            return doc
        new = await fed.event(doc)
        return _json(200, {"stored": new})

    async def nodes(request):
        p = me(request)
        if p.role == "agent":
            await refuse(request, "view_federation", why="the province view is for supervisors and the command center")
        now = datetime.now(timezone.utc)
        out = []
        for n in await fed.nodes():
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

    async def events(request):
        p = me(request)
        if not p.all_cities:
            await refuse(request, "view_federation", why="federated ticket events are for the command center")
        return ok(await fed.events(request.query.get("node") or None))

    app.router.add_post("/api/federation/v1/report", report)
    app.router.add_post("/api/federation/v1/events", event)
    app.router.add_get("/api/federation/nodes", nodes)
    app.router.add_get("/api/federation/events", events)
