"""What every route module shares: the answer shapes, the error middleware, the request body, the
principal and the audit trail, and the rows addressed by a path parameter (with their access check)."""
from __future__ import annotations

import json
import logging
from datetime import date, datetime

from aiohttp import web

from agents.desk import DeskError
from agents.service import AgentError
from backoffice import stats
from core import access
from core.text import unstorable
from core.transfers import TransferError
from dashboard.auth import PRINCIPAL, Auth
from dashboard.services import SERVICES, ApiServices
from store.models import ID_MAX

log = logging.getLogger("hotline.api")


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def ok(data, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


def bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


def not_found(message: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


class Forbidden(Exception):
    pass


@web.middleware
async def errors(request: web.Request, handler):
    try:
        return await handler(request)
    except (AgentError, DeskError) as e:
        return json_error(e.status, str(e))
    except TransferError as e:
        return json_error(400, str(e))
    except Forbidden as e:
        return json_error(403, str(e))
    except ConnectionError as e:
        return json_error(503, f"Asterisk unavailable: {e}")
    except TimeoutError:
        return json_error(504, "Asterisk did not answer in time")
    except web.HTTPException as e:
        # aiohttp's own refusals (no such route, wrong method, body too large) are text/plain:
        # under /api/ they get the API's error shape like every other error
        if request.path.startswith("/api/") and e.status >= 400 and e.content_type != "application/json":
            resp = json_error(e.status, e.reason)
            if "Allow" in e.headers:   # 405
                resp.headers["Allow"] = e.headers["Allow"]
            return resp
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal error (logged)")


def services(request: web.Request) -> ApiServices:
    return request.app[SERVICES]


def me(request: web.Request) -> access.Principal:
    return request[PRINCIPAL]


# bodies whose handler refuses unstorable text itself, because the refusal must be audited (a login)
AUDITS_OWN_INPUT = ("/api/login",)


def unstorable_refused(where: str) -> web.HTTPBadRequest:
    return bad_request(f"{where}: text must not contain NUL characters or unpaired surrogates")


@web.middleware
async def storable_input(request: web.Request, handler):
    """The path, the query parameters and the one header that is stored as sent (a partner's
    Idempotency-Key, which is not signed) must be text a database can store: 400 otherwise. JSON bodies
    are checked where they are read (``body``, the signed documents' models)."""
    where = unstorable(request.path, "path") or next(
        (f"query.{k}" for k, v in request.query.items() if unstorable(k) or unstorable(v)), None) \
        or unstorable(request.headers.get("Idempotency-Key", ""), "header Idempotency-Key")
    if where:
        raise unstorable_refused(where)
    return await handler(request)


async def body(request: web.Request) -> dict:
    """The JSON object sent, {} when there is no body; 400 for anything else."""
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request("body is not valid JSON")
    if not isinstance(data, dict):
        raise bad_request("body must be a JSON object")
    where = unstorable(data)
    if where and request.path not in AUDITS_OWN_INPUT:
        raise unstorable_refused(where)
    return data


async def refuse(request: web.Request, action: str, call_id: str = "", target: str = "", why: str = "") -> None:
    """Audit the refusal, then answer 403."""
    p = me(request)
    await services(request).audit_log.audit(p.user_id, p.role, action, call_id, target, allowed=False, detail=why)
    raise Forbidden(why)


async def audit_refusal(request: web.Request, action: str, user_id: str = "", role: str = "", target: str = "",
                        detail: str = "") -> None:
    """Audit a refusal that needs no login to cause (a login, a signed request): folded into one row per
    action, client address and minute (store/auth.py AuditLog.refused)."""
    await services(request).audit_log.refused(action, request.app[AUTH].client(request), user_id=user_id, role=role,
                                              target=target, detail=detail)


async def audit(request: web.Request, action: str, call_id: str = "", target: str = "", detail: str = "") -> None:
    p = me(request)
    await services(request).audit_log.audit(p.user_id, p.role, action, call_id, target, allowed=True, detail=detail)


def limit(request: web.Request, default: int, most: int) -> int:
    """The ``limit`` query parameter clamped to 1..most; 400 when it is not a whole number."""
    try:
        return min(max(int(request.query.get("limit", str(default))), 1), most)
    except ValueError:
        raise bad_request("limit must be an integer")


async def by_id(request: web.Request, key: str, what: str, getter) -> dict:
    """The row named by a numeric path parameter, or a clear 400/404."""
    try:
        row_id = int(request.match_info[key])
    except ValueError:
        raise bad_request(f"{what} id must be a number")
    # an id past the INTEGER column's range was a 500 (the database driver refused to bind it)
    row = await getter(row_id) if 0 < row_id <= ID_MAX else None
    if row is None:
        raise not_found(f"no such {what}")
    return row


async def call_record(request: web.Request) -> dict:
    """The call record named by {call_id}, if this principal may see it."""
    call_id = request.match_info["call_id"]
    rec = await services(request).call_records.call(call_id)
    if rec is None:
        raise not_found("no such call")
    if not access.may_view_call(me(request), rec["agent"], rec["city"]):
        await refuse(request, "view_call", call_id, why="not your call")
    return rec


async def ticket_row(request: web.Request) -> dict:
    """The ticket named by {ticket_id}, if this principal may see it."""
    t = await by_id(request, "ticket_id", "ticket", services(request).tickets.get)
    if not access.may_view_call(me(request), t["agent"], t["city"]):
        await refuse(request, "view_ticket", t["call_id"] or "", str(t["id"]), "not your ticket")
    return t


async def city_param(request: web.Request, action: str) -> str | None:
    """The ``city`` query parameter: None when left out, else one of our cities that this principal
    sees (400 for another string, 403 and audited for a city outside theirs)."""
    city = request.query.get("city") or None
    if city and city not in services(request).city_ids:
        raise bad_request(f"unknown city {city!r}")
    if city and not access.sees_city(me(request), city):
        await refuse(request, action, target=city, why=f"{city} is outside your cities")
    return city


def parse_date(value) -> date:
    """A date parameter (YYYY-MM-DD within stats' range), or a 400 that names the range."""
    try:
        return stats.parse_day(str(value))
    except ValueError:
        raise bad_request(f"date must be YYYY-MM-DD (from {stats.FIRST_DAY} to {stats.LAST_DAY}), got {value!r}")


def date_param(request: web.Request, name: str, required: bool = True) -> date | None:
    """A date query parameter (YYYY-MM-DD); None when optional and left out; else a 400 naming it."""
    value = request.query.get(name, "")
    if not value and not required:
        return None
    try:
        return stats.parse_day(value)
    except ValueError:
        raise bad_request(f"{name} must be a date YYYY-MM-DD ({stats.FIRST_DAY} to {stats.LAST_DAY})")


def timestamp(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


AUTH = web.AppKey("auth", Auth)            # desk logins and sessions
SPEC = web.AppKey("openapi", dict)         # the generated OpenAPI document
