"""HTTP API and pages of the controller. Binds to loopback by default (config/hotline.yaml: controller).

Every /api/ route except login and health needs a desk session (cookie + CSRF header) or a bearer
token (dashboard/auth.py); what a principal may see or do is core.access. Refusals are 403,
change nothing, and are written to the audit log like the actions themselves.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import generate_latest, CONTENT_TYPE_LATEST

from agents.desk import DeskError
from backoffice.appointments import BookingError, check_booking_time, centers_of, message, slot_times
from store.appointments import SlotFull
from store.reports import report_rows
from store.models import ID_MAX
from backoffice.tickets import (COMPLAINT_KINDS, COMPLAINT_SOURCES, COMPLAINT_STATUSES, STATUSES, TEXT_MAX,
                                TicketError, check_complaint_intake, check_complaint_move, check_edit,
                                check_transition)
from core.transfers import TransferError, transfer_target
from agents.service import AgentError
from core import access
from backoffice import legal_aid, stats
from core.workflow import all_queues
from dashboard.auth import COOKIE, PRINCIPAL, SESSION, Auth, login_refused
from dashboard.live import LiveHub
from dashboard.openapi import openapi
from dashboard.federation_api import add_routes as add_federation_routes
from dashboard.interop_api import add_routes as add_interop_routes
from dashboard.transcripts_api import JOB_STATUSES, REASON_MAX
from dashboard.transcripts_api import add_routes as add_transcript_routes
from dashboard.wallboard_api import add_routes as add_wallboard_routes

log = logging.getLogger("hotline.api")
PAUSE_REASONS = ("meal", "rest", "training", "meeting", "after_call_work", "outbound", "other")
CALLBACK_STATUSES = ("pending", "dialing", "done", "failed", "cancelled")
NOTES_MAX = 20000
HOUSEHOLD_MAX, INCOME_MAX = 1000, 1e12   # far past any real household; keeps the per-capita division finite
STATIC = Path(__file__).resolve().parent / "static"


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def ok(data) -> web.Response:
    return web.json_response(data, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


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


PRESCREEN_FIELDS = {f.name for f in dataclasses.fields(legal_aid.Facts)}
PLACE_FIELDS = {f.name for f in dataclasses.fields(legal_aid.Places)}


def prescreen_facts(body: dict, cities: set[str]) -> legal_aid.Facts:
    """JSON -> Facts, refusing unknown fields, matters and cities with a message that names them."""
    unknown = set(body) - PRESCREEN_FIELDS
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}; known: {sorted(PRESCREEN_FIELDS)}")
    if body.get("matter") not in legal_aid.Matter.__args__:
        raise ValueError(f"matter must be one of {', '.join(legal_aid.Matter.__args__)}")
    places = {} if body.get("places") is None else body["places"]   # false, "" or [] is no object
    if not isinstance(places, dict) or set(places) - PLACE_FIELDS:
        raise ValueError(f"places must be an object with keys among {sorted(PLACE_FIELDS)}")
    for where, city in [("city", body.get("city"))] + [(f"places.{k}", v) for k, v in places.items()]:
        if city not in cities and not (where != "city" and city == ""):
            raise ValueError(f"{where}: unknown city {city!r}")
    if "year" in body and body["year"] is None:   # null would replace the default year, and fail only sometimes
        raise ValueError("year must be an integer (or left out: the current standards)")
    for key, kind in (("household_size", int), ("age", int), ("year", int)):
        if body.get(key) is not None and (not isinstance(body[key], kind) or isinstance(body[key], bool)):
            raise ValueError(f"{key} must be an integer")
    income = body.get("household_monthly_income")
    if income is not None and (not isinstance(income, (int, float)) or isinstance(income, bool)):
        raise ValueError("household_monthly_income must be a number (yuan per month)")
    # income / household size is float division: a huge integer was a 500 (OverflowError), NaN or
    # Infinity (accepted by the JSON parser) an answer that is not JSON; each fails this comparison
    if income is not None and not -INCOME_MAX <= income <= INCOME_MAX:
        raise ValueError(f"household_monthly_income must be a finite number of at most {INCOME_MAX:g}")
    if body.get("household_size") is not None and body["household_size"] > HOUSEHOLD_MAX:
        raise ValueError(f"household_size must be at most {HOUSEHOLD_MAX}")
    groups = body.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ValueError("groups must be a list of strings")
    for flag in ("facing_life_or_death", "blind_deaf_mute", "mental_illness_limited_control"):
        if not isinstance(body.get(flag, False), bool):
            raise ValueError(f"{flag} must be true or false")
    return legal_aid.Facts(**{**body, "groups": frozenset(groups), "places": legal_aid.Places(**places)})


def _ts(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


def make_app(controller, service_token: str = "") -> web.Application:
    ctl = controller
    auth = Auth(ctl.cfg, ctl.auth_store, service_token)
    hub = LiveHub(ctl)
    app = web.Application(middlewares=[errors, auth.middleware], client_max_size=64 * 1024)
    agent_cities = {a.id: set(a.queues) for a in ctl.cfg.agents}
    rules = ctl.cfg.legal_aid
    centers = centers_of(ctl.cfg)

    async def _by_id(request, key: str, what: str, getter) -> dict:
        """The row named by a numeric path parameter, or a clear 400/404."""
        try:
            row_id = int(request.match_info[key])
        except ValueError:
            raise web.HTTPBadRequest(text=json.dumps({"error": f"{what} id must be a number"}), content_type="application/json")
        # an id past the INTEGER column's range was a 500 (the database driver refused to bind it)
        row = await getter(row_id) if 0 < row_id <= ID_MAX else None
        if row is None:
            raise web.HTTPNotFound(text=json.dumps({"error": f"no such {what}"}), content_type="application/json")
        return row

    def me(request) -> access.Principal:
        return request[PRINCIPAL]

    async def refuse(request, action: str, call_id: str = "", target: str = "", why: str = "") -> None:
        p = me(request)
        await ctl.audit_log.audit(p.user_id, p.role, action, call_id, target, allowed=False, detail=why)
        raise Forbidden(why)

    async def audit(request, action: str, call_id: str = "", target: str = "", detail: str = "") -> None:
        p = me(request)
        await ctl.audit_log.audit(p.user_id, p.role, action, call_id, target, allowed=True, detail=detail)

    # ---- session
    async def login(request):
        body = await _body(request)
        user, password = body.get("user"), body.get("password")
        if not isinstance(user, str) or not isinstance(password, str) or not user or not password:
            return json_error(400, "user and password are required strings")
        try:
            principal, token, csrf = await auth.login(user, password, request.remote or "")
        except PermissionError as e:
            await ctl.audit_log.audit(user[:64], "", "login", allowed=False, detail=f"{e} (from {request.remote})")
            return login_refused(e)
        await ctl.audit_log.audit(principal.user_id, principal.role, "login")
        resp = ok({"user": principal.as_dict(), "csrf": csrf})
        resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                        max_age=int(auth.max_age), secure=request.secure)
        return resp

    async def logout(request):
        if request.get(SESSION):
            await ctl.auth_store.revoke_token(request[SESSION]["hash"])
        resp = ok({"ok": True})
        resp.del_cookie(COOKIE, path="/")
        return resp

    async def whoami(request):
        session = request.get(SESSION) or {}
        return ok({"user": me(request).as_dict(), "csrf": session.get("csrf", ""),
                   "pause_reasons": PAUSE_REASONS, "transfer_numbers": ctl.cfg.routing.transfer_numbers,
                   "wrapup_seconds": ctl.cfg.system.queues.wrapup_seconds,
                   "cities": {c.id: {"zh": c.names.zh, "en": c.names.en} for c in ctl.cfg.cities},
                   "agents": {a.id: a.name for a in ctl.cfg.agents},
                   "queues": all_queues(ctl.cfg),
                   "ticket_categories": {k: v.model_dump() for k, v in ctl.ticket_rules.categories.items()},
                   "ticket_outcomes": {k: v.model_dump() for k, v in ctl.ticket_rules.outcomes.items()},
                   "keyword_topics": {k: v.names for k, v in ctl.keyword_rules.topics.items()}})

    async def health(request):
        return ok({"up": True, "ami_connected": ctl.ami.connected.is_set(), "resynced": ctl.resynced.is_set()})

    # ---- views
    async def status(request):
        p = me(request)
        if p.role == "agent":
            await refuse(request, "view_status", why="the status board is for supervisors and the command center")
        st = ctl.status()
        if not p.all_cities:
            st["calls_in_progress"] = [c for c in st["calls_in_progress"] if access.sees_city(p, c["city"])]
            st["agents"] = [a for a in st["agents"] if p.cities & agent_cities.get(a["id"], set())]
        return ok(st)

    async def calls(request):
        try:
            limit = min(max(int(request.query.get("limit", "50")), 1), 500)
        except ValueError:
            return json_error(400, "limit must be an integer")
        p = me(request)
        city = request.query.get("city") or None
        if city and not access.sees_city(p, city):
            await refuse(request, "view_calls", target=city, why=f"{city} is outside your cities")
        rows = await ctl.call_records.recent_calls(limit if p.all_cities else 500, city)
        rows = [r for r in rows if access.may_view_call(p, r["agent"], r["city"])][:limit]
        return ok(rows)

    async def _record(request) -> dict:
        call_id = request.match_info["call_id"]
        rec = await ctl.call_records.call(call_id)
        if rec is None:
            raise web.HTTPNotFound(text=json.dumps({"error": "no such call"}), content_type="application/json")
        if not access.may_view_call(me(request), rec["agent"], rec["city"]):
            await refuse(request, "view_call", call_id, why="not your call")
        return rec

    async def call(request):
        return ok(await _record(request))

    async def call_history(request):
        """The screen-pop's memory: earlier calls from the same number, with their notes."""
        rec = await _record(request)
        p = me(request)
        tickets = [t for t in await ctl.tickets.search(caller=rec["caller_number"], limit=20)
                   if t["call_id"] == rec["call_id"] or access.sees_city(p, t["city"]) or p.agent_id == t["agent"]]
        # earlier calls to other cities are not this desk's business (same rule as the tickets)
        previous = [c for c in await ctl.call_records.caller_history(rec["caller_number"], rec["call_id"])
                    if access.sees_city(p, c["city"]) or p.agent_id == c["agent"]]
        return ok({"call_id": rec["call_id"], "previous_calls": previous, "tickets": tickets})

    async def notes(request):
        rec = await _record(request)
        if not access.may_handle_call(me(request), rec["agent"], rec["city"]):
            await refuse(request, "notes", rec["call_id"], why="not your call")
        body = await _body(request)
        text = body.get("notes")
        if not isinstance(text, str) or len(text) > NOTES_MAX:
            return json_error(400, f"notes must be a string of at most {NOTES_MAX} characters")
        await ctl.call_records.set_notes(rec["call_id"], text)
        await ctl.index_document(kind="note", ref=rec["call_id"], call_id=rec["call_id"], city=rec["city"],
                                 agent=rec["agent"], at=_ts(rec["started_at"]), raw=text)
        await audit(request, "notes", rec["call_id"], detail=f"{len(text)} characters")
        return ok({"call_id": rec["call_id"], "notes": text})

    async def call_action(request):
        call_id, action = request.match_info["call_id"], request.match_info["action"]
        p = me(request)
        live = ctl.tracker.calls.get(call_id)
        if live is None or live.status == "ended":
            return json_error(404, "no such live call")
        body = await _body(request)
        desk = ctl.desk
        if action in ("listen", "whisper", "barge"):
            if not access.may_supervise_call(p, live.city):
                await refuse(request, action, call_id, live.agent, "supervising is for supervisors of the call's city")
            phone = p.user_id
            if p.user_id == access.SERVICE.user_id:   # the local operator names the phone to ring
                phone = body.get("phone", "")
                if phone not in ctl.cfg.sip_accounts():
                    return json_error(400, "phone must be one of our SIP accounts")
            await desk.spy(live, action, phone, p.name)
            await audit(request, action, call_id, live.agent, f"phone {phone}")
            return ok({"call_id": call_id, "action": action, "phone": phone})
        if not access.may_handle_call(p, live.agent, live.city):
            await refuse(request, action, call_id, live.agent, "not your call")
        if action == "hangup":
            await desk.hangup(live)
        elif action in ("mute", "unmute"):
            await desk.mute(live, action == "mute")
        elif action == "hold":
            await desk.hold(live)
        elif action == "resume":
            await desk.resume(live)
        elif action == "transfer":
            target = body.get("target")
            if not isinstance(target, dict):
                return json_error(400, "target must be an object {type, id}")
            attended = body.get("attended", False)
            if not isinstance(attended, bool):
                return json_error(400, "attended must be true or false")
            t = transfer_target(str(target.get("type", "")), str(target.get("id", "")), ctl.cfg)
            await desk.transfer(live, t, attended)
            await audit(request, "transfer", call_id, t.exten, "attended" if attended else "blind")
            return ok({"call_id": call_id, "action": action, "target": t.exten, "attended": attended})
        elif action == "complete":
            await desk.complete_transfer(live)
        elif action == "cancel":
            await desk.cancel_transfer(live)
        else:
            return json_error(404, f"unknown call action {action!r}")
        await audit(request, action, call_id, live.agent)
        return ok({"call_id": call_id, "action": action})

    async def callbacks(request):
        status = request.query.get("status") or None
        if status and status not in CALLBACK_STATUSES:
            return json_error(400, "status must be pending, dialing, done, failed or cancelled")
        p = me(request)
        if p.role == "agent":
            await refuse(request, "view_callbacks", why="callback lists are for supervisors")
        return ok([c for c in await ctl.callback_tasks.callbacks(status) if access.sees_city(p, c["city"])])

    async def agents(request):
        p = me(request)
        return ok([a.as_dict() for a in ctl.agents.agents.values()
                   if access.may_manage_agent(p, a.id, agent_cities.get(a.id, set()))])

    async def agent_action(request):
        agent_id, action = request.match_info["agent_id"], request.match_info["action"]
        p = me(request)
        if agent_id not in agent_cities:
            return json_error(404, f"unknown agent {agent_id!r}")
        if not access.may_manage_agent(p, agent_id, agent_cities[agent_id]):
            await refuse(request, f"agent_{action}"[:32], target=agent_id, why="not your desk or your city's agent")
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
        if p.agent_id != agent_id:   # someone else changed this agent's state: keep a trace
            await audit(request, f"agent_{action}", target=agent_id)
        return ok(view.as_dict())

    async def audit_log(request):
        p = me(request)
        if p.role == "agent":
            await refuse(request, "view_audit", why="the audit log is for supervisors")
        try:
            limit = min(max(int(request.query.get("limit", "100")), 1), 1000)
        except ValueError:
            return json_error(400, "limit must be an integer")
        rows = await ctl.audit_log.audit_entries(limit if p.all_cities else 1000, request.query.get("call_id") or None)
        if not p.all_cities:
            scope = {p.user_id} | {a for a, cities in agent_cities.items() if cities & p.cities}
            rows = [r for r in rows if r["user_id"] in scope or r["target"] in scope][:limit]
        return ok(rows)

    async def prescreen(request):
        """The legal-aid pre-screen the agent runs with the caller (backoffice/legal_aid.py)."""
        body = await _body(request)
        try:
            facts = prescreen_facts(body, {c.id for c in ctl.cfg.cities})
            result = legal_aid.screen(facts, rules)
        except (ValueError, TypeError) as e:   # FactsError is a ValueError
            return json_error(400, str(e))
        return ok(dataclasses.asdict(result) | {"rules_version": rules.version})

    # ---- consultation tickets
    async def tickets(request):
        p = me(request)
        q = request.query
        status = q.get("status") or None
        if status and status not in STATUSES:
            return json_error(400, f"status must be one of {', '.join(STATUSES)}")
        city = q.get("city") or None
        if city and not access.sees_city(p, city):
            await refuse(request, "view_tickets", target=city, why=f"{city} is outside your cities")
        try:
            limit = min(max(int(q.get("limit", "100")), 1), 500)
        except ValueError:
            return json_error(400, "limit must be an integer")
        rows = await ctl.tickets.search(status=status, city=city, caller=q.get("caller") or None,
                                        agent=p.agent_id if p.role == "agent" else (q.get("agent") or None),
                                        overdue=q.get("overdue") == "1", limit=limit if p.all_cities else 500)
        return ok([t for t in rows if access.may_view_call(p, t["agent"], t["city"])][:limit])

    async def _ticket(request) -> dict:
        t = await _by_id(request, "ticket_id", "ticket", ctl.tickets.get)
        ticket_id = t["id"]
        if not access.may_view_call(me(request), t["agent"], t["city"]):
            await refuse(request, "view_ticket", t["call_id"] or "", str(ticket_id), "not your ticket")
        return t

    async def _with_transcript(t: dict) -> dict:
        """A ticket shows its call's transcript status and the categories its keywords suggest
        (the text itself is behind /transcript, which asks for a reason)."""
        tr = await ctl.transcripts.get(t["call_id"]) if t.get("call_id") else None
        t["transcript"] = ({"status": tr["status"], "reason": tr["reason"],
                            "suggested_categories": tr["suggested_categories"]} if tr else None)
        return t

    async def ticket(request):
        return ok(await _with_transcript(await _ticket(request)))

    async def ticket_for_call(request):
        rec = await _record(request)
        t = await ctl.tickets.for_call(rec["call_id"])
        return ok(await _with_transcript(t)) if t else json_error(404, "this call has no ticket (not answered)")

    async def edit_ticket(request):
        t = await _ticket(request)
        if t["status"] == "closed":
            return json_error(409, "the ticket is closed")
        try:
            changes = check_edit(await _body(request), ctl.ticket_rules)
        except TicketError as e:
            return json_error(400, str(e))
        new = await ctl.tickets.update(t["id"], changes, expect_status=t["status"])
        if new is None:
            return json_error(409, "the ticket changed meanwhile; reload it")
        await audit(request, "ticket_edit", t["call_id"] or "", str(t["id"]), ",".join(sorted(changes)))
        await ctl.index_document(kind="ticket", ref=str(new["id"]), call_id=new["call_id"] or "", city=new["city"],
                                 agent=new["agent"], at=_ts(new["created_at"]),
                                 raw="\n".join(x for x in (new["summary"], new["answer"]) if x))
        return ok(new)

    async def ticket_status(request):
        t = await _ticket(request)
        body = await _body(request)
        try:
            check_transition(t, body.get("status"))
        except TicketError as e:
            return json_error(409 if body.get("status") in STATUSES else 400, str(e))
        fu = ctl.cfg.system.controller.follow_up
        new = await ctl.tickets.update(t["id"], {"status": body["status"]}, expect_status=t["status"],
                                       follow_up_after=timedelta(minutes=fu.delay_minutes) if fu.enabled else None)
        if new is None:
            return json_error(409, "the ticket changed meanwhile; reload it")
        await audit(request, "ticket_status", t["call_id"] or "", str(t["id"]), f"{t['status']}>{body['status']}")
        return ok(new)

    # ---- legal-aid appointments
    tz = ZoneInfo(ctl.cfg.routing.timezone)

    def center_view(c) -> dict:
        return {"id": c.id, "city": c.city, "name": c.name.model_dump(), "address": c.address,
                "slot_minutes": c.slot_minutes, "capacity": c.capacity}

    def _center(cid: str):
        c = centers.by_id.get(cid) if isinstance(cid, str) else None   # a list was a 500 (unhashable)
        if c is None:
            raise web.HTTPBadRequest(text=json.dumps({"error": f"unknown center {cid!r}; known: {', '.join(centers.by_id)}"}),
                                     content_type="application/json")
        return c

    def _day(v) -> date:
        try:
            return stats.parse_day(str(v))
        except ValueError:
            raise web.HTTPBadRequest(text=json.dumps({"error": f"date must be YYYY-MM-DD (from {stats.FIRST_DAY} to "
                                                               f"{stats.LAST_DAY}), got {v!r}"}),
                                     content_type="application/json")

    async def list_centers(request):
        city = request.query.get("city")
        return ok([center_view(c) for c in centers.by_id.values() if not city or c.city == city])

    async def center_slots(request):
        c = _center(request.match_info["center_id"])
        day = _day(request.query.get("date", ""))
        taken = await ctl.appointments.taken(c.id, day.isoformat())
        return ok([{"slot": t, "free": c.capacity - taken.get(t, 0)}
                   for t in slot_times(c, day, ctl.cfg.schedules.get(c.city))])

    async def book(request):
        p = me(request)
        body = await _body(request)
        c = _center(body.get("center", ""))
        day, slot = _day(body.get("date", "")), body.get("slot")
        number, lang = body.get("caller_number"), body.get("language", "zh")
        if not isinstance(number, str) or not number.lstrip("+").isdigit() or not 5 <= len(number) <= 20:
            return json_error(400, "caller_number must be a phone number (digits)")
        if not isinstance(lang, str) or lang not in {lg.code for lg in ctl.cfg.ivr.languages}:   # list: a 500
            return json_error(400, f"language must be one of {', '.join(l.code for l in ctl.cfg.ivr.languages)}")
        try:
            check_booking_time(c, day, str(slot), ctl.cfg.schedules.get(c.city), datetime.now(tz).date())
        except BookingError as e:
            return json_error(400, str(e))
        ticket_id = body.get("ticket_id")
        if ticket_id is not None:
            # true is no ticket id, and an id past the INTEGER range was a 500 (the driver refused it)
            t = await ctl.tickets.get(ticket_id) if isinstance(ticket_id, int) and not isinstance(ticket_id, bool) \
                and 0 < ticket_id <= ID_MAX else None
            if t is None:
                return json_error(400, "ticket_id must be the id of an existing ticket")
            if not access.may_handle_call(p, t["agent"], t["city"]):
                await refuse(request, "book", t["call_id"] or "", str(ticket_id), "not your ticket")
        elif p.role == "agent":
            return json_error(400, "an agent books for a ticket: give ticket_id")
        remind_at = datetime.combine(day, time(18, 0), tz) - timedelta(days=1)

        def messages(code):
            out = [("appointment_confirmation", message(centers, "confirmation", lang, c, day.isoformat(), slot, code), None)]
            if remind_at > datetime.now(tz):
                out.append(("appointment_reminder", message(centers, "reminder", lang, c, day.isoformat(), slot, code),
                            remind_at))
            return out
        try:
            a = await ctl.appointments.book(center_id=c.id, city=c.city, day=day.isoformat(), slot=slot,
                                            capacity=c.capacity, caller_number=number, language=lang,
                                            ticket_id=ticket_id, booked_by=p.user_id, messages=messages)
        except SlotFull as e:
            return json_error(409, f"{e}; choose another slot")
        await audit(request, "book", "", f"appointment:{a['id']}", f"{c.id} {a['day']} {a['slot']}")
        return web.json_response(a, status=201, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))

    async def cancel_appointment(request):
        try:
            aid = int(request.match_info["appointment_id"])
        except ValueError:
            return json_error(400, "appointment id must be a number")
        a = await ctl.appointments.get(aid) if 0 < aid <= ID_MAX else None   # out of range: was a 500
        if a is None:
            return json_error(404, "no such appointment")
        p = me(request)
        if not (access.sees_city(p, a["city"]) or a["booked_by"] == p.user_id):
            await refuse(request, "cancel_appointment", target=f"appointment:{aid}", why="not your city's appointment")
        c = centers.by_id.get(a["center_id"])
        done = await ctl.appointments.cancel(aid, lambda row: message(centers, "cancellation", row.language, c,
                                                                      row.day, row.slot, row.code))
        if done is None:
            return json_error(409, "the appointment is not booked (already cancelled)")
        await audit(request, "cancel_appointment", "", f"appointment:{aid}")
        return ok(done)

    async def appointments(request):
        p = me(request)
        q = request.query
        city = q.get("city") or None
        if city and not access.sees_city(p, city):
            await refuse(request, "view_appointments", target=city, why=f"{city} is outside your cities")
        rows = await ctl.appointments.search(city=city, center_id=q.get("center") or None, day=q.get("date") or None,
                                             caller=q.get("caller") or None, status=q.get("status") or None)
        return ok([a for a in rows if access.sees_city(p, a["city"]) or a["booked_by"] == p.user_id])

    async def outbox(request):
        p = me(request)
        if not p.all_cities:
            await refuse(request, "view_outbox", why="the outbox is for the command center")
        return ok(await ctl.appointments.outbox(status=request.query.get("status") or None,
                                                related=request.query.get("related") or None))

    # ---- statistics (backoffice/stats.py)
    async def statistics(request):
        p = me(request)
        q = request.query
        if p.role == "agent":
            await refuse(request, "view_stats", why="statistics are for supervisors and the command center")
        city = q.get("city") or None
        # the city names the CSV/XLSX file (Content-Disposition): control characters there made
        # aiohttp drop the connection without an answer, so only our city ids are taken
        if city and city not in {c.id for c in ctl.cfg.cities}:
            return json_error(400, f"unknown city {city!r}")
        if city and not access.sees_city(p, city):
            await refuse(request, "view_stats", target=city, why=f"{city} is outside your cities")
        if not city and not p.all_cities:
            if len(p.cities) != 1:
                return json_error(400, "give city= (one of yours)")
            city = next(iter(p.cities))
        period = q.get("period", "day")
        if period not in ("day", "month", "year"):
            return json_error(400, "period must be day, month or year")
        first, last = _day(q.get("from", "")), _day(q.get("to", ""))
        if last < first or (last - first).days > 3 * 366:
            return json_error(400, "to must not be before from, and the range at most three years")
        fmt = q.get("format", "json")
        if fmt not in ("json", "csv", "xlsx"):
            return json_error(400, "format must be json, csv or xlsx")
        since = datetime.combine(first, time(0), tz)
        until = datetime.combine(last + timedelta(days=1), time(0), tz)
        calls, tickets_, appts, complaints_, surveys = await report_rows(ctl.db, since, until, city)
        # a year of a province's calls is seconds of CPU: off the event loop that follows the calls
        rows = await asyncio.to_thread(stats.aggregate, calls, tickets_, appts, period, ctl.cfg.routing.timezone,
                                       complaints=complaints_, surveys=surveys, policy=ctl.wallboard.policy)
        if city:
            rows = [r for r in rows if r["city"] == city]
        cats = list(ctl.ticket_rules.categories) + ["unclassified"]
        name = f"12348-{city or 'province'}-{first}-{last}-{period}"
        if fmt == "csv":
            return web.Response(text=stats.to_csv(rows, cats), content_type="text/csv", charset="utf-8",
                                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
        if fmt == "xlsx":
            return web.Response(body=await asyncio.to_thread(stats.to_xlsx, rows, cats), headers={
                "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "Content-Disposition": f'attachment; filename="{name}.xlsx"'})
        return ok(rows)

    async def follow_ups(request):
        p = me(request)
        if p.role == "agent":
            await refuse(request, "view_follow_ups", why="follow-up results are for supervisors")
        q = request.query
        try:
            ticket_id = int(q["ticket_id"]) if q.get("ticket_id") else None
        except ValueError:
            return json_error(400, "ticket_id must be a number")
        if ticket_id is not None and not 0 < ticket_id <= ID_MAX:   # the database refused to bind it: a 500
            return json_error(400, "ticket_id is out of range")
        rows = await ctl.followups.search(ticket_id=ticket_id, city=q.get("city") or None, status=q.get("status") or None)
        return ok([f for f in rows if access.sees_city(p, f["city"])])

    # ---- complaints and petitions (服务投诉, 信访)
    async def file_complaint(request):
        p = me(request)
        try:
            fields = check_complaint_intake(await _body(request), {c.id for c in ctl.cfg.cities})
        except TicketError as e:
            return json_error(400, str(e))
        if p.role == "supervisor" and not access.sees_city(p, fields["city"]):
            await refuse(request, "file_complaint", target=fields["city"], why=f"{fields['city']} is outside your cities")
        c = await ctl.complaints.add(fields, p.user_id, ctl.ticket_rules.complaints.reply_due_days)
        await audit(request, "file_complaint", fields["call_id"] or "", f"complaint:{c['id']}", fields["kind"])
        return web.json_response(c, status=201, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))

    async def _complaint(request) -> dict:
        p = me(request)
        if p.role == "agent":   # a complaint may be about the agent reading it
            await refuse(request, "view_complaint", why="complaints are handled by supervisors")
        c = await _by_id(request, "complaint_id", "complaint", ctl.complaints.get)
        cid = c["id"]
        if not access.sees_city(p, c["city"]):
            await refuse(request, "view_complaint", target=f"complaint:{cid}", why="outside your cities")
        return c

    async def complaints(request):
        p = me(request)
        if p.role == "agent":
            await refuse(request, "view_complaints", why="complaints are handled by supervisors")
        q = request.query
        status = q.get("status") or None
        if status and status not in COMPLAINT_STATUSES:
            return json_error(400, f"status must be one of {', '.join(COMPLAINT_STATUSES)}")
        rows = await ctl.complaints.search(city=q.get("city") or None, status=status,
                                           assigned_to=q.get("assigned_to") or None, overdue=q.get("overdue") == "1")
        return ok([c for c in rows if access.sees_city(p, c["city"])])

    async def complaint(request):
        return ok(await _complaint(request))

    async def complaint_action(request):
        c = await _complaint(request)
        action = request.match_info["action"]
        body = await _body(request)
        changes, message_fn = {}, None
        try:
            if action == "assign":
                to = body.get("to")
                assignee = auth.users.get(to) if isinstance(to, str) else None
                if assignee is None or assignee.role == "agent" or not access.sees_city(assignee, c["city"]):
                    return json_error(400, f"assign to a supervisor of {c['city']} or the command center")
                check_complaint_move(c["status"], "assigned")
                changes = {"status": "assigned", "assigned_to": to}
            elif action == "reply":
                reply = body.get("reply")
                check_complaint_move(c["status"], "replied", reply)
                changes = {"status": "replied", "reply": reply}
                texts = ctl.ticket_rules.complaints.reply_text

                def message_fn(row):
                    template = texts.get(row.language) or texts["zh"]
                    return template.format(date=row.created_at.date().isoformat(), ref=row.ref, reply=reply)
            elif action == "close":
                check_complaint_move(c["status"], "closed")
                changes = {"status": "closed"}
            else:
                return json_error(404, f"unknown complaint action {action!r} (assign, reply, close)")
        except TicketError as e:
            return json_error(409, str(e)) if "can move" in str(e) else json_error(400, str(e))
        new = await ctl.complaints.move(c["id"], c["status"], changes, message_fn)
        if new is None:
            return json_error(409, "the complaint changed meanwhile; reload it")
        await audit(request, f"complaint_{action}", c["call_id"] or "", f"complaint:{c['id']}",
                    changes.get("assigned_to", ""))
        return ok(new)

    spec = openapi(ctl.cfg, ticket_rules=ctl.ticket_rules, centers=centers, partners=list(ctl.cfg.partners),
                   pause_reasons=PAUSE_REASONS, notes_max=NOTES_MAX, text_max=TEXT_MAX, reason_max=REASON_MAX,
                   household_max=HOUSEHOLD_MAX, income_max=INCOME_MAX,
                   transcript_statuses=JOB_STATUSES, callback_statuses=CALLBACK_STATUSES, ticket_statuses=STATUSES,
                   complaint_statuses=COMPLAINT_STATUSES, complaint_kinds=COMPLAINT_KINDS,
                   complaint_sources=COMPLAINT_SOURCES, matters=legal_aid.Matter.__args__,
                   prescreen_places=sorted(PLACE_FIELDS),
                   no_means_test_groups=sorted(rules.no_means_test) + ["migrant_worker"])

    async def api_spec(request):
        return ok(spec)

    async def metrics(request):
        return web.Response(body=generate_latest(ctl.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    def page(name):
        async def handler(request):
            return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})
        return handler

    app.router.add_get("/", page("status.html"))
    app.router.add_get("/login", page("login.html"))
    app.router.add_get("/desk", page("desk.html"))
    add_wallboard_routes(app, ctl, me=me, refuse=refuse, audit=audit, ok=ok, page=page)
    app.router.add_static("/static/", STATIC)
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/api/me", whoami)
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/openapi.json", api_spec)
    app.router.add_get("/api/status", status)
    app.router.add_get("/api/calls", calls)
    app.router.add_get("/api/calls/{call_id}", call)
    app.router.add_get("/api/calls/{call_id}/history", call_history)
    app.router.add_put("/api/calls/{call_id}/notes", notes)
    app.router.add_post("/api/calls/{call_id}/{action}", call_action)
    app.router.add_get("/api/callbacks", callbacks)
    app.router.add_get("/api/agents", agents)
    app.router.add_post("/api/agents/{agent_id}/{action}", agent_action)
    app.router.add_get("/api/audit", audit_log)
    app.router.add_post("/api/legal-aid/prescreen", prescreen)
    app.router.add_get("/api/legal-aid/centers", list_centers)
    app.router.add_get("/api/legal-aid/centers/{center_id}/slots", center_slots)
    app.router.add_post("/api/appointments", book)
    app.router.add_get("/api/appointments", appointments)
    app.router.add_post("/api/appointments/{appointment_id}/cancel", cancel_appointment)
    app.router.add_get("/api/outbox", outbox)
    app.router.add_get("/api/stats", statistics)
    app.router.add_get("/api/follow-ups", follow_ups)
    app.router.add_post("/api/complaints", file_complaint)
    app.router.add_get("/api/complaints", complaints)
    app.router.add_get("/api/complaints/{complaint_id}", complaint)
    app.router.add_post("/api/complaints/{complaint_id}/{action}", complaint_action)
    app.router.add_get("/api/tickets", tickets)
    app.router.add_get("/api/tickets/{ticket_id}", ticket)
    app.router.add_patch("/api/tickets/{ticket_id}", edit_ticket)
    app.router.add_post("/api/tickets/{ticket_id}/status", ticket_status)
    app.router.add_get("/api/calls/{call_id}/ticket", ticket_for_call)
    add_transcript_routes(app, ctl, me=me, refuse=refuse, audit=audit, record=_record, ok=ok, json_error=json_error)
    add_interop_routes(app, ctl, me=me, refuse=refuse, audit=audit, ticket=_ticket, ok=ok, json_error=json_error)
    add_federation_routes(app, ctl, me=me, refuse=refuse, ok=ok)
    app.router.add_get("/ws", hub.handler)
    app.router.add_get("/metrics", metrics)
    return app
