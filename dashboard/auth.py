"""Desk logins: Argon2id passwords, expiring sessions (cookie + CSRF token), API tokens, and the
local operator's service token. Every /api/ request passes through ``Auth.middleware``.

Sessions live in the database (a controller restart does not log the desk out); only SHA-256
digests of the secrets are stored.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import time

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

from core import access
from core.access import SERVICE, Principal, principals
from core.config import HotlineConfig

log = logging.getLogger("hotline.auth")

COOKIE = "hl_session"
PRINCIPAL = web.RequestKey("principal", Principal)   # who is asking, set by Auth.middleware
SESSION = web.RequestKey("session", dict)            # their session row (cookie logins only)
CSRF_HEADER = "X-CSRF-Token"
# reachable without a login: the login itself, liveness, and the pages (they ask for a login)
OPEN_PATHS = ("/api/login", "/api/health")
SIGNED_PREFIXES = ("/api/interop/", "/api/federation/v1/")
# failed logins within LOCKOUT_SECONDS: per user from one client, per client over all users (spraying),
# per user over all clients (a guess spread over many addresses: it tightens the per-client limit for that
# user, it never refuses a client that has not failed; see LoginThrottle)
LOCKOUT_SECONDS, LOCKOUT_FAILURES, CLIENT_FAILURES, USER_FAILURES = 60, 5, 20, 50
ARGON2_PARALLEL, ARGON2_QUEUE = 2, 16      # 64 MiB and ~0.1 s of a core per verification
# no user id is longer (config ids: 32); a longer one is refused before the throttle keeps it for a minute
USER_MAX = 64

# RFC 9106's second recommendation (64 MiB, 3 passes): strong without needing a big box
hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


class Throttled(PermissionError):
    """Too many attempts, or too many logins being checked at once: try again after ``retry_after`` s."""

    def __init__(self, why: str, retry_after: float):
        super().__init__(why)
        self.retry_after = max(1, int(retry_after + 0.999))


class LoginThrottle:
    """Failed logins in a sliding window, counted per (user, client), per client and per user.
    Memory is bounded: entries older than the window are dropped, and at most ``max_keys`` are kept.

    The rule: throttle the guesser, never the owner. Only a client (address) that has been failing is
    ever refused:

    * ``pair``: this client failed ``per_pair`` times for this user -> refused for this user;
    * ``client``: this client failed ``per_client`` times over all users (spraying) -> refused for all;
    * ``user``: the user failed ``per_user`` times over all clients (a guess spread over many addresses)
      -> from then on, within the window, a client that has failed even once for this user is refused
      for this user: every guessing address gets one guess per window instead of ``per_pair``.

    A client with no failure for this user (and below the spraying limit) is always let try, however
    many failures the user has elsewhere: a correct password from the owner's clean machine gets in.
    A per-user lock would let anyone lock any agent out of their desk with a few junk logins, and behind
    a proxy (all clients one address, unless ``controller.trusted_proxies`` is set) lock out everybody.
    What is left to a guesser with many addresses is one guess per address and window; with passwords
    of at least 10 characters that is acceptable, and each guess is audited with its address."""

    def __init__(self, window: float = LOCKOUT_SECONDS, per_pair: int = LOCKOUT_FAILURES,
                 per_client: int = CLIENT_FAILURES, per_user: int = USER_FAILURES, max_keys: int = 10_000,
                 clock=time.monotonic):
        self.window, self.clock, self.max_keys = window, clock, max_keys
        self.limits = {"pair": per_pair, "client": per_client, "user": per_user}
        self._failures: dict[tuple, list[float]] = {}

    def _keys(self, user: str, client: str) -> dict[str, tuple]:
        return {"pair": ("pair", user, client), "client": ("client", client), "user": ("user", user)}

    def _recent(self, key: tuple, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, ()) if t > now - self.window]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def wait(self, user: str, client: str) -> tuple[str, float]:
        """('', 0) when another try is allowed, else (which limit, seconds until it is)."""
        now = self.clock()
        keys = self._keys(user, client)
        for kind in ("pair", "client"):
            times = self._recent(keys[kind], now)
            if len(times) >= self.limits[kind]:
                return kind, times[-self.limits[kind]] + self.window - now
        # the user under attack: one failure for them is enough to hold this client (a clean one passes)
        if len(self._recent(keys["user"], now)) >= self.limits["user"]:
            mine = self._recent(keys["pair"], now)
            if mine:
                return "user", mine[-1] + self.window - now
        return "", 0.0

    def failed(self, user: str, client: str) -> None:
        now = self.clock()
        if len(self._failures) >= self.max_keys:     # flooded with made-up names: forget the stalest
            for key in sorted(self._failures, key=lambda k: self._failures[k][-1])[:len(self._failures) // 2]:
                del self._failures[key]
        for key in self._keys(user, client).values():
            self._failures[key] = self._recent(key, now) + [now]

    def succeeded(self, user: str, client: str) -> None:
        self._failures.pop(("pair", user, client), None)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return ip.ipv4_mapped or ip if isinstance(ip, ipaddress.IPv6Address) else ip


def _client_key(ip) -> str:
    """The throttle's name for a client: an IPv4 address, or an IPv6 /64 (a host picks freely within it)."""
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def client_address(peer: str, forwarded: list[str], trusted: tuple[Network, ...]) -> str:
    """Who is logging in. ``peer`` is the TCP peer, ``forwarded`` the X-Forwarded-For header(s) in order.
    The header is believed only when the peer is a trusted proxy (``controller.trusted_proxies``), and
    then only as far as our own proxies go: walking from the right (the hop our proxy added), the first
    address that is not a trusted proxy is the client; anything a client wrote further left is ignored.
    An entry that is not an address ends the walk at the last trusted hop."""
    ip = _address(peer)
    if ip is None:
        return peer
    if not any(ip in net for net in trusted):
        return _client_key(ip)
    hops = [h for value in forwarded for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        h = _address(hop)
        if h is None:
            break
        ip = h
        if not any(h in net for net in trusted):
            break
    return _client_key(ip)


def login_refused(e: PermissionError) -> web.Response:
    """The answer to a refused login: 429 with Retry-After when throttled, else 401."""
    if isinstance(e, Throttled):
        return web.json_response({"error": str(e), "retry_after": e.retry_after}, status=429,
                                 headers={"Retry-After": str(e.retry_after)})
    return web.json_response({"error": str(e)}, status=401)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _is_text(s: str) -> bool:
    """Whether ``s`` can be encoded as UTF-8: JSON allows a lone surrogate ("\\udcff"), which neither
    Argon2 (it hashes UTF-8 bytes) nor a database can take."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unusable_login(user, password) -> str:
    """Why a login's user and password cannot even be checked, '' when they can."""
    if not isinstance(user, str) or not isinstance(password, str) or not user or not password:
        return "user and password are required strings"
    if len(user) > USER_MAX:
        return f"no user id is longer than {USER_MAX} characters"
    if not (_is_text(user) and _is_text(password)):
        return "user and password must be valid Unicode text (a lone surrogate is not)"
    return ""


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise ValueError("a password needs at least 10 characters")
    if not _is_text(password):
        raise ValueError("a password must be valid Unicode text (a lone surrogate is not)")
    return hasher.hash(password)


def _verify(stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


class Auth:
    def __init__(self, cfg: HotlineConfig, store, service_token: str = "", refused=None):
        self.cfg, self.store = cfg, store
        self.refused = refused      # AuditLog.refused: refusals made here are audited, folded per source
        self.users = principals(cfg)
        self._service = digest(service_token) if service_token else ""
        self.throttle = LoginThrottle()
        self.trusted_proxies = tuple(ipaddress.ip_network(n) for n in cfg.system.controller.trusted_proxies)
        self._verifying = asyncio.Semaphore(ARGON2_PARALLEL)
        self._queued = 0
        c = cfg.system.controller
        self.idle, self.max_age = c.session_idle_minutes * 60, c.session_max_hours * 3600
        # told (token digest or '', user id or '', why) when logins end in this process: open sockets close
        self.ended: list = []

    def client(self, request: web.Request) -> str:
        """The client's address for throttling and the audit log (X-Forwarded-For from trusted proxies)."""
        return client_address(request.remote or "", request.headers.getall("X-Forwarded-For", []),
                              self.trusted_proxies)

    # ---- logging in and out
    async def login(self, user_id: str, password: str, client: str = "") -> tuple[Principal, str, str]:
        """(principal, session token, CSRF token); raises PermissionError with a reason for the log,
        Throttled when this user, this client or the server has had too many attempts."""
        if unusable_login(user_id, password):      # the HTTP route answers 400 first; this is for any caller
            raise PermissionError("wrong user or password")
        limit, wait = self.throttle.wait(user_id, client)
        if limit:
            raise Throttled({"pair": "too many failed logins for this user from here",
                             "client": "too many failed logins from this address",
                             "user": "too many failed logins for this user; from here, wait"}[limit], wait)
        if self._queued >= ARGON2_QUEUE:     # each check holds 64 MiB: a flood waits outside, not in memory
            raise Throttled("too many logins being checked; try again", 1)
        principal = self.users.get(user_id)
        stored = await self.store.password_hash(user_id) if principal else None
        self._queued += 1
        try:
            async with self._verifying:
                # verify even for unknown users, so timing does not tell which ids exist
                ok = await asyncio.to_thread(_verify, stored or _DUMMY, password)
        finally:
            self._queued -= 1
        if not (principal and stored and ok):
            self.throttle.failed(user_id, client)
            raise PermissionError("wrong user or password")
        self.throttle.succeeded(user_id, client)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        await self.store.add_token(digest(token), "session", user_id, time.time() + self.max_age, csrf=csrf)
        return principal, token, csrf

    async def revoke(self, token_hash: str, why: str = "logged out") -> None:
        """End one session or API token (logout), and tell whoever holds it open (live sockets)."""
        await self.store.revoke_token(token_hash)
        self._ended(token_hash, "", why)

    def _ended(self, token_hash: str, user_id: str, why: str) -> None:
        for listener in self.ended:
            listener(token_hash, user_id, why)

    async def set_password(self, user_id: str, password: str) -> None:
        if user_id not in self.users:
            raise KeyError(f"no desk user {user_id!r} (agents and supervisors in config/agents.yaml)")
        await self.store.set_password_hash(user_id, await asyncio.to_thread(hash_password, password))
        self._ended("", user_id, "password changed")   # `hotline passwd` is another process: see still_valid

    async def still_valid(self, row: dict | None) -> str:
        """'' while the login behind ``row`` (a request's SESSION) still stands, else why it ended.
        Reads the store, so it sees what other processes did (`hotline passwd`, revocations); it does
        not count as activity (an open socket is not someone at the desk)."""
        if row is None:          # the service token: configured, not stored
            return ""
        fresh = await self.store.token(row["hash"])
        now = time.time()
        if fresh is None or fresh["kind"] != row["kind"] or fresh["user_id"] != row["user_id"]:
            return "session ended (logged out, revoked or password changed)"
        if fresh["expires_at"] < now:
            return "session expired"
        if fresh["kind"] == "session" and fresh["last_seen"] + self.idle < now:
            return "session expired (idle)"
        return ""

    async def issue_api_token(self, user_id: str, days: float, label: str = "") -> str:
        if user_id not in self.users:
            raise KeyError(f"no desk user {user_id!r}")
        token = "hlt_" + secrets.token_urlsafe(32)
        await self.store.add_token(digest(token), "api", user_id, time.time() + days * 86400, label=label)
        return token

    # ---- every request
    async def identify(self, request: web.Request) -> tuple[Principal | None, str, dict | None]:
        """(principal, how: 'bearer'|'cookie'|'', token row) for this request; a token that was sent but
        is not valid gives (None, how, None)."""
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            token = header[7:].strip()
            # ours are ASCII; bytes that were not UTF-8 arrive as lone surrogates, which hashing cannot encode
            if not token.isascii():
                return None, "bearer", None
            h = digest(token)
            if self._service and hmac.compare_digest(h, self._service):
                return SERVICE, "bearer", None
            row = await self.store.token(h)
            if row and row["kind"] == "api" and row["expires_at"] > time.time():
                row["hash"] = h
                return self.users.get(row["user_id"]), "bearer", row
            return None, "bearer", None
        token = request.cookies.get(COOKIE)   # browsers send it on the WebSocket upgrade too
        if not token:
            return None, "", None
        if not token.isascii():
            return None, "cookie", None
        h = digest(token)
        row = await self.store.token(h)
        now = time.time()
        if not row or row["kind"] != "session" or row["expires_at"] < now or row["last_seen"] + self.idle < now:
            return None, "cookie", None
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
            if how:   # a token was sent: guessed, revoked (perhaps stolen) or expired
                await self._refused(request, "token_refused", None, f"{how} token unknown, revoked or expired")
            return _error(401, "login required (session expired or missing)")
        if how == "cookie" and request.method not in ("GET", "HEAD", "OPTIONS"):
            # cookies ride along with cross-site requests; the CSRF token does not
            sent = request.headers.get(CSRF_HEADER, "")
            # compare_digest raises TypeError on non-ASCII str (was a 500); our tokens are ASCII
            if not (row and sent and sent.isascii() and hmac.compare_digest(sent, row["csrf"])):
                await self._refused(request, "csrf_refused", principal, "missing or wrong CSRF token")
                return _error(403, "missing or wrong CSRF token")
        if not access.may_reach(principal, request.method, request.path):
            why = f"a {principal.role} login may not use {request.method} {request.path}"
            await self._refused(request, "route_refused", principal, why)
            return _error(403, why)
        request[PRINCIPAL] = principal
        request[SESSION] = row
        return await handler(request)

    async def _refused(self, request: web.Request, action: str, principal: Principal | None, why: str) -> None:
        if self.refused:
            await self.refused(action, self.client(request), user_id=principal.user_id if principal else "",
                               role=principal.role if principal else "",
                               target=f"{request.method} {request.path}", detail=why)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


_DUMMY = hasher.hash("no such user: constant-time padding")
