"""Database tables. Changes go through an Alembic migration (store/migrations)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


# ids are INTEGER columns (int4 on PostgreSQL): a larger id names no row, and binding one fails
# (SQLite: OverflowError past 2**63; PostgreSQL: "integer out of range"), so the API refuses it first
ID_MAX = 2 ** 31 - 1


class CallRecord(Base):
    """One row per call into the hotline, written as the call progresses."""
    __tablename__ = "call_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)  # Asterisk linkedid
    channel: Mapped[str] = mapped_column(String(128), default="")
    dialed_number: Mapped[str] = mapped_column(String(32), default="")
    caller_number: Mapped[str] = mapped_column(String(32), default="", index=True)
    city: Mapped[str] = mapped_column(String(32), default="", index=True)
    area_code: Mapped[str] = mapped_column(String(8), default="")
    language: Mapped[str] = mapped_column(String(8), default="")
    ivr_path: Mapped[str] = mapped_column(String(255), default="")
    service: Mapped[str] = mapped_column(String(32), default="")
    queue: Mapped[str] = mapped_column(String(32), default="")
    overflow: Mapped[str] = mapped_column(String(255), default="")
    green: Mapped[str] = mapped_column(String(32), default="", index=True)
    after_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    agent: Mapped[str] = mapped_column(String(64), default="", index=True)
    recording_path: Mapped[str] = mapped_column(Text, default="")
    transfers: Mapped[str] = mapped_column(String(255), default="")   # "agent1001>agent1002:attended/..."
    notes: Mapped[str] = mapped_column(Text, default="")              # the agent's notes from the desk
    status: Mapped[str] = mapped_column(String(16), default="ivr", index=True)
    outcome: Mapped[str] = mapped_column(String(24), default="")
    hangup_cause: Mapped[int | None] = mapped_column(Integer, nullable=True)
    hangup_cause_text: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    wait_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    talk_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # a browser phone's call quality from WebRTC stats (the desk reports it; worst jitter and round
    # trip seen, packets lost of those expected); none for calls on SIP phones
    quality_jitter_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    quality_loss_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    quality_rtt_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    node: Mapped[str] = mapped_column(String(32), default="", index=True)   # the cluster node that handled it


class AgentEvent(Base):
    """Agent state changes (login, ready, pause with reason, logout): the audit of agent time."""
    __tablename__ = "agent_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class CallbackTask(Base):
    """A promise to call someone back: after voicemail, or when they left the queue asking for it."""
    __tablename__ = "callback_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)  # one task per originating call
    caller_number: Mapped[str] = mapped_column(String(32), index=True)
    city: Mapped[str] = mapped_column(String(32), default="", index=True)
    language: Mapped[str] = mapped_column(String(8), default="")
    reason: Mapped[str] = mapped_column(String(24))           # voicemail | queue_callback
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    voicemail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # which node's Asterisk holds it now, until when (renewed while that node lives; docs/scale-out.md "Shared state across nodes")
    node: Mapped[str] = mapped_column(String(32), default="")
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)


class UserCredential(Base):
    """A desk login's password, as an Argon2id hash (argon2-cffi). Who the users are is config."""
    __tablename__ = "user_credentials"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuthToken(Base):
    """A desk session (cookie, idle and absolute expiry) or an API token (bearer, absolute expiry).
    Only the SHA-256 of the secret is kept: a leaked database does not leak live sessions."""
    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))          # session | api
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    csrf: Mapped[str] = mapped_column(String(64), default="")
    label: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditEntry(Base):
    """Who did what to which call or agent, allowed or refused: supervisors' listen/whisper/barge,
    transfers, notes, state changes made for someone else, logins. A refusal anyone can cause (bad
    login, unsigned partner request) is folded: one row per action, source and minute, with a count."""
    __tablename__ = "audit_log"
    # the folded row of (minute, action, source); NULL fold_minute (every row not folded) never conflicts
    __table_args__ = (UniqueConstraint("fold_minute", "action", "source", name="uq_audit_fold"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16), default="")
    action: Mapped[str] = mapped_column(String(32), index=True)
    call_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    target: Mapped[str] = mapped_column(String(128), default="")
    allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(64), default="")       # the client's address, for refusals
    count: Mapped[int] = mapped_column(Integer, default=1)            # how many times (folded refusals)
    # the last of them; a single (unfolded) row's is its own time, whoever writes it
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                              default=lambda ctx: ctx.get_current_parameters()["at"])
    fold_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)   # minutes since 1970, folded rows


