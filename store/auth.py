"""Desk logins (password hashes), sessions and API tokens, and the audit log. The policy (hashing,
lifetimes, CSRF, lockout) lives in dashboard/auth.py; this is only what it keeps."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from store.engine import Database, fitted, from_epoch, iso, storable, to_epoch, utcnow
from store.models import AuditEntry, AuthToken, UserCredential


class AuthStore:
    """Password hashes and the digests of session and API tokens."""

    def __init__(self, db: Database):
        self.session = db.session

    async def password_hash(self, user_id: str) -> str | None:
        async with self.session() as s:
            row = await s.get(UserCredential, user_id)
            return row.password_hash if row else None

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        async with self.session.begin() as s:
            row = await s.get(UserCredential, user_id)
            if row is None:
                s.add(UserCredential(user_id=user_id, password_hash=password_hash, updated_at=utcnow()))
            else:
                row.password_hash, row.updated_at = password_hash, utcnow()
            # a new password ends every session and token of that user
            await s.execute(update(AuthToken).where(AuthToken.user_id == user_id).values(revoked=True))

    async def add_token(self, token_hash: str, kind: str, user_id: str, expires_at: float, csrf: str = "",
                        label: str = "") -> None:
        async with self.session.begin() as s:
            s.add(AuthToken(token_hash=token_hash, kind=kind, user_id=user_id, csrf=csrf, label=label,
                            created_at=utcnow(), last_seen=utcnow(), expires_at=from_epoch(expires_at),
                            revoked=False))

    async def token(self, token_hash: str) -> dict | None:
        async with self.session() as s:
            row = (await s.execute(select(AuthToken).where(AuthToken.token_hash == token_hash))).scalar_one_or_none()
            if row is None or row.revoked:
                return None
            return {"kind": row.kind, "user_id": row.user_id, "csrf": row.csrf, "created_at": to_epoch(row.created_at),
                    "last_seen": to_epoch(row.last_seen), "expires_at": to_epoch(row.expires_at)}

    async def touch_token(self, token_hash: str) -> None:
        async with self.session.begin() as s:
            await s.execute(update(AuthToken).where(AuthToken.token_hash == token_hash).values(last_seen=utcnow()))

    async def revoke_token(self, token_hash: str) -> None:
        async with self.session.begin() as s:
            await s.execute(update(AuthToken).where(AuthToken.token_hash == token_hash).values(revoked=True))


class AuditLog:
    """Who did (or was refused) what: desk actions, logins, partners' and nodes' requests, commands.

    A refusal that anyone can cause, with no login (a bad password, an unsigned partner request), is
    ``refused``: folded into one row per action, source address and minute, counted, so that nobody can
    grow the log faster than a row a minute per address; past ``sources_per_minute`` addresses in a
    minute the rest share one row (source ``*``). The folded row keeps the first refusal's user, target
    and detail. Everything else (``audit``) is one row each. Rows are kept ``retention_days``
    (``purge``, run by the controller)."""

    def __init__(self, db: Database, sources_per_minute: int = 1000):
        self.session = db.session
        self.sources_per_minute = sources_per_minute
        self._fold = _fold_upsert(db.dialect)

    async def audit(self, user_id: str, role: str, action: str, call_id: str = "", target: str = "",
                    allowed: bool = True, detail: str = "", source: str = "") -> None:
        now = utcnow()
        async with self.session.begin() as s:
            s.add(AuditEntry(**fitted(AuditEntry, {
                "at": now, "last_at": now, "user_id": user_id, "role": role, "action": action, "call_id": call_id,
                "target": target, "allowed": allowed, "detail": detail, "source": source, "count": 1})))

    async def refused(self, action: str, source: str, user_id: str = "", role: str = "", target: str = "",
                      detail: str = "", call_id: str = "") -> None:
        now = utcnow()
        minute = int(now.timestamp() // 60)
        source = storable(source)[:64]
        # a read of its own, before the write: SQLite never has to turn a reading transaction into a
        # writing one (which fails at once when another writer got in); the cap is approximate anyway
        async with self.session() as s:
            rows, mine = (await s.execute(
                select(func.count(), func.max(case((AuditEntry.source == source, 1), else_=0)))
                .where(AuditEntry.fold_minute == minute, AuditEntry.action == action))).one()
        if rows >= self.sources_per_minute and not mine:
            source = "*"
        async with self.session.begin() as s:
            # an upsert: concurrent refusals from one source add up in one row on both databases
            await s.execute(self._fold, fitted(AuditEntry, {
                "at": now, "last_at": now, "user_id": user_id, "role": role, "action": action, "call_id": call_id,
                "target": target, "allowed": False, "detail": detail, "source": source, "count": 1,
                "fold_minute": minute}))

    async def purge(self, retention_days: float) -> int:
        """Delete the rows older than the retention period; how many."""
        cutoff = utcnow() - timedelta(days=retention_days)
        async with self.session.begin() as s:
            return (await s.execute(delete(AuditEntry).where(AuditEntry.at < cutoff))).rowcount

    async def audit_entries(self, limit: int = 100, call_id: str | None = None, user_id: str | None = None) -> list[dict]:
        q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if call_id:
            q = q.where(AuditEntry.call_id == call_id)
        if user_id:
            q = q.where(AuditEntry.user_id == user_id)
        async with self.session() as s:
            rows = (await s.execute(q)).scalars().all()
        return [{"id": r.id, "at": iso(r.at), "user_id": r.user_id, "role": r.role, "action": r.action,
                 "call_id": r.call_id, "target": r.target, "allowed": r.allowed, "detail": r.detail,
                 "source": r.source, "count": r.count, "last_at": iso(r.last_at)} for r in rows]


def _fold_upsert(dialect: str):
    """Insert a folded refusal's row, or count one more in the row of its minute, action and source."""
    table = AuditEntry.__table__
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    return stmt.on_conflict_do_update(index_elements=[table.c.fold_minute, table.c.action, table.c.source],
                                      set_={"count": table.c.count + 1, "last_at": stmt.excluded.last_at})
