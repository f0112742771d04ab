"""Database tables. Changes go through an Alembic migration (callcenter/store/migrations)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


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
