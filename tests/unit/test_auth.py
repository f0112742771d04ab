"""Desk logins over real HTTP (aiohttp test server) and a real database (SQLite and PostgreSQL):
Argon2id passwords, lockout, session idle and absolute expiry, CSRF, API tokens, revocation."""
import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update

from core.config import load_config
from store.auth import AuthStore
from store.engine import Database, migrate
from store.models import AuthToken
import dashboard.auth
from dashboard.auth import (COOKIE, CSRF_HEADER, PRINCIPAL, Auth, LoginThrottle, Throttled, hash_password,
                            login_refused)

ROOT = Path(__file__).resolve().parents[2]
PW = "correct horse battery"


@pytest.fixture
async def client(db_url):
    url = db_url
    migrate(url, ROOT)
    cfg = load_config(ROOT, {"controller": {"session_idle_minutes": 1, "session_max_hours": 1}})
    db = Database(url, ROOT)
    store = AuthStore(db)
    auth = Auth(cfg, store, service_token="svc-token-for-tests")
    await auth.set_password("agent1001", PW)

    async def login(request):
        body = await request.json()
        try:
            p, token, csrf = await auth.login(body["user"], body["password"], request.remote)
        except PermissionError as e:
            return login_refused(e)
        resp = web.json_response({"csrf": csrf, "user": p.user_id})
        resp.set_cookie(COOKIE, token)
        return resp

    async def whoami(request):
        return web.json_response({"user": request[PRINCIPAL].user_id})

    app = web.Application(middlewares=[auth.middleware])
    app.router.add_post("/api/login", login)
    app.router.add_get("/api/me", whoami)
    app.router.add_post("/api/me", whoami)
    c = TestClient(TestServer(app))
    await c.start_server()
    c.auth, c.store = auth, store
    yield c
    await c.close()
    await db.close()


async def test_login_session_and_csrf(client):
    assert (await client.get("/api/me")).status == 401
    r = await client.post("/api/login", json={"user": "agent1001", "password": PW})
    assert r.status == 200
    csrf = (await r.json())["csrf"]
    assert (await (await client.get("/api/me")).json())["user"] == "agent1001"
    assert (await client.post("/api/me")).status == 403                      # no CSRF token
    assert (await client.post("/api/me", headers={CSRF_HEADER: "forged"})).status == 403
    assert (await client.post("/api/me", headers={CSRF_HEADER: csrf})).status == 200


async def test_a_non_ascii_csrf_token_is_a_403_not_a_crash(client):
    """Issue 16, finding 5: hmac.compare_digest raised TypeError on a non-ASCII header (a 500)."""
    refused = []

    async def audit(user_id, role, action, call_id="", target="", allowed=True, detail=""):
        refused.append((user_id, action, target, allowed))
    client.auth.audit = audit
    r = await client.post("/api/login", json={"user": "agent1001", "password": PW})
    csrf = (await r.json())["csrf"]
    for forged in ("令牌", csrf[:-1] + "é", "forged"):
        r = await client.post("/api/me", headers={CSRF_HEADER: forged})
        assert r.status == 403, forged
    assert (await client.post("/api/me", headers={CSRF_HEADER: csrf})).status == 200
    assert refused == [("agent1001", "csrf_refused", "POST /api/me", False)] * 3    # audited like other refusals


async def test_wrong_passwords_lock_the_user_out_for_a_while(client):
    for _ in range(5):
        r = await client.post("/api/login", json={"user": "agent1001", "password": "nope nope nope"})
        assert r.status == 401
    r = await client.post("/api/login", json={"user": "agent1001", "password": PW})
    assert r.status == 429 and "too many" in (await r.json())["error"]
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # an unknown user gets the same answer as a wrong password
    r = await client.post("/api/login", json={"user": "nobody", "password": PW})
    assert (await r.json())["error"] == "wrong user or password"
    # the lockout is this user from this address: from elsewhere the agent still gets in (nobody can
    # lock an agent out of their desk by failing on purpose from their own machine)
    principal, _, _ = await client.auth.login("agent1001", PW, client="10.8.0.20")
    assert principal.user_id == "agent1001"


