"""Desk logins: Argon2id passwords, expiring sessions (cookie + CSRF token), API tokens, and the
local operator's service token. Every /api/ request passes through ``Auth.middleware``.

Sessions live in the database (a controller restart does not log the desk out); only SHA-256
digests of the secrets are stored.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

from callcenter.access import SERVICE, Principal, principals
from callcenter.config import HotlineConfig

log = logging.getLogger("hotline.auth")

COOKIE = "hl_session"
PRINCIPAL = web.RequestKey("principal", Principal)   # who is asking, set by Auth.middleware
SESSION = web.RequestKey("session", dict)            # their session row (cookie logins only)
CSRF_HEADER = "X-CSRF-Token"
# reachable without a login: the login itself, liveness, and the pages (they ask for a login)
OPEN_PATHS = ("/api/login", "/api/health")
SIGNED_PREFIXES = ("/api/interop/", "/api/federation/v1/")
LOCKOUT_FAILURES, LOCKOUT_SECONDS = 5, 60

# RFC 9106's second recommendation (64 MiB, 3 passes): strong without needing a big box
hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise ValueError("a password needs at least 10 characters")
    return hasher.hash(password)


def _verify(stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


class Auth:
    def __init__(self, cfg: HotlineConfig, store, service_token: str = ""):
        self.cfg, self.store = cfg, store
        self.users = principals(cfg)
        self._service = digest(service_token) if service_token else ""
        self._failures: dict[str, list[float]] = {}
        c = cfg.system.controller
        self.idle, self.max_age = c.session_idle_minutes * 60, c.session_max_hours * 3600

    # ---- logging in and out
    async def login(self, user_id: str, password: str) -> tuple[Principal, str, str]:
        """(principal, session token, CSRF token); raises PermissionError with a reason for the log."""
        recent = [t for t in self._failures.get(user_id, []) if t > time.time() - LOCKOUT_SECONDS]
        if len(recent) >= LOCKOUT_FAILURES:
            raise PermissionError("too many failed logins; wait a minute")
        principal = self.users.get(user_id)
        stored = await self.store.password_hash(user_id) if principal else None
        # verify even for unknown users, so timing does not tell which ids exist
        ok = await asyncio.to_thread(_verify, stored or _DUMMY, password)
        if not (principal and stored and ok):
            self._failures[user_id] = recent + [time.time()]
            raise PermissionError("wrong user or password")
        self._failures.pop(user_id, None)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        await self.store.add_token(digest(token), "session", user_id, time.time() + self.max_age, csrf=csrf)
        return principal, token, csrf

    async def set_password(self, user_id: str, password: str) -> None:
        if user_id not in self.users:
            raise KeyError(f"no desk user {user_id!r} (agents and supervisors in config/agents.yaml)")
        await self.store.set_password_hash(user_id, await asyncio.to_thread(hash_password, password))

    async def issue_api_token(self, user_id: str, days: float, label: str = "") -> str:
        if user_id not in self.users:
            raise KeyError(f"no desk user {user_id!r}")
        token = "hlt_" + secrets.token_urlsafe(32)
        await self.store.add_token(digest(token), "api", user_id, time.time() + days * 86400, label=label)
        return token

    # ---- every request
    async def identify(self, request: web.Request) -> tuple[Principal | None, str, dict | None]:
        """(principal, how: 'bearer'|'cookie'|'', token row) for this request."""
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            token = header[7:].strip()
            h = digest(token)
            if self._service and hmac.compare_digest(h, self._service):
                return SERVICE, "bearer", None
            row = await self.store.token(h)
            if row and row["kind"] == "api" and row["expires_at"] > time.time():
                return self.users.get(row["user_id"]), "bearer", row
            return None, "", None
        token = request.cookies.get(COOKIE)   # browsers send it on the WebSocket upgrade too
        if not token:
            return None, "", None
        h = digest(token)
        row = await self.store.token(h)
        now = time.time()
        if not row or row["kind"] != "session" or row["expires_at"] < now or row["last_seen"] + self.idle < now:
            return None, "", None
        if now - row["last_seen"] > 30:   # sliding idle timeout, without a write per request
            await self.store.touch_token(h)
        row["hash"] = h
        return self.users.get(row["user_id"]), "cookie", row

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        if not (request.path.startswith("/api/") or request.path == "/ws") or request.path in OPEN_PATHS \
                or request.path.startswith(SIGNED_PREFIXES):   # partners sign each request (interop/signing.py)
            return await handler(request)
        principal, how, row = await self.identify(request)
        if principal is None:
            return _error(401, "login required (session expired or missing)")
        if how == "cookie" and request.method not in ("GET", "HEAD", "OPTIONS"):
            # cookies ride along with cross-site requests; the CSRF token does not
            sent = request.headers.get(CSRF_HEADER, "")
            if not (row and sent and hmac.compare_digest(sent, row["csrf"])):
                return _error(403, "missing or wrong CSRF token")
        request[PRINCIPAL] = principal
        request[SESSION] = row
        return await handler(request)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


_DUMMY = hasher.hash("no such user: constant-time padding")
