"""The interop API's documents, version 1: what partners send to 12348 (tickets with legal
questions, status updates on handoffs) and what city nodes send to the command center. Unknown
fields are refused; the OpenAPI document is generated from these models (``openapi()``)."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.text import unstorable

SCHEMA_VERSION = 1
HANDOFF_STATES = ("received", "accepted", "in_progress", "resolved", "rejected", "closed")


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    schema_version: Literal[1] = 1

    @model_validator(mode="after")
    def _storable(self):
        """No NUL or unpaired surrogate anywhere (a partner's question with "\\u0000" was a 500 on
        PostgreSQL, and a node's event stored as is): refused as malformed, 400, nothing written."""
        where = unstorable(self.model_dump(), "document")
        if where:
            raise ValueError(f"{where}: text must not contain NUL characters or unpaired surrogates")
        return self


class InboundTicket(Doc):
    """A partner hands a legal question to 12348 (e.g. 12345 → 12348)."""
    partner_ticket_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    city: str = Field(min_length=1, max_length=32, description="12348 city id, e.g. leshan")
    caller_number: str = Field(min_length=3, max_length=32, pattern=r"^\+?[0-9]+$")
    caller_name: str = Field("", max_length=64)
    language: Literal["zh", "bo", "en", "ii"] = "zh"
    question: str = Field(min_length=1, max_length=5000)
    category_hint: str = Field("", max_length=32)
    consent: bool = Field(description="the caller agreed to be called back by 12348")


class StatusUpdate(Doc):
    """A partner reports progress on a ticket 12348 handed to it (or 12348 on one it received)."""
    handoff_ref: str = Field(min_length=1, max_length=64, description="the handoff id we sent (source_ref)")
    partner_ticket_id: str = Field("", max_length=64)
    status: Literal["received", "accepted", "in_progress", "resolved", "rejected", "closed"]
    seq: int = Field(ge=1, le=10**9, description="increases with every update of this ticket; older ones are ignored")
    at: datetime
    note: str = Field("", max_length=2000)


class QueueSnapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")
    waiting: int = Field(ge=0)
    talking: int = Field(ge=0)
    longest_wait_seconds: float = Field(0, ge=0)


class CityReport(Doc):
    """A city node's live report to the command center (sent every few seconds; latest wins)."""
    node: str = Field(min_length=1, max_length=64)
    cities: list[str]
    sent_at: datetime
    queues: dict[str, QueueSnapshot]
    agents: dict[str, int] = Field(description="agents per state: ready, on_call, paused, wrap_up, logged_in")
    calls_today: int = Field(0, ge=0)
    ticket_seq: int = Field(0, ge=0, le=2**31 - 1, description="the last ticket event this node has sent")


class TicketEvent(Doc):
    """A ticket created or changed on a city node, or an escalation, for the command center."""
    node: str = Field(min_length=1, max_length=64)
    seq: int = Field(ge=1, le=2**31 - 1, description="per node, without gaps: the command center sees what it missed")
    kind: Literal["created", "updated", "escalated"]
    ticket: dict


def openapi() -> dict:
    """OpenAPI 3.1 for the partner-facing and federation endpoints."""
    comps = {m.__name__: m.model_json_schema(ref_template="#/components/schemas/{model}")
             for m in (InboundTicket, StatusUpdate, CityReport, TicketEvent)}
    defs = {}
    for s in comps.values():
        defs.update(s.pop("$defs", {}))
    sec = [{"hmac": []}]

    def post(schema: str, summary: str, ok: str) -> dict:
        return {"post": {"summary": summary, "security": sec,
                         "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                         "schema": {"type": "string", "maxLength": 128}}],
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"$ref": f"#/components/schemas/{schema}"}}}},
                         "responses": {ok: {"description": "accepted"}, "400": {"description": "malformed; nothing written"},
                                       "401": {"description": "bad or version 1 signature, stale timestamp or replayed nonce"},
                                       "404": {"description": "unknown handoff"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "12348 hotline interop API", "version": str(SCHEMA_VERSION),
                 "description": "Requests are signed: X-Hotline-Key, X-Hotline-Timestamp (seconds, ±300 s), "
                                "X-Hotline-Nonce (used once), X-Hotline-Signature = 'v2=' + hex HMAC-SHA256(secret, "
                                "HOTLINE-HMAC-SHA256-V2\\nMETHOD\\nPATH\\nKEY\\nTIMESTAMP\\nNONCE\\n"
                                "IDEMPOTENCY-KEY\\nhex SHA-256(body)), KEY being X-Hotline-Key and IDEMPOTENCY-KEY "
                                "the Idempotency-Key header ('' without one); a version 1 signature (no 'v2=') is "
                                "refused. Idempotency-Key makes a retried request return the first answer."},
        "paths": {"/api/interop/v1/tickets": post("InboundTicket", "a partner hands a legal question to 12348", "201"),
                  "/api/interop/v1/status": post("StatusUpdate", "progress on a handed-over ticket", "200"),
                  "/api/federation/v1/report": post("CityReport", "a city node's live report", "200"),
                  "/api/federation/v1/events": post("TicketEvent", "a city node's ticket event", "200")},
        "components": {"schemas": {**comps, **defs},
                       "securitySchemes": {"hmac": {"type": "apiKey", "in": "header", "name": "X-Hotline-Signature"}}},
    }