def test_login_throttle_counts_per_user_and_client_per_client_and_per_user():
    now = [1000.0]
    t = LoginThrottle(window=60, per_pair=5, per_client=20, per_user=50, max_keys=500, clock=lambda: now[0])
    for _ in range(5):
        assert t.wait("agent1001", "10.0.0.1") == ("", 0.0)
        t.failed("agent1001", "10.0.0.1")
    assert t.wait("agent1001", "10.0.0.1") == ("pair", 60.0)
    assert t.wait("agent1001", "10.0.0.2") == ("", 0.0)
    now[0] += 30
    assert t.wait("agent1001", "10.0.0.1") == ("pair", 30.0)
    now[0] += 30.5                                          # the window has passed
    assert t.wait("agent1001", "10.0.0.1") == ("", 0.0)
    # spraying: one address trying many names is stopped after 20 failures, whichever name
    for i in range(20):
        t.failed(f"user{i}", "10.0.0.9")
    assert t.wait("agent1002", "10.0.0.9")[0] == "client"
    assert t.wait("agent1002", "10.0.0.8") == ("", 0.0)
    # a guess spread over many addresses: the user is held after 50, from anywhere
    for i in range(50):
        t.failed("agent1003", f"10.1.0.{i}")
    assert t.wait("agent1003", "10.2.0.1")[0] == "user"
    # a success clears that address's count for the user only
    t.succeeded("agent1003", "10.1.0.1")
    assert t.wait("agent1003", "10.1.0.1")[0] == "user"
    # made-up names cannot grow it without bound
    for i in range(5000):
        t.failed(f"x{i}", f"192.0.2.{i % 250}")
    assert len(t._failures) <= 500 + 3


async def test_parallel_logins_are_checked_two_at_a_time_and_a_flood_is_told_to_wait(client, monkeypatch):
    """Each Argon2 check holds 64 MiB: a burst of logins runs two checks at once, queues a few and
    refuses the rest with 429 instead of holding them all in memory."""
    running, most = [0], [0]
    real = dashboard.auth._verify

    def counting(stored, password):
        running[0] += 1
        most[0] = max(most[0], running[0])
        try:
            return real(stored, password)
        finally:
            running[0] -= 1

    monkeypatch.setattr(dashboard.auth, "_verify", counting)
    tries = [client.auth.login(f"someone{i}", "wrong password", client=f"10.3.0.{i}") for i in range(40)]
    results = await asyncio.gather(*tries, return_exceptions=True)
    busy = [r for r in results if isinstance(r, Throttled)]
    wrong = [r for r in results if isinstance(r, PermissionError) and not isinstance(r, Throttled)]
    assert most[0] == 2
    assert len(wrong) >= 16 and len(busy) >= 1 and len(busy) + len(wrong) == 40
    assert all(b.retry_after == 1 for b in busy)
    # once the burst is over, logins are checked again
    principal, _, _ = await client.auth.login("agent1001", PW, client="10.3.1.1")
    assert principal.user_id == "agent1001"


async def test_sessions_expire_when_idle_and_in_any_case(client):
    await client.post("/api/login", json={"user": "agent1001", "password": PW})
    assert (await client.get("/api/me")).status == 200
    past = datetime.now(timezone.utc) - timedelta(minutes=2)
    async with client.store.session.begin() as s:
        await s.execute(update(AuthToken).values(last_seen=past))       # idle for 2 min > 1 min
    assert (await client.get("/api/me")).status == 401
    await client.post("/api/login", json={"user": "agent1001", "password": PW})
    async with client.store.session.begin() as s:                        # absolute lifetime over
        await s.execute(update(AuthToken).where(AuthToken.revoked.is_(False)).values(expires_at=past))
    assert (await client.get("/api/me")).status == 401


async def test_api_tokens_and_the_service_token(client):
    token = await client.auth.issue_api_token("sup_leshan", days=1)
    r = await client.post("/api/me", headers={"Authorization": f"Bearer {token}"})   # no CSRF for bearer
    assert r.status == 200 and (await r.json())["user"] == "sup_leshan"
    r = await client.get("/api/me", headers={"Authorization": "Bearer svc-token-for-tests"})
    assert (await r.json())["user"] == "hotline-service"
    assert (await client.get("/api/me", headers={"Authorization": "Bearer hlt_forged"})).status == 401
    # a new password ends every session and token of that user
    await client.auth.set_password("sup_leshan", "a brand new password")
    assert (await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})).status == 401


async def test_passwords_are_argon2id_and_short_ones_are_refused(client):
    stored = await client.store.password_hash("agent1001")
    assert stored.startswith("$argon2id$") and PW not in stored
    with pytest.raises(ValueError, match="at least 10"):
        hash_password("short")
    with pytest.raises(KeyError):
        await client.auth.set_password("interp2001", PW)     # interpreters have no desk