class Ticket(Base):
    """A consultation ticket: one per answered call, voicemail or callback (backoffice/tickets.py)."""
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    source: Mapped[str] = mapped_column(String(16))              # call | voicemail | callback
    city: Mapped[str] = mapped_column(String(32), default="", index=True)
    caller_number: Mapped[str] = mapped_column(String(32), default="", index=True)
    language: Mapped[str] = mapped_column(String(8), default="")
    agent: Mapped[str] = mapped_column(String(64), default="", index=True)
    green: Mapped[str] = mapped_column(String(32), default="")
    category: Mapped[str] = mapped_column(String(32), default="", index=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    answer: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(24), default="")
    follow_up: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    county: Mapped[str] = mapped_column(String(6), default="", index=True)   # division code (county-level stats)


class Appointment(Base):
    """A legal-aid appointment booked during a call. ``seat`` is unique per slot while booked (NULL
    once cancelled), which is what makes double booking impossible under concurrency."""
    __tablename__ = "appointments"
    # a home visit's seat is a team of the center's: its own seats, never an office seat
    __table_args__ = (UniqueConstraint("center_id", "kind", "day", "slot", "seat", name="uq_appointment_seat"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    center_id: Mapped[str] = mapped_column(String(48), index=True)
    city: Mapped[str] = mapped_column(String(32), index=True)
    day: Mapped[str] = mapped_column(String(10), index=True)       # YYYY-MM-DD, the center's local date
    slot: Mapped[str] = mapped_column(String(5))                   # HH:MM
    seat: Mapped[int | None] = mapped_column(Integer, nullable=True)
    caller_number: Mapped[str] = mapped_column(String(32), index=True)
    language: Mapped[str] = mapped_column(String(8), default="zh")
    ticket_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    booked_by: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="booked", index=True)   # booked | cancelled
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="office", server_default="office")  # office | home_visit
    address: Mapped[str] = mapped_column(Text, default="", server_default="")      # a home visit's address
    reason: Mapped[str] = mapped_column(String(32), default="", server_default="")  # elderly_80 | severe_disability


