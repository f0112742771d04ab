"""OpenAPI 3.1 document of the controller's desk and operator JSON API, served at /api/openapi.json.

Built from the handlers in dashboard/ (what each one reads, refuses and answers), with the ids the
running config knows (cities, agents, ticket categories, centers, partners) as enums wherever a
handler refuses other values. Response rows are derived from the database tables
(store/models.py) as ``row_to_dict`` serialises them. Not covered here: the signed
partner and city-node endpoints under /api/interop/v1/ and /api/federation/v1/ (their own document,
interop/schema.py, at /api/interop/openapi.json), login/logout, the WebSocket, pages and static files.
tests/integration/test_api_fuzz.py fuzzes the live controller against this document (schemathesis).
"""
from __future__ import annotations

from datetime import datetime

from store import models as m
from store.models import ID_MAX

ERROR = {"$ref": "#/components/schemas/Error"}
JSON = "application/json"

# what each error status means here; every error body is {"error": "..."}
ERRORS = {
    "400": "bad input (the message names the parameter or field); nothing was changed",
    "401": "no valid session cookie or bearer token",
    "403": "not allowed for this principal (audited), or a cookie session's missing/wrong X-CSRF-Token",
    "404": "no such resource",
    "409": "the resource is not in a state that allows this (or changed meanwhile)",
    "410": "gone: deleted at the end of its retention period",
    "413": "request body larger than 64 KiB",
    "502": "Asterisk refused the action",
    "503": "Asterisk (AMI) unavailable",
    "504": "Asterisk did not answer in time",
}
ASTERISK = ("502", "503", "504")


def _col_schema(col) -> dict:
    py = col.type.python_type
    if py is datetime:
        s = {"type": "string", "format": "date-time"}
    else:
        s = {"type": {int: "integer", float: "number", bool: "boolean", str: "string"}[py]}
    if col.nullable and not col.primary_key:
        s = {**s, "type": [s["type"], "null"]}
    return s


def row(model, *, drop: tuple[str, ...] = (), override: dict | None = None, description: str = "") -> dict:
    """A table row as store.engine.row_to_dict gives it: every column, timestamps ISO 8601."""
    props = {c.name: _col_schema(c) for c in model.__table__.columns if c.name not in drop}
    props.update(override or {})
    return {"type": "object", "description": description or (model.__doc__ or "").strip().split("\n")[0],
            "required": sorted(props), "properties": props}


def _enum(values, *, empty: bool = False, description: str = "") -> dict:
    s = {"type": "string", "enum": ([""] if empty else []) + list(values)}
    if description:
        s["description"] = description
    return s


def _q(name: str, schema: dict, description: str = "", required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            **({"description": description} if description else {})}


def _path(name: str, schema: dict, description: str = "") -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema,
            **({"description": description} if description else {})}


