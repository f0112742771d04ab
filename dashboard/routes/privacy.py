"""One person's data on request (PIPL): everything held about one caller number, exported as JSON by
the command center, with a reason, and audited (who, why, and the number's pseudonym, never the
number itself).

POST, not GET: the number stays out of URLs, and so out of access logs, proxies and browser history.
The command role only: a caller's rows span every city they ever called, and answering a person's
request is the provincial office's act, not a city supervisor's.
"""
from __future__ import annotations

from aiohttp import web
from pydantic import Field, ValidationError

from core.numbering import to_e164
from dashboard.common import bad_request, me, ok, refuse, services
from dashboard.common import body as read_body
from dashboard.routes.interop import validation_message
from dashboard.schemas import REASON_MAX, PrivacyExport, Strict
from dashboard.spec import op

routes = web.RouteTableDef()
NUMBER_MAX = 32


class ExportRequest(Strict):
    number: str = Field(min_length=1, max_length=NUMBER_MAX, description="the caller number, in any usual form")
    reason: str = Field(min_length=1, max_length=REASON_MAX, pattern=r"\S",
                        description="why (the person's request, its reference): written to the audit log")


@routes.post("/api/privacy/export")
@op("privacy_export", "everything held about one caller number (PIPL access request); command role, audited",
    tag="privacy", errors=("400", "403"), body=ExportRequest, ok=PrivacyExport)
async def export(request):
    p, svc = me(request), services(request)
    if p.role != "command":
        await refuse(request, "privacy_export", why="exports of a person's data are for the command center")
    try:
        req = ExportRequest.model_validate(await read_body(request))
    except ValidationError as e:
        raise bad_request(f"{validation_message(e)} (number, and reason: why, written to the audit log)")
    if not _storable(req.reason):
        raise bad_request("reason must be text the audit log can keep (no NUL, valid UTF-8)")
    if not to_e164(req.number):
        raise bad_request("number must be a phone number (digits, optionally a leading +)")
    return ok(await svc.privacy.export(req.number, user_id=p.user_id, role=p.role, reason=req.reason.strip()))


def _storable(text: str) -> bool:
    """The audit log can keep it: no NUL (PostgreSQL refuses it) and no lone surrogate (not UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text
