"""The API's request and response bodies and query parameters, as pydantic models: the contract
the OpenAPI document (dashboard/spec.py) is generated from, next to the limits the handlers check.
Rows are derived from the database tables (store/models.py) as ``row_to_dict`` serialises them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from store import models as m
from store.models import ID_MAX

PAUSE_REASONS = ("meal", "rest", "training", "meeting", "after_call_work", "outbound", "other",
                 "phone")   # the desk's browser phone is not ready (no microphone, device lost)
CALLBACK_STATUSES = ("pending", "dialing", "done", "failed", "cancelled")
JOB_STATUSES = ("pending", "running", "done", "failed", "no_model", "purged")
TRACKS = ("mixed", "caller", "agent")
NOTES_MAX = 20000
REASON_MAX = 200
HOUSEHOLD_MAX, INCOME_MAX = 1000, 1e12   # far past any real household; keeps the per-capita division finite


@dataclass(frozen=True)
class Vocab:
    """A string from one of the running config's lists (spec.document fills in the enum)."""
    name: str
    empty: bool = False     # "" too (the parameter left empty)

    def __get_pydantic_json_schema__(self, core_schema, handler):
        s = handler(core_schema)
        s["x-vocab"] = self.name
        if self.empty:
            s["x-empty"] = True
        return s


def one_of(values) -> Any:
    return Literal[tuple(values)]


def one_of_or_empty(values) -> Any:
    return Literal[("",) + tuple(values)]


CityId = Annotated[str, Vocab("cities"), Field(description="city id")]
AnyCity = Annotated[str, Vocab("cities", empty=True)]
Id = Annotated[int, Field(ge=1, le=ID_MAX, description="numeric id")]
Date = Annotated[str, WithJsonSchema({"type": "string", "format": "date",
                                      "description": "YYYY-MM-DD, 1900-01-01 to 9998-12-31"})]
Binary = Annotated[bytes, WithJsonSchema({"type": "string", "format": "binary"})]
WholeNumber = Annotated[int, Field(description="a whole number (clamped to the allowed range)")]
Short = Annotated[str, Field(max_length=64)]
Unset = Field(None)    # not required; left out of the document's defaults

PATH_PARAMS: dict[str, Any] = {
    "call_id": Annotated[str, Field(min_length=1, description="the call's id (Asterisk linkedid)")],
    "agent_id": Annotated[str, Vocab("agents"), Field(description="agent id")],
    "center_id": Annotated[str, Vocab("centers"), Field(description="center id")],
    "city": CityId,
    "ticket_id": Id, "complaint_id": Id, "appointment_id": Id, "alert_id": Id,
    "entry_id": Id,
    "message_id": Id,
}
# issue 20: IVR prompts by language and prompt id
PATH_PARAMS["lang"] = Annotated[str, Field(pattern=r"^[a-z]{2,3}$", description="IVR language code (zh, bo, en, ii …)")]
PATH_PARAMS["prompt_id"] = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", description="prompt id (greeting, service_menu …)")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Empty(BaseModel):
    """No fields (anything sent is ignored)."""


# ---- rows of the database


def row_model(model, *, drop: tuple[str, ...] = (), extra: dict | None = None, base=BaseModel,
              name: str = "") -> type[BaseModel]:
    """A table row as store.engine.row_to_dict gives it: every column, timestamps ISO 8601."""
    fields: dict[str, Any] = {}
    for c in model.__table__.columns:
        if c.name in drop:
            continue
        t = c.type.python_type
        fields[c.name] = (t | None if c.nullable and not c.primary_key else t, ...)
    fields.update(extra or {})
    return create_model(name or model.__name__, __base__=base, __doc__=(model.__doc__ or "").strip().split("\n")[0],
                        **fields)


CallRecord = row_model(m.CallRecord)
CallbackTask = row_model(m.CallbackTask)
AuditEntry = row_model(m.AuditEntry, drop=("fold_minute",))   # the fold's key, internal
Ticket = row_model(m.Ticket)
Appointment = row_model(m.Appointment)
OutboxMessage = row_model(m.OutboxMessage)
FollowUp = row_model(m.FollowUp)
Complaint = row_model(m.Complaint)
Alert = row_model(m.Alert)
Handoff = row_model(m.Handoff)
Transcript = row_model(m.Transcript, drop=("worker",), extra={
    "segments": (list[dict], ...), "suggested_categories": (list[str], ...)})
