"""HTTP API and pages of the controller. Binds to loopback by default (config/hotline.yaml: controller).

Every /api/ route except login and health needs a desk session (cookie + CSRF header) or a bearer
token (dashboard/auth.py); what a principal may see or do is core.access. Refusals are 403,
change nothing, and are written to the audit log like the actions themselves.

The app gets what its handlers need as one ``ApiServices`` (dashboard/services.py), built by the
composition root (hotline/compose.py); the routes are one module per resource (dashboard/routes/).
"""
from __future__ import annotations

from aiohttp import web

from dashboard import live, spec
from dashboard.auth import Auth
from dashboard.common import AUTH, SPEC, errors
from dashboard.common import storable_input
from dashboard.routes import (agents, calls, complaints, desk, federation, interop, legal_aid, pages, privacy,
                              session, stats, tickets, transcripts, wallboard)
from dashboard.routes import prompts
from dashboard.routes import knowledge
from dashboard.routes import messages
from dashboard.routes import phone
from dashboard.schemas import PATH_PARAMS
from dashboard.services import SERVICES, ApiServices

# sent with every answer (pages, static files, API answers and refusals): no inline or foreign script, not
# framed by other sites (clickjacking), no content-type sniffing, no URLs (with ids) leaked as referrers.
# Inline style stays allowed: the chart library styles its tooltips inline; style cannot run code.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

CSP = web.AppKey("csp", str)

MODULES = (pages, session, calls, desk, agents, legal_aid, stats, complaints, tickets, transcripts, interop,
           federation, privacy, wallboard, live)
MODULES += (prompts,)     # issue 20: the prompts page's API
MODULES += (knowledge,)   # issue 20: the knowledge base
MODULES += (messages,)
MODULES += (phone,)      # issue 21: the browser phone's account and call quality


def make_app(services: ApiServices) -> web.Application:
    auth = Auth(services.cfg, services.auth_store, services.service_token, refused=services.audit_log.refused)
    app = web.Application(middlewares=[errors, auth.middleware, storable_input], client_max_size=64 * 1024)
    app[SERVICES] = services
    app.on_response_prepare.append(_security_headers)
    wss = phone.wss_origin(services.cfg)
    # the browser phone's SIP WebSocket is Asterisk's, on its own port: the one other origin pages reach
    app[CSP] = SECURITY_HEADERS["Content-Security-Policy"].replace("connect-src 'self'", f"connect-src 'self' {wss}") \
        if wss else SECURITY_HEADERS["Content-Security-Policy"]
    app[AUTH] = auth
    for module in MODULES:
        app.router.add_routes(module.routes)
        if hasattr(module, "setup"):
            module.setup(app)
    app[SPEC] = spec.document(app, vocabulary(services), PATH_PARAMS)
    return app


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, request.app[CSP] if name == "Content-Security-Policy" else value)
    if request.path.startswith("/api/") or request.path == "/ws":
        # API answers carry callers' numbers, notes and transcripts: never kept in a browser's or a
        # proxy's cache, where the next user of a shared desk PC (or the proxy) could read them
        response.headers.setdefault("Cache-Control", "no-store")


def vocabulary(services: ApiServices) -> dict[str, list[str]]:
    """The ids of the running config that the API document lists as enums."""
    cfg = services.cfg
    return {"cities": [c.id for c in cfg.cities], "agents": [a.id for a in cfg.agents],
            "sip_accounts": cfg.sip_accounts(), "languages": [lg.code for lg in cfg.ivr.languages],
            "categories": list(services.ticket_rules.categories), "outcomes": list(services.ticket_rules.outcomes),
            "centers": list(services.centers.by_id), "partners": list(services.partners),
            "supervisors": [s.id for s in cfg.supervisors],
            "groups": sorted(services.legal_aid_rules.groups)}