class OutboxMessage(Base):
    """A message to send, written in the same transaction as the change that causes it: a text to a
    caller (channel "sms", sent over SMPP by interop/sms.py, its parts in sms_parts; store/sms.py) or a
    partner delivery (channel "http", interop/delivery.py)."""
    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), default="sms")
    kind: Mapped[str] = mapped_column(String(24))                  # appointment_confirmation, ..._reminder, ...
    to_number: Mapped[str] = mapped_column(String(32), index=True)
    language: Mapped[str] = mapped_column(String(8))
    body: Mapped[str] = mapped_column(Text)
    related: Mapped[str] = mapped_column(String(64), default="", index=True)   # "appointment:12"
    # http: pending | sending | sent | dead | cancelled; sms: pending | sending | submitted | delivered |
    # failed | dead | cancelled (store/sms.py)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # partner deliveries (channel "http"): interop/outbox.py
    partner: Mapped[str] = mapped_column(String(32), default="", index=True)
    payload: Mapped[str] = mapped_column(Text, default="")             # JSON body, as the partner receives it
    idempotency_key: Mapped[str | None] = mapped_column(String(96), nullable=True, unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    worker: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class FollowUp(Base):
    """A follow-up visit (回访) call after a ticket closed: survey scores 1-5 per question."""
    __tablename__ = "follow_ups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(Integer, unique=True)
    caller_number: Mapped[str] = mapped_column(String(32), index=True)
    language: Mapped[str] = mapped_column(String(8), default="zh")
    city: Mapped[str] = mapped_column(String(32), default="", index=True)
    agent: Mapped[str] = mapped_column(String(64), default="", index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending dialing done failed opted_out
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    attitude: Mapped[int | None] = mapped_column(Integer, nullable=True)
    efficiency: Mapped[int | None] = mapped_column(Integer, nullable=True)
    professionalism: Mapped[int | None] = mapped_column(Integer, nullable=True)
    callback_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    node: Mapped[str] = mapped_column(String(32), default="")     # the node that dialled it last


class OptOut(Base):
    """Numbers that asked never to be called for follow-ups (pressed 9, or told an agent)."""
    __tablename__ = "opt_outs"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Complaint(Base):
    """A complaint about the service or a petition (服务投诉, 信访): received, assigned to a supervisor,
    replied to the complainant (an outbox message), closed; due within a set number of days."""
    __tablename__ = "complaints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[str] = mapped_column(String(16))                   # service | petition
    source: Mapped[str] = mapped_column(String(16))                 # phone | api | letter | visit
    city: Mapped[str] = mapped_column(String(32), index=True)
    complainant_number: Mapped[str] = mapped_column(String(32), default="", index=True)
    complainant_name: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(8), default="zh")
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    about_agent: Mapped[str] = mapped_column(String(64), default="", index=True)
    description: Mapped[str] = mapped_column(Text)
    assigned_to: Mapped[str] = mapped_column(String(64), default="", index=True)
    status: Mapped[str] = mapped_column(String(16), default="received", index=True)
    reply: Mapped[str] = mapped_column(Text, default="")
    received_by: Mapped[str] = mapped_column(String(64), default="")
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    replied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Transcript(Base):
    """A call's transcript and the job that makes it (transcription/): pending → running → done,
    or failed / no_model with the reason. ``worker`` and ``lease_until`` are the claim: a worker
    that dies stops renewing, and the job is taken up again once the lease has run out."""
    __tablename__ = "transcripts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)
    city: Mapped[str] = mapped_column(String(32), default="", index=True)
    language: Mapped[str] = mapped_column(String(8), default="")
    agent: Mapped[str] = mapped_column(String(64), default="", index=True)
    recording: Mapped[str] = mapped_column(Text, default="")          # base name, as Asterisk wrote it
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    next_try_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    segments: Mapped[str] = mapped_column(Text, default="[]")          # JSON: speaker, start, end, text, words
    text: Mapped[str] = mapped_column(Text, default="")
    audio_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    suggested_categories: Mapped[str] = mapped_column(String(255), default="")  # comma-separated
    call_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    recording_purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SearchDoc(Base):
    """Full-text search over transcripts, ticket texts and call notes. ``tokens`` is the segmented
    text (transcription/segment.py); SQLite indexes it with FTS5 (search_fts, kept in step by
    triggers), PostgreSQL with a GIN index on to_tsvector('simple', tokens)."""
    __tablename__ = "search_docs"
    __table_args__ = (UniqueConstraint("kind", "ref", name="uq_search_doc"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))              # transcript | ticket | note
    ref: Mapped[str] = mapped_column(String(64))               # call id, or ticket id
    call_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    city: Mapped[str] = mapped_column(String(32), default="", index=True)
    agent: Mapped[str] = mapped_column(String(64), default="", index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    tokens: Mapped[str] = mapped_column(Text, default="")


class Alert(Base):
    """Something a supervisor must see: keyword alerts from transcripts (live or post-call, one per
    call and topic), dead letters, and wallboard alarms (kind "alarm", topic = the condition, cleared
    when it no longer holds). Acknowledged by a person."""
    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("call_id", "kind", "topic", name="uq_alert_call_topic"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)      # keyword
    city: Mapped[str] = mapped_column(String(32), default="", index=True)
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    agent: Mapped[str] = mapped_column(String(64), default="")
    topic: Mapped[str] = mapped_column(String(32), default="")
    term: Mapped[str] = mapped_column(String(64), default="")
    severity: Mapped[str] = mapped_column(String(8), default="normal")
    phase: Mapped[str] = mapped_column(String(16), default="")      # live | post_call
    speaker: Mapped[str] = mapped_column(String(16), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    acknowledged_by: Mapped[str] = mapped_column(String(64), default="")
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # alarms: condition over


class Handoff(Base):
    """A ticket handed to a partner (direction out: 12348 → 12345) or from one (in: 12345 → 12348),
    with the partner's ticket id and the latest status it reported (``status_seq`` orders updates)."""
    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(4))                  # out | in
    partner: Mapped[str] = mapped_column(String(32), index=True)
    ticket_id: Mapped[int] = mapped_column(Integer, index=True)
    city: Mapped[str] = mapped_column(String(32), default="", index=True)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_by: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    partner_ticket_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    status_seq: Mapped[int] = mapped_column(Integer, default=0)
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InboundRequest(Base):
    """Every signed request a partner made: its nonce (a replay is refused) and, with an
    Idempotency-Key, the answer given (a retry gets the same answer, nothing is written twice)."""
    __tablename__ = "inbound_requests"
    __table_args__ = (UniqueConstraint("partner", "nonce", name="uq_inbound_nonce"),
                      UniqueConstraint("partner", "idempotency_key", name="uq_inbound_idempotency"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner: Mapped[str] = mapped_column(String(32))
    nonce: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    path: Mapped[str] = mapped_column(String(128), default="")
    status_code: Mapped[int] = mapped_column(Integer, default=0)
    response: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class FederationNonce(Base):
    """Command-center node: the nonces city nodes signed with, kept while their timestamp could still
    pass the signature window, so a request cannot be replayed, also not after a restart."""
    __tablename__ = "federation_nonces"
    __table_args__ = (UniqueConstraint("node", "nonce", name="uq_federation_nonce"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class CityNode(Base):
    """Command-center node: each city node's latest report and the last ticket event seq received."""
    __tablename__ = "city_nodes"

    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    cities: Mapped[str] = mapped_column(Text, default="")              # comma-separated city ids
    report: Mapped[str] = mapped_column(Text, default="")              # JSON CityReport
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ticket_seq: Mapped[int] = mapped_column(Integer, default=0)        # contiguous events received


class FederatedEvent(Base):
    """Command-center node: ticket events from city nodes, once each (node, seq)."""
    __tablename__ = "federated_events"
    __table_args__ = (UniqueConstraint("node", "seq", name="uq_federated_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(64), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    city: Mapped[str] = mapped_column(String(32), default="", index=True)
    ticket_id: Mapped[int] = mapped_column(Integer, default=0)
    ticket: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class NodeSequence(Base):
    """Gap-free counters of this node (ticket events to the command center): incremented inside the
    transaction that uses the number, so a rollback gives it back."""
    __tablename__ = "node_sequences"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class PromptRecording(Base):
    """An IVR prompt recording accepted by a supervisor (by phone or uploaded on the prompts page):
    one row per version; the newest per (language, prompt) is what callers hear."""
    __tablename__ = "prompt_recordings"
    __table_args__ = (UniqueConstraint("language", "prompt_id", "version", name="uq_prompt_recording_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    language: Mapped[str] = mapped_column(String(8), index=True)
    prompt_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    recorded_by: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))          # phone | upload
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
class KnowledgeEntry(Base):
    """An entry of the legal knowledge base (法律知识库, store/knowledge.py): its versions hold the
    text; at most one version is published (suggested while in force)."""
    __tablename__ = "kb_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)          # stable key (seed file, links)
    category: Mapped[str] = mapped_column(String(32), index=True)       # a ticket category
    status: Mapped[str] = mapped_column(String(16), index=True)         # draft | published | expired
    latest_version: Mapped[int] = mapped_column(Integer, default=1)
    published_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class KnowledgeVersion(Base):
    """One version of an entry's text; never changed after it is written except for its status
    (draft -> published -> superseded | expired) and who reviewed it."""
    __tablename__ = "kb_versions"
    __table_args__ = (UniqueConstraint("entry_id", "version", name="uq_kb_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(Integer, index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))      # draft | published | superseded | expired
    title: Mapped[str] = mapped_column(String(200))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)           # the SMS text
    laws: Mapped[str] = mapped_column(Text, default="[]")   # JSON [[law, article], ...]
    keywords: Mapped[str] = mapped_column(Text, default="")  # extra words to be found by, space-separated
    effective_from: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD
    effective_to: Mapped[str] = mapped_column(String(10), default="")  # "" = no end
    needs_lawyer_review: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[str] = mapped_column(String(64), default="")
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class KnowledgeUse(Base):
    """An entry used on a ticket: attached to it, or its summary texted to the caller."""
    __tablename__ = "kb_uses"
    __table_args__ = (UniqueConstraint("ticket_id", "entry_id", "action", name="uq_kb_use"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(Integer, index=True)
    version: Mapped[int] = mapped_column(Integer)
    ticket_id: Mapped[int] = mapped_column(Integer, index=True)
    call_id: Mapped[str] = mapped_column(String(64), default="")
    city: Mapped[str] = mapped_column(String(32), default="", index=True)
    action: Mapped[str] = mapped_column(String(16))      # attach | sms
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class KnowledgeMiss(Base):
    """A search of the knowledge base that found nothing: the questions the base should grow to answer."""
    __tablename__ = "kb_misses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32), default="")
    city: Mapped[str] = mapped_column(String(32), default="")
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
class SmsPart(Base):
    """One submit_sm of a text (a long text is several, joined by the handset through the UDH): the
    SMSC's message_id from submit_sm_resp and what its delivery receipt said (interop/sms.py)."""
    __tablename__ = "sms_parts"
    __table_args__ = (UniqueConstraint("message_id", "part", name="uq_sms_part"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(Integer, index=True)     # outbox_messages.id
    part: Mapped[int] = mapped_column(Integer)                         # 1-based
    parts: Mapped[int] = mapped_column(Integer)
    smsc_id: Mapped[str] = mapped_column(String(65), index=True)     # the SMSC's message_id
    status: Mapped[str] = mapped_column(String(16), default="submitted")   # submitted | delivered | failed
    receipt: Mapped[str] = mapped_column(String(16), default="")     # stat: DELIVRD, UNDELIV, EXPIRED, ...
    error: Mapped[str] = mapped_column(String(16), default="")       # err: the network's code
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
class AgentState(Base):
    """An agent's state as every node applies it (logged in, paused and why): what follows the agent
    from node to node. Asterisk stays the truth of its own members; this is what they are made to match."""
    __tablename__ = "agent_states"

    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    logged_in: Mapped[bool] = mapped_column(Boolean, default=False)
    paused: Mapped[bool] = mapped_column(Boolean, default=True)
    reason: Mapped[str] = mapped_column(String(64), default="")
    node: Mapped[str] = mapped_column(String(32), default="")      # where the change was made
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