# a job in the transcription queue: status and metadata, not the words (those are behind the audited
# GET /api/calls/{call_id}/transcript?reason=...)
TranscriptJob = row_model(m.Transcript, drop=("worker", "text", "segments"), name="TranscriptJob", extra={
    "suggested_categories": (list[str], ...)})
FederatedEvent = row_model(m.FederatedEvent, extra={"ticket": (dict, ...)})
OptOut = row_model(m.OptOut)
ExportedTranscript = row_model(m.Transcript, drop=("worker", "segments"), name="ExportedTranscript")


class PrivacyExport(BaseModel):
    """Every row held about one caller number (store/privacy.py): in clear, or past its retention
    period under the number's pseudonym (h:...)."""
    number: str = Field(description="the number in E.164")
    pseudonym: str = Field(description="its keyed hash, as rows past their retention period hold it")
    generated_at: str
    calls: list[CallRecord]
    tickets: list[Ticket]
    follow_ups: list[FollowUp]
    callbacks: list[CallbackTask]
    appointments: list[Appointment]
    complaints: list[Complaint]
    messages: list[OutboxMessage]
    handoffs: list[Handoff]
    transcripts: list[ExportedTranscript]
    opt_outs: list[OptOut]


class TranscriptState(BaseModel):
    status: str
    reason: str
    suggested_categories: list[str]


class TicketView(Ticket):
    """A ticket with its call's transcript status (the text itself is behind /transcript)."""
    transcript: TranscriptState | None


# ---- views of the live state


class Principal(BaseModel):
    id: str
    name: str
    role: Literal["agent", "supervisor", "command"]
    cities: list[str]
    agent_id: str | None


class Agent(BaseModel):
    id: str
    name: str
    state: Literal["logged_out", "ready", "on_call", "paused", "wrap_up"]
    queues: list[str]
    home: list[str]
    paused: bool
    pause_reason: str
    device: str
    wrapup_until: float | None


class QueueLoad(BaseModel):
    waiting: int
    talking: int


class NodeView(BaseModel):
    """A node of the cluster (core/cluster.py): up, down (its Asterisk away) or stale (its controller silent)."""
    name: str
    health: Literal["up", "down", "stale"]
    last_seen: float | None
    cities: list[str]              # the cities it serves first
    serving: list[str]             # the cities it serves now (its own, and those of nodes that are not up)
    this: bool                     # the node that answered


class Status(BaseModel):
    controller: dict
    asterisk: dict
    redis: dict
    transcription: dict
    calls_in_progress: list[dict]
    queues: dict[str, QueueLoad]
    agents: list[Agent]
    node: str = ""
    nodes: list[NodeView] = []


class Tile(BaseModel):
    city: str
    names: dict
    open: bool
    waiting: int
    longest_wait_seconds: float
    talking: int
    agents: dict
    occupancy: float | None
    today: dict
    alarms: list[str]
    health: str


class StatsRow(BaseModel):
    period: str
    city: str
    calls: int
    answered: int
    sms: int = Field(description="texts to callers queued that day about this city's appointments, tickets, complaints")
    sms_sent: int = Field(description="of those, every part acknowledged by the SMSC")
    sms_delivered: int = Field(description="of those, every part's receipt DELIVRD")
    sms_failed: int = Field(description="of those, failed or dead letters")


class Center(BaseModel):
    id: str
    city: str
    name: dict
    address: str
    slot_minutes: int
    capacity: int


class Office(BaseModel):
    code: str
    division: str
    level: str
    province: str
    name: str | None
    address: str | None
    phone: str | None
    hours: dict[str, list[str]] | None
    appointment_center: str | None
    partner: str | None
    missing: list[str]


class Jurisdiction(BaseModel):
    cities: list[str]
    basis: str
    rule: str
    offices: list[Office]
    verified: bool = Field(description="false: the place rule rests on a seed or a report only")


class Citation(BaseModel):
    rule: str
    source: str
    article: str
    verified: bool
    text: str
    note: str = Field(description="our explanation of the rule, not the article's words")


class PreScreen(BaseModel):
    eligibility: Literal["likely", "not", "needs_review"]
    rule: str
    source: str
    article: str
    verified: bool = Field(description="false: only a secondary report supports the deciding rule")
    explanation: str = Field(description="what the deciding article says")
    note: str = Field(description="our explanation of the deciding rule, not the article's words")
    documents: list[str]
    jurisdiction: Jurisdiction
    notes: list[Citation]
    provide_first: bool = Field(description="art. 44: the center may provide legal aid first")
    threshold: float | None
    per_capita_income: float | None
    standards_year: int | None
    rules_version: str


PauseReason = one_of(PAUSE_REASONS)
