"""The OpenAPI 3.1 document of the desk and operator API (/api/openapi.json), generated from the
route table and what each handler declares with ``@op``: its query, body and answer as pydantic
models (dashboard/schemas.py), its error statuses. Path parameters are typed by name
(schemas.PATH_PARAMS). Ids the running config knows (cities, agents, categories, centers, partners)
become enums through ``schemas.Vocab``. A route without ``@op`` is not documented (login/logout, the
WebSocket, pages, static files, /metrics, and the signed endpoints, which interop/schema.py documents
at /api/interop/openapi.json). tests/integration/test_api_fuzz.py fuzzes the live controller
against this document (schemathesis).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter

JSON = "application/json"
ATTR = "__openapi__"
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
INFO = {"title": "12348 hotline controller API", "version": "1",
        "description": "The desk's and the local operator's JSON API. Authenticate with a desk session "
                       "(POST /api/login sets the hl_session cookie; every non-GET request then needs "
                       "the X-CSRF-Token header from the login answer) or with a bearer token (an API "
                       "token, or the local service token). Errors are {\"error\": \"...\"}. What a "
                       "principal may see or do is core/access.py; refusals are 403 and audited."}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "an API token (hotline token) or the service token (secrets file)"},
    "session": {"type": "apiKey", "in": "cookie", "name": "hl_session",
                "description": "desk session from POST /api/login; non-GET requests also need "
                               "the X-CSRF-Token header"}}


@dataclass(frozen=True)
class Op:
    """One documented operation. ``ok`` is the type of the JSON answer (a model, ``list[Model]``);
    ``content`` gives other media types instead (media type -> type)."""
    id: str
    summary: str
    tag: str
    ok: Any = dict
    status: int = 200
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_required: bool = True
    errors: tuple[str, ...] = ()
    public: bool = False
    content: dict[str, Any] | None = None
    description: str = ""


def op(id: str, summary: str, **kw):
    """Document a handler (the decorator goes under the route's)."""
    return operations({"": Op(id, summary, **kw)})


def operations(by_action: dict[str, Op]):
    """Document a handler of ``.../{action}``: one operation per action."""
    def mark(handler):
        setattr(handler, ATTR, by_action)
        return handler
    return mark


class _Builder:
    def __init__(self, path_params: dict[str, Any]):
        self.path_params = path_params
        self.components: dict[str, dict] = {}

    def schema(self, t, mode: str) -> dict:
        s = TypeAdapter(t).json_schema(mode=mode, ref_template="#/components/schemas/{model}")
        self.components.update(s.pop("$defs", {}))
        if isinstance(t, type) and issubclass(t, BaseModel) and mode == "serialization":
            self.components[t.__name__] = s
            return {"$ref": f"#/components/schemas/{t.__name__}"}
        return s

    def parameters(self, path: str, query: type[BaseModel] | None) -> list[dict]:
        out = []
        for name in re.findall(r"\{(\w+)\}", path):
            out.append({"name": name, "in": "path", "required": True,
                        "schema": self.schema(self.path_params[name], "validation")})
        if query is not None:
            props = query.model_json_schema(ref_template="#/components/schemas/{model}")["properties"]
            for name, field in query.model_fields.items():
                key = field.alias or name
                s = _not_null(props[key])
                p = {"name": key, "in": "query", "required": field.is_required(), "schema": s}
                if "description" in s:
                    p["description"] = s.pop("description")
                out.append(p)
        return out

    def operation(self, path: str, o: Op) -> dict:
        content = ({m: {"schema": self.schema(t, "serialization")} for m, t in o.content.items()} if o.content
                   else {JSON: {"schema": self.schema(o.ok, "serialization")}})
        responses = {str(o.status): {"description": "done", "content": content}}
        codes = set(o.errors) | ({"401"} if not o.public else set()) | ({"400", "413"} if o.body else set())
        if "{" in path or o.query is not None:   # text no database can store is refused before any handler
            codes.add("400")                      # (dashboard.common.storable_input)
        for code in sorted(codes):
            responses[code] = {"description": ERRORS[code],
                               "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
        out = {"operationId": o.id, "summary": o.summary, "tags": [o.tag], "responses": responses}
        if o.description:
            out["description"] = o.description
        params = self.parameters(path, o.query)
        if params:
            out["parameters"] = params
        if o.body is not None:
            out["requestBody"] = {"required": o.body_required,
                                  "content": {JSON: {"schema": self.schema(o.body, "validation")}}}
        if o.public:
            out["security"] = []
        return out


def document(app: web.Application, vocab: dict[str, list[str]], path_params: dict[str, Any]) -> dict:
    """The document for every documented route of ``app``, enums filled in from ``vocab``."""
    b = _Builder(path_params)
    b.components["Error"] = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
    paths: dict[str, dict] = {}
    for route in app.router.routes():
        documented = getattr(route.handler, ATTR, None)
        if not documented or route.resource is None or route.method == "HEAD":
            continue
        for action, o in documented.items():
            path = route.resource.canonical.replace("{action}", action) if action else route.resource.canonical
            paths.setdefault(path, {})[route.method.lower()] = b.operation(path, o)
    return {
        "openapi": "3.1.0", "info": INFO, "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": _fill(paths, vocab),
        "components": {"schemas": _fill(b.components, vocab), "securitySchemes": SECURITY_SCHEMES},
    }


def _not_null(s: dict) -> dict:
    """A query parameter's schema: an optional one is left out, never sent as null."""
    s = dict(s)
    if s.get("default", 0) is None:
        del s["default"]
    alts = [a for a in s.get("anyOf", ()) if a != {"type": "null"}]
    if "anyOf" in s and len(alts) < len(s["anyOf"]):
        del s["anyOf"]
        if len(alts) == 1:
            s = {**alts[0], **s}
        else:
            s["anyOf"] = alts
    return s


def _fill(node, vocab: dict[str, list[str]], names: bool = False):
    """Vocabularies as enums, pydantic's titles dropped (``names``: a dict of property names)."""
    if isinstance(node, list):
        return [_fill(x, vocab) for x in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {k: _fill(v, vocab) for k, v in node.items()}
    out = {}
    for k, v in node.items():
        if k == "title" and isinstance(v, str):
            continue
        if k == "x-vocab":
            out["enum"] = ([""] if node.get("x-empty") else []) + list(vocab[v])
        elif k != "x-empty":
            out[k] = _fill(v, vocab, names=k == "properties")
    return out
