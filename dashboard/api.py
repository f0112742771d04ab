"""HTTP API of the controller. Binds to loopback by default (config/hotline.yaml: controller)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from aiohttp import web
from prometheus_client import generate_latest, CONTENT_TYPE_LATEST

from agents.service import AgentError

log = logging.getLogger("hotline.api")
PAUSE_REASONS = ("meal", "rest", "training", "meeting", "after_call_work", "outbound", "other")
STATIC = Path(__file__).resolve().parent / "static"


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def ok(data) -> web.Response:
    return web.json_response(data, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


@web.middleware
async def errors(request: web.Request, handler):
    try:
        return await handler(request)
    except AgentError as e:
        return json_error(e.status, str(e))
    except ConnectionError as e:
        return json_error(503, f"Asterisk unavailable: {e}")
    except TimeoutError:
        return json_error(504, "Asterisk did not answer in time")
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal error (logged)")


async def _body(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body is not valid JSON"}), content_type="application/json")
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be a JSON object"}), content_type="application/json")
    return data


def make_app(controller) -> web.Application:
    app = web.Application(middlewares=[errors], client_max_size=64 * 1024)
    ctl = controller

    async def status(request):
        return ok(ctl.status())

    async def calls(request):
        try:
            limit = min(max(int(request.query.get("limit", "50")), 1), 500)
        except ValueError:
            return json_error(400, "limit must be an integer")
        return ok(await ctl.store.recent_calls(limit, request.query.get("city") or None))

    async def call(request):
        rec = await ctl.store.call(request.match_info["call_id"])
        return ok(rec) if rec else json_error(404, "no such call")

    async def callbacks(request):
        status = request.query.get("status") or None
        if status and status not in ("pending", "dialing", "done", "failed", "cancelled"):
            return json_error(400, "status must be pending, dialing, done, failed or cancelled")
        return ok(await ctl.store.callbacks(status))

    async def agents(request):
        return ok([a.as_dict() for a in ctl.agents.agents.values()])

    async def agent_action(request):
        agent_id, action = request.match_info["agent_id"], request.match_info["action"]
        body = await _body(request)
        svc = ctl.agents
        if action == "login":
            ready = body.get("ready", False)
            if not isinstance(ready, bool):
                return json_error(400, "ready must be true or false")
            view = await svc.login(agent_id, ready=ready)
        elif action == "ready":
            view = await svc.ready(agent_id)
        elif action == "pause":
            reason = body.get("reason", "other")
            if reason not in PAUSE_REASONS:
                return json_error(400, f"reason must be one of {', '.join(PAUSE_REASONS)}")
            view = await svc.pause(agent_id, reason)
        elif action == "logout":
            view = await svc.logout(agent_id)
        else:
            return json_error(404, f"unknown action {action!r}")
        return ok(view.as_dict())

    async def metrics(request):
        return web.Response(body=generate_latest(ctl.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def index(request):
        return web.FileResponse(STATIC / "status.html")

    app.router.add_get("/", index)
    app.router.add_get("/api/status", status)
    app.router.add_get("/api/calls", calls)
    app.router.add_get("/api/calls/{call_id}", call)
    app.router.add_get("/api/callbacks", callbacks)
    app.router.add_get("/api/agents", agents)
    app.router.add_post("/api/agents/{agent_id}/{action}", agent_action)
    app.router.add_get("/metrics", metrics)
    return app