def _array(ref: str) -> dict:
    return {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


STR = {"type": "string"}
INT_TEXT = {"type": "integer", "description": "a whole number (clamped to the allowed range)"}
ID = {"type": "integer", "minimum": 1, "maximum": ID_MAX, "description": "numeric id"}
CALL_ID = {"type": "string", "minLength": 1, "description": "the call's id (Asterisk linkedid)"}
DATE = {"type": "string", "format": "date", "description": "YYYY-MM-DD, 1900-01-01 to 9998-12-31"}


def openapi(cfg, *, ticket_rules, centers, partners, pause_reasons, notes_max: int, text_max: int,
            reason_max: int, household_max: int, income_max: float, transcript_statuses, callback_statuses,
            ticket_statuses, complaint_statuses, complaint_kinds, complaint_sources, matters, prescreen_places,
            no_means_test_groups) -> dict:
    cities = [c.id for c in cfg.cities]
    agents = [a.id for a in cfg.agents]
    languages = [lg.code for lg in cfg.ivr.languages]
    categories = list(ticket_rules.categories)
    outcomes = list(ticket_rules.outcomes)
    city = _enum(cities, description="city id")
    paths: dict[str, dict] = {}

    def op(method: str, path: str, op_id: str, summary: str, *, tag: str, ok: dict | None = None,
           ok_status: str = "200", params: list | None = None, body: dict | None = None, errors=(),
           public: bool = False, ok_content: dict | None = None, description: str = "",
           body_required: bool = True) -> None:
        responses = {ok_status: {"description": "done",
                                 "content": ok_content or {JSON: {"schema": ok or {"type": "object"}}}}}
        codes = set(errors)
        if not public:
            codes.add("401")
        if body is not None:
            codes |= {"400", "413"}     # body is not a JSON object / too large
        for code in sorted(codes):
            responses[code] = {"description": ERRORS[code], "content": {JSON: {"schema": ERROR}}}
        o = {"operationId": op_id, "summary": summary, "tags": [tag], "responses": responses}
        if description:
            o["description"] = description
        if params:
            o["parameters"] = params
        if body is not None:
            o["requestBody"] = {"required": body_required, "content": {JSON: {"schema": body}}}
        if public:
            o["security"] = []
        paths.setdefault(path, {})[method] = o

    # ---- session and health
    op("get", "/api/me", "whoami", "who is asking, with the desk's reference data", tag="session", ok={
        "type": "object",
        "required": ["user", "csrf", "pause_reasons", "transfer_numbers", "wrapup_seconds", "cities", "agents",
                     "queues", "ticket_categories", "ticket_outcomes", "keyword_topics"],
        "properties": {"user": _ref("Principal"), "csrf": STR,
                       "pause_reasons": {"type": "array", "items": _enum(pause_reasons)},
                       "transfer_numbers": {"type": "object", "additionalProperties": STR},
                       "wrapup_seconds": {"type": "number"},
                       "cities": {"type": "object", "additionalProperties": {
                           "type": "object", "required": ["zh", "en"], "properties": {"zh": STR, "en": STR}}},
                       "agents": {"type": "object", "additionalProperties": STR},
                       "queues": {"type": "array", "items": STR},
                       "ticket_categories": {"type": "object"}, "ticket_outcomes": {"type": "object"},
                       "keyword_topics": {"type": "object"}}})
    op("get", "/api/health", "health", "liveness (no login needed)", tag="session", public=True, ok={
        "type": "object", "required": ["up", "ami_connected", "resynced"],
        "properties": {"up": {"const": True}, "ami_connected": {"type": "boolean"}, "resynced": {"type": "boolean"}}})
    op("get", "/api/openapi.json", "openapi", "this document", tag="session",
       ok={"type": "object", "required": ["openapi", "info", "paths", "components"]})
    op("get", "/api/interop/openapi.json", "interop_openapi", "the signed partner and city-node API's document",
       tag="interop", public=True, ok={"type": "object", "required": ["openapi", "info", "paths"]})

    # ---- live view, calls
    op("get", "/api/status", "status", "controller, Asterisk, queues, live calls and agents", tag="calls",
       errors=("403",), ok=_ref("Status"))
    op("get", "/api/calls", "calls", "recent call records, newest first", tag="calls", errors=("400", "403"),
       params=[_q("limit", INT_TEXT, "1 to 500, default 50"),
               _q("city", STR, "only this city's calls (any string; a city outside yours is refused)")],
       ok=_array("CallRecord"))
    call_id = _path("call_id", CALL_ID)
    op("get", "/api/calls/{call_id}", "call", "one call record", tag="calls", params=[call_id],
       errors=("403", "404"), ok=_ref("CallRecord"))
    op("get", "/api/calls/{call_id}/history", "call_history", "earlier calls from the same number, and tickets",
       tag="calls", params=[call_id], errors=("403", "404"), ok={
           "type": "object", "required": ["call_id", "previous_calls", "tickets"],
           "properties": {"call_id": STR, "previous_calls": _array("CallRecord"), "tickets": _array("Ticket")}})
    op("put", "/api/calls/{call_id}/notes", "call_notes", "the desk's notes on a call (replaces them)", tag="calls",
       params=[call_id], errors=("403", "404"),
       body={"type": "object", "required": ["notes"],
             "properties": {"notes": {"type": "string", "maxLength": notes_max}}},
       ok={"type": "object", "required": ["call_id", "notes"], "properties": {"call_id": STR, "notes": STR}})
    call_ok = {"type": "object", "required": ["call_id", "action"],
               "properties": {"call_id": STR, "action": STR}}
    live_errors = ("403", "404", "409") + ASTERISK
    for action, summary in (("hangup", "the agent leaves the call"), ("mute", "mute the agent's leg"),
                            ("unmute", "unmute the agent's leg"), ("hold", "caller to music, agent to quiet"),
                            ("resume", "take the call off hold"), ("complete", "complete an attended transfer"),
                            ("cancel", "cancel an attended transfer")):
        op("post", f"/api/calls/{{call_id}}/{action}", f"call_{action}", summary, tag="calls", params=[call_id],
           errors=live_errors, body={"type": "object"}, ok=call_ok, body_required=False,
           description="404 unless the call is live. The body is ignored (may be left out).")
    op("post", "/api/calls/{call_id}/transfer", "call_transfer", "blind or attended transfer of a live call",
       tag="calls", params=[call_id], errors=live_errors, body={
           "type": "object", "required": ["target"],
           "properties": {"target": {"type": "object", "required": ["type", "id"], "properties": {
               "type": _enum(("agent", "queue", "city", "external")),
               "id": {"type": "string", "description": "agent id, queue id, city id, or a transfer number"}}},
               "attended": {"type": "boolean", "default": False}}},
       ok={"type": "object", "required": ["call_id", "action", "target", "attended"],
           "properties": {"call_id": STR, "action": {"const": "transfer"}, "target": STR,
                          "attended": {"type": "boolean"}}})
    for mode in ("listen", "whisper", "barge"):
        op("post", f"/api/calls/{{call_id}}/{mode}", f"call_{mode}", f"{mode} on a live call (ChanSpy)",
           tag="calls", params=[call_id], errors=("400",) + live_errors, body_required=False, body={
               "type": "object", "properties": {"phone": {
                   "type": "string", "enum": cfg.sip_accounts(),
                   "description": "the SIP phone to ring; required for the service token (a desk user's own "
                                  "phone is used otherwise)"}}},
           ok={"type": "object", "required": ["call_id", "action", "phone"],
               "properties": {"call_id": STR, "action": {"const": mode}, "phone": STR}})
    op("get", "/api/calls/{call_id}/ticket", "call_ticket", "the consultation ticket of a call", tag="tickets",
       params=[call_id], errors=("403", "404"), ok=_ref("TicketView"))
    reason = _q("reason", {"type": "string", "minLength": 1, "maxLength": reason_max},
                "why you open it (audited)", required=True)
    op("get", "/api/calls/{call_id}/transcript", "call_transcript", "a call's transcript (access is audited)",
       tag="transcripts", params=[call_id, reason], errors=("400", "403", "404"), ok=_ref("Transcript"))
    op("get", "/api/calls/{call_id}/recording", "call_recording", "a call's recording, WAV (access is audited)",
       tag="transcripts", errors=("400", "403", "404", "410"),
       params=[call_id, _q("track", _enum(("mixed", "caller", "agent")), "default mixed"), reason],
       ok_content={"audio/wav": {"schema": {"type": "string", "format": "binary"}}})
    op("get", "/api/callbacks", "callbacks", "callback tasks (voicemail, queue callback)", tag="calls",
       errors=("400", "403"), params=[_q("status", _enum(callback_statuses, empty=True))], ok=_array("CallbackTask"))

    # ---- agents
    op("get", "/api/agents", "agents", "the agents this principal may manage", tag="agents", ok=_array("Agent"))
    agent_id = _path("agent_id", _enum(agents, description="agent id"))
    for action, summary, body in (
            ("login", "log an agent into their queues (paused unless ready)",
             {"type": "object", "properties": {"ready": {"type": "boolean", "default": False}}}),
            ("ready", "take calls", {"type": "object"}),
            ("pause", "stop taking calls, with a reason",
             {"type": "object", "properties": {"reason": {**_enum(pause_reasons), "default": "other"}}}),
            ("logout", "leave every queue", {"type": "object"})):
        op("post", f"/api/agents/{{agent_id}}/{action}", f"agent_{action}", summary, tag="agents",
           params=[agent_id], body=body, body_required=False,
           errors=("403", "404") + (("409",) if action in ("ready", "pause") else ())
           + ASTERISK, ok=_ref("Agent"))
    op("get", "/api/audit", "audit", "the audit log, newest first", tag="agents", errors=("400", "403"),
       params=[_q("limit", INT_TEXT, "1 to 1000, default 100"), _q("call_id", STR)], ok=_array("AuditEntry"))

    # ---- legal aid and appointments
    places = {"type": ["object", "null"], "additionalProperties": False,
              "properties": {p: {"anyOf": [city, {"const": ""}]} for p in prescreen_places}}
    nullable_int = {"type": ["integer", "null"]}
    op("post", "/api/legal-aid/prescreen", "prescreen", "legal-aid pre-screen of the caller's facts", tag="legal-aid",
       errors=("400", "403"), body={
           "type": "object", "required": ["city", "matter"], "additionalProperties": False,
           "properties": {"city": city, "matter": _enum(matters),
                          "household_size": {**nullable_int, "minimum": 1, "maximum": household_max},
                          "household_monthly_income": {"type": ["number", "null"], "minimum": 0,
                                                       "maximum": income_max, "description": "yuan per month"},
                          "groups": {"type": "array", "items": _enum(no_means_test_groups)},
                          "age": {**nullable_int, "minimum": 0, "maximum": 130},
                          "facing_life_or_death": {"type": "boolean"}, "blind_deaf_mute": {"type": "boolean"},
                          "mental_illness_limited_control": {"type": "boolean"},
                          "places": places, "year": {"type": "integer", "description": "standards year"}}},
       ok=_ref("PreScreen"))
    op("get", "/api/legal-aid/centers", "centers", "legal-aid centers", tag="legal-aid",
       params=[_q("city", STR, "only this city's centers")], ok=_array("Center"))
    op("get", "/api/legal-aid/centers/{center_id}/slots", "center_slots", "a center's slots on a day",
       tag="legal-aid", errors=("400",),
       params=[_path("center_id", _enum(centers.by_id, description="center id")), _q("date", DATE, required=True)],
       ok={"type": "array", "items": {"type": "object", "required": ["slot", "free"], "properties": {
           "slot": {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}$"}, "free": {"type": "integer"}}}})
    op("post", "/api/appointments", "book", "book a legal-aid appointment (queues the SMS confirmation)",
       tag="legal-aid", ok_status="201", errors=("400", "403", "409"), body={
           "type": "object", "required": ["center", "date", "slot", "caller_number"],
           "properties": {"center": _enum(centers.by_id), "date": DATE,
                          "slot": {"type": "string", "description": "HH:MM, one of the center's slots that day"},
                          "caller_number": {"type": "string", "pattern": r"^\+?[0-9]{4,20}$", "minLength": 5,
                                            "maxLength": 20},
                          "language": {**_enum(languages), "default": "zh"},
                          "ticket_id": {"type": ["integer", "null"],
                                        "description": "the ticket it is booked for (required for an agent)"}}},
       ok=_ref("Appointment"))
    op("get", "/api/appointments", "appointments", "appointments", tag="legal-aid", errors=("403",),
       params=[_q("city", STR), _q("center", STR), _q("date", STR), _q("caller", STR), _q("status", STR)],
       ok=_array("Appointment"))
    op("post", "/api/appointments/{appointment_id}/cancel", "cancel_appointment",
       "cancel (frees the seat, queues the SMS)", tag="legal-aid", errors=("400", "403", "404", "409"),
       params=[_path("appointment_id", ID)], ok=_ref("Appointment"))
    op("get", "/api/outbox", "outbox", "messages to send (SMS, partner deliveries)", tag="legal-aid",
       errors=("403",), params=[_q("status", STR), _q("related", STR, "e.g. appointment:12")],
       ok=_array("OutboxMessage"))

    # ---- statistics, follow-ups, reports
    op("get", "/api/stats", "stats", "statistics per city and province by day, month or year", tag="reports",
       errors=("400", "403"),
       params=[_q("city", _enum(cities, empty=True), "one city (default: the province, or a supervisor's only city)"),
               _q("period", _enum(("day", "month", "year")), "default day"),
               _q("from", DATE, required=True), _q("to", DATE, "inclusive; at most three years after from",
                                                  required=True),
               _q("format", _enum(("json", "csv", "xlsx")), "default json")],
       ok_content={JSON: {"schema": {"type": "array", "items": _ref("StatsRow")}},
                   "text/csv": {"schema": STR},
                   "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                       "schema": {"type": "string", "format": "binary"}}})
    op("get", "/api/follow-ups", "follow_ups", "follow-up visits (回访) and their survey scores", tag="reports",
       errors=("400", "403"),
       params=[_q("ticket_id", {"anyOf": [ID, {"const": ""}]}), _q("city", STR), _q("status", STR)],
       ok=_array("FollowUp"))
    op("get", "/api/reports", "reports", "KPIs over a date range: per day, hour of day, agent", tag="reports",
       errors=("400", "403"),
       params=[_q("city", _enum(cities, empty=True)), _q("from", DATE, required=True),
               _q("to", DATE, "inclusive; at most a year after from", required=True)],
       ok={"type": "object", "required": ["city", "from", "to", "definitions", "days", "hours", "agents", "total"],
           "properties": {"city": {"type": ["string", "null"]}, "from": DATE, "to": DATE,
                          "definitions": {"type": "object"}, "days": {"type": "array", "items": {"type": "object"}},
                          "hours": {"type": "array", "items": {"type": "integer"}, "minItems": 24, "maxItems": 24},
                          "agents": {"type": "array", "items": {"type": "object"}},
                          "total": {"type": "object"}}})
    op("get", "/api/wallboard", "wallboard", "every city tile the viewer may see", tag="reports", errors=("403",),
       ok={"type": "object", "required": ["generated_at", "definitions", "cities"],
           "properties": {"generated_at": {"type": "number"}, "definitions": {"type": "object"},
                          "cities": {"type": "array", "items": _ref("Tile")}}})
    op("get", "/api/wallboard/{city}", "wallboard_city", "one city: tile, live calls (numbers masked), agents",
       tag="reports", errors=("403", "404"), params=[_path("city", city)],
       ok={"type": "object", "required": ["tile", "calls", "agents", "thresholds"],
           "properties": {"tile": _ref("Tile"), "calls": {"type": "array", "items": {"type": "object"}},
                          "agents": _array("Agent"), "thresholds": {"type": "object"}}})

    # ---- complaints
    short = {"type": "string", "maxLength": 64}
    op("post", "/api/complaints", "file_complaint", "file a complaint or petition (服务投诉, 信访)", tag="complaints",
       ok_status="201", errors=("400", "403"), body={
           "type": "object", "required": ["city", "description"], "additionalProperties": False,
           "properties": {"kind": {**_enum(complaint_kinds), "default": "service"},
                          "source": {**_enum(complaint_sources), "default": "api"}, "city": city,
                          "complainant_number": {"type": "string", "pattern": r"^(\+?[0-9]{1,19}|)$",
                                                 "maxLength": 20},
                          "complainant_name": short, "language": {"type": "string", "maxLength": 8},
                          "call_id": {"type": ["string", "null"], "maxLength": 64},
                          "about_agent": short,
                          "description": {"type": "string", "minLength": 1, "maxLength": text_max,
                                          "pattern": r"\S"}}},
       ok=_ref("Complaint"))
    op("get", "/api/complaints", "complaints", "complaints, newest first", tag="complaints", errors=("400", "403"),
       params=[_q("status", _enum(complaint_statuses, empty=True)), _q("city", STR), _q("assigned_to", STR),
               _q("overdue", STR, "1: only those past their reply date")], ok=_array("Complaint"))
    complaint_id = _path("complaint_id", ID)
    op("get", "/api/complaints/{complaint_id}", "complaint", "one complaint", tag="complaints",
       params=[complaint_id], errors=("400", "403", "404"), ok=_ref("Complaint"))
    for action, summary, body in (
            ("assign", "assign to a supervisor of its city or the command center",
             {"type": "object", "required": ["to"], "properties": {"to": {
                 **_enum([s.id for s in cfg.supervisors]),
                 "description": "a supervisor of the complaint's city, or the command center"}}}),
            ("reply", "reply to the complainant (queues the SMS)",
             {"type": "object", "required": ["reply"], "properties": {"reply": {"type": "string", "pattern": r"\S"}}}),
            ("close", "close a replied complaint", {"type": "object"})):
        op("post", f"/api/complaints/{{complaint_id}}/{action}", f"complaint_{action}", summary, tag="complaints",
           params=[complaint_id], body=body, errors=("400", "403", "404", "409"), ok=_ref("Complaint"),
           body_required=action != "close")

    # ---- tickets
    op("get", "/api/tickets", "tickets", "consultation tickets, newest first", tag="tickets", errors=("400", "403"),
       params=[_q("status", _enum(ticket_statuses, empty=True)), _q("city", STR), _q("caller", STR),
               _q("agent", STR), _q("overdue", STR, "1: only escalated open ones"),
               _q("limit", INT_TEXT, "1 to 500, default 100")], ok=_array("Ticket"))
    ticket_id = _path("ticket_id", ID)
    op("get", "/api/tickets/{ticket_id}", "ticket", "one ticket, with its transcript status", tag="tickets",
       params=[ticket_id], errors=("400", "403", "404"), ok=_ref("TicketView"))
    op("patch", "/api/tickets/{ticket_id}", "edit_ticket", "classify and write up a ticket", tag="tickets",
       params=[ticket_id], errors=("403", "404", "409"), body_required=False, body={
           "type": "object", "additionalProperties": False,
           "properties": {"category": _enum(categories), "outcome": _enum(outcomes),
                          "summary": {"type": "string", "maxLength": text_max},
                          "answer": {"type": "string", "maxLength": text_max}, "follow_up": {"type": "boolean"}}},
       ok=_ref("Ticket"))
    op("post", "/api/tickets/{ticket_id}/status", "ticket_status", "move a ticket along its workflow",
       tag="tickets", params=[ticket_id], errors=("403", "404", "409"),
       body={"type": "object", "required": ["status"], "properties": {"status": _enum(ticket_statuses)}},
       ok=_ref("Ticket"), description="409 when the workflow does not allow the move (e.g. unclassified).")
    op("post", "/api/tickets/{ticket_id}/handoff", "handoff", "hand a ticket to a partner hotline", tag="interop",
       params=[ticket_id], errors=("403", "404", "409"), body={
           "type": "object", "required": ["partner", "consent"],
           "properties": {"partner": _enum(partners), "consent": {
               "type": "boolean", "description": "the caller agreed that their number and name go to the partner"}}},
       ok=_ref("Handoff"))
    op("get", "/api/tickets/{ticket_id}/handoffs", "handoffs", "a ticket's handoffs", tag="interop",
       params=[ticket_id], errors=("400", "403", "404"), ok=_array("Handoff"))

    # ---- transcripts, search, alerts
    op("get", "/api/transcripts", "transcripts", "transcription jobs", tag="transcripts", errors=("400", "403"),
       params=[_q("status", _enum(transcript_statuses, empty=True))], ok=_array("Transcript"))
    op("get", "/api/search", "search", "full-text search over transcripts, ticket texts and notes",
       tag="transcripts", errors=("400", "403"),
       params=[_q("q", {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"},
                  "the words to find", required=True),
               _q("city", _enum(cities, empty=True)), _q("category", _enum(categories, empty=True)),
               _q("from", {"anyOf": [DATE, {"const": ""}]}), _q("to", {"anyOf": [DATE, {"const": ""}]}),
               _q("limit", INT_TEXT, "1 to 200, default 50")],
       ok={"type": "object", "required": ["query", "words", "results"],
           "properties": {"query": STR, "words": {"type": "array", "items": STR},
                          "results": {"type": "array", "items": {
                              "type": "object", "required": ["kind", "ref", "call_id", "city", "agent", "at",
                                                             "snippet"],
                              "properties": {"kind": STR, "ref": STR, "call_id": STR, "city": STR, "agent": STR,
                                             "at": {"type": "string", "format": "date-time"}, "snippet": STR}}}}})
    op("get", "/api/alerts", "alerts", "keyword alerts and wallboard alarms", tag="transcripts", errors=("403",),
       params=[_q("call_id", STR), _q("open", STR, "1, true or yes: not acknowledged"),
               _q("current", STR, "1, true or yes: still needing someone"), _q("kind", STR)], ok=_array("Alert"))
    op("post", "/api/alerts/{alert_id}/ack", "ack_alert", "acknowledge an alert (once)", tag="transcripts",
       params=[_path("alert_id", ID)], errors=("400", "403", "404", "409"), ok=_ref("Alert"))

    # ---- federation (the province's view; the signed node endpoints are in the interop document)
    op("get", "/api/federation/nodes", "federation_nodes", "city nodes' latest reports", tag="federation",
       errors=("403",), ok={"type": "object", "required": ["mode", "stale_after_seconds", "nodes"],
                            "properties": {"mode": STR, "stale_after_seconds": {"type": "number"},
                                           "nodes": {"type": "array", "items": {"type": "object"}}}})
    op("get", "/api/federation/events", "federation_events", "ticket events received from city nodes",
       tag="federation", errors=("403",), params=[_q("node", STR)], ok=_array("FederatedEvent"))

    schemas = {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "Principal": {"type": "object", "required": ["id", "name", "role", "cities", "agent_id"], "properties": {
            "id": STR, "name": STR, "role": _enum(("agent", "supervisor", "command")),
            "cities": {"type": "array", "items": STR}, "agent_id": {"type": ["string", "null"]}}},
        "Agent": {"type": "object", "required": ["id", "name", "state", "queues", "home", "paused", "pause_reason",
                                                 "device", "wrapup_until"], "properties": {
            "id": STR, "name": STR, "state": _enum(("logged_out", "ready", "on_call", "paused", "wrap_up")),
            "queues": {"type": "array", "items": STR}, "home": {"type": "array", "items": STR},
            "paused": {"type": "boolean"}, "pause_reason": STR, "device": STR,
            "wrapup_until": {"type": ["number", "null"]}}},
        "CallRecord": row(m.CallRecord),
        "CallbackTask": row(m.CallbackTask),
        "AuditEntry": row(m.AuditEntry),
        "Ticket": row(m.Ticket),
        "TicketView": {"allOf": [_ref("Ticket"), {"type": "object", "required": ["transcript"], "properties": {
            "transcript": {"oneOf": [{"type": "null"}, {
                "type": "object", "required": ["status", "reason", "suggested_categories"],
                "properties": {"status": STR, "reason": STR,
                               "suggested_categories": {"type": "array", "items": STR}}}]}}}]},
        "Appointment": row(m.Appointment),
        "OutboxMessage": row(m.OutboxMessage),
        "FollowUp": row(m.FollowUp),
        "Complaint": row(m.Complaint),
        "Alert": row(m.Alert),
        "Handoff": row(m.Handoff),
        "Transcript": row(m.Transcript, drop=("worker",), override={
            "segments": {"type": ["array", "null"], "items": {"type": "object"},
                         "description": "null in job lists"},
            "suggested_categories": {"type": "array", "items": STR}}),
        "FederatedEvent": row(m.FederatedEvent, override={"ticket": {"type": "object"}}),
        "Center": {"type": "object", "required": ["id", "city", "name", "address", "slot_minutes", "capacity"],
                   "properties": {"id": STR, "city": STR, "name": {"type": "object"}, "address": STR,
                                  "slot_minutes": {"type": "integer"}, "capacity": {"type": "integer"}}},
        "PreScreen": {"type": "object", "required": ["eligibility", "rule", "source", "documents", "jurisdiction",
                                                     "threshold", "per_capita_income", "rules_version"],
                      "properties": {"eligibility": _enum(("likely", "not", "needs_review")), "rule": STR,
                                     "source": STR, "documents": {"type": "array", "items": STR},
                                     "jurisdiction": {"type": "object", "required": ["cities", "basis"], "properties": {
                                         "cities": {"type": "array", "items": STR}, "basis": STR}},
                                     "threshold": {"type": ["number", "null"]},
                                     "per_capita_income": {"type": ["number", "null"]}, "rules_version": STR}},
        "Status": {"type": "object", "required": ["controller", "asterisk", "redis", "transcription",
                                                  "calls_in_progress", "queues", "agents"],
                   "properties": {"controller": {"type": "object"}, "asterisk": {"type": "object"},
                                  "redis": {"type": "object"}, "transcription": {"type": "object"},
                                  "calls_in_progress": {"type": "array", "items": {"type": "object"}},
                                  "queues": {"type": "object", "additionalProperties": {
                                      "type": "object", "required": ["waiting", "talking"],
                                      "properties": {"waiting": {"type": "integer"}, "talking": {"type": "integer"}}}},
                                  "agents": _array("Agent")}},
        "Tile": {"type": "object", "required": ["city", "names", "open", "waiting", "longest_wait_seconds", "talking",
                                                "agents", "occupancy", "today", "alarms", "health"],
                 "properties": {"city": STR, "names": {"type": "object"}, "open": {"type": "boolean"},
                                "waiting": {"type": "integer"}, "longest_wait_seconds": {"type": "number"},
                                "talking": {"type": "integer"}, "agents": {"type": "object"},
                                "occupancy": {"type": ["number", "null"]}, "today": {"type": "object"},
                                "alarms": {"type": "array", "items": STR}, "health": STR}},
        "StatsRow": {"type": "object", "required": ["period", "city", "calls", "answered"],
                     "properties": {"period": STR, "city": STR, "calls": {"type": "integer"},
                                    "answered": {"type": "integer"}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "12348 hotline controller API", "version": "1",
                 "description": "The desk's and the local operator's JSON API. Authenticate with a desk session "
                                "(POST /api/login sets the hl_session cookie; every non-GET request then needs "
                                "the X-CSRF-Token header from the login answer) or with a bearer token (an API "
                                "token, or the local service token). Errors are {\"error\": \"...\"}. What a "
                                "principal may see or do is core/access.py; refusals are 403 and audited."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "an API token (hotline token) or the service token (secrets file)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "hl_session",
                            "description": "desk session from POST /api/login; non-GET requests also need "
                                           "the X-CSRF-Token header"}}},
    }
