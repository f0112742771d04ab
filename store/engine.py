"""The database every aggregate store shares: one async SQLAlchemy engine and its sessions (SQLite via
aiosqlite by default, PostgreSQL via psycopg 3 by URL), Alembic's ``migrate()``, and the helpers the
aggregate stores (store/calls.py, store/tickets.py, ...) have in common."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from core.numbering import caller_forms

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def sync_url(url: str, root: Path) -> str:
    """Normalise a configured URL for the sync driver (Alembic); relative SQLite paths are under root."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and not path.startswith("/"):
            path = str((root / path).resolve())
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def async_url(url: str, root: Path) -> str:
    s = sync_url(url, root)
    return s.replace("sqlite:///", "sqlite+aiosqlite:///", 1) if s.startswith("sqlite:") else s


def _alembic(url: str, root: Path) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url(url, root))
    return cfg


def migrate(url: str, root: Path, revision: str = "head") -> None:
    """Bring the schema to ``revision``, by default the newest Alembic revision (idempotent)."""
    command.upgrade(_alembic(url, root), revision)


def migrate_down(url: str, root: Path, revision: str) -> None:
    """Roll the schema back to ``revision`` (an upgrade's rollback: run with the new code, before
    the old code is put back)."""
    command.downgrade(_alembic(url, root), revision)


class Database:
    """The engine and its session factory; each aggregate store is built on one (``TicketStore(db)``)."""

    def __init__(self, url: str, root: Path):
        self.url = url
        self.engine: AsyncEngine = create_async_engine(async_url(url, root), pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            # WAL: readers (the API) never block the writer; NORMAL sync is durable across process
            # crashes (a power cut may lose the last transactions, not corrupt the file)
            @event.listens_for(self.engine.sync_engine, "connect")
            def _pragmas(dbapi_conn, _record):
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=5000")
                cur.close()
        self.session = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def ping(self, timeout: float = 3) -> str | None:
        """None when the database answers a trivial query within ``timeout`` seconds, else why not."""
        import asyncio

        async def query():
            async with self.session() as s:
                await s.execute(text("SELECT 1"))
        try:
            await asyncio.wait_for(query(), timeout)
            return None
        except (SQLAlchemyError, OSError, asyncio.TimeoutError) as e:
            return f"{type(e).__name__}: {e}"[:300]

    async def close(self) -> None:
        await self.engine.dispose()


# ---- shared helpers
def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def from_epoch(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, tz=timezone.utc) if ts else None


def to_epoch(dt: datetime | None) -> float | None:
    if dt is None:
        return None
    if dt.tzinfo is None:  # SQLite hands back naive datetimes: they were stored as UTC
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def iso(dt: datetime) -> str:
    """A stored timestamp as ISO 8601 in UTC."""
    return datetime.fromtimestamp(to_epoch(dt), tz=timezone.utc).isoformat()


def same_caller(column, number: str | None, alias: str = ""):
    """``column`` holds ``number`` in any of its forms (13800000000, +8613800000000, 008613800000000, ...):
    numbers are stored as the carrier or a person gave them, and compared as one caller (E.164,
    core.numbering), so rows written before and after a carrier changed its format still match. Matches
    nothing for a withheld or empty number. ``alias``, the number's pseudonym (core/privacy.py), also
    matches the rows whose clear number was replaced after the retention period."""
    forms = caller_forms(number)
    return column.in_(forms + [alias] if forms and alias else forms)


def row_to_dict(row) -> dict:
    """A table row as JSON-ready values: every timestamp as ISO 8601 in UTC."""
    out = {c.name: getattr(row, c.name) for c in row.__table__.columns}
    for k, v in out.items():
        if isinstance(v, datetime):
            out[k] = iso(v)
    return out


def storable(text: str) -> str:
    """Text every database can store: without NUL (PostgreSQL refuses it) and with each lone surrogate
    (JSON's "\\udcff", header bytes that were not UTF-8) as U+FFFD: no driver can encode one."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text.replace("\x00", "")


def fitted(model, values: dict) -> dict:
    """Column values from what Asterisk or a client sent, storable and cut to each column's length:
    a caller ID is the caller's to choose, and PostgreSQL refuses an over-long or NUL-bearing value —
    the record writer would retry that row forever and no later call would be saved."""
    cols = model.__table__.c
    out = {}
    for name, v in values.items():
        if isinstance(v, str):
            v = storable(v)
            length = getattr(cols[name].type, "length", None)
            if length:
                v = v[:length]
        out[name] = v
    return out


def fit(row, **values) -> None:
    for name, v in fitted(type(row), values).items():
        setattr(row, name, v)


async def change_row(s, model, row_id: int, expect_status: str | None, changes: dict):
    """Lock a row, check it is still in the expected status, apply changes (None if it moved on)."""
    row = await s.get(model, row_id, with_for_update=True)
    if row is None or (expect_status and row.status != expect_status):
        return None
    for k, v in changes.items():
        setattr(row, k, v)
    row.updated_at = utcnow()
    return row
