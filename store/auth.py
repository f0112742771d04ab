"""Desk logins (password hashes), sessions and API tokens, and the audit log. The policy (hashing,
lifetimes, CSRF, lockout) lives in dashboard/auth.py; this is only what it keeps."""
from __future__ import annotations

from sqlalchemy import select, update

from store.engine import Database, from_epoch, iso, to_epoch, utcnow
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
    """Who did (or was refused) what: desk actions, logins, partners' and nodes' requests, commands."""

    def __init__(self, db: Database):
        self.session = db.session

    async def audit(self, user_id: str, role: str, action: str, call_id: str = "", target: str = "",
                    allowed: bool = True, detail: str = "") -> None:
        async with self.session.begin() as s:
            s.add(AuditEntry(at=utcnow(), user_id=user_id, role=role, action=action, call_id=call_id,
                             target=target[:128], allowed=allowed, detail=detail))

    async def audit_entries(self, limit: int = 100, call_id: str | None = None, user_id: str | None = None) -> list[dict]:
        q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if call_id:
            q = q.where(AuditEntry.call_id == call_id)
        if user_id:
            q = q.where(AuditEntry.user_id == user_id)
        async with self.session() as s:
            rows = (await s.execute(q)).scalars().all()
        return [{"id": r.id, "at": iso(r.at), "user_id": r.user_id, "role": r.role, "action": r.action,
                 "call_id": r.call_id, "target": r.target, "allowed": r.allowed, "detail": r.detail} for r in rows]
