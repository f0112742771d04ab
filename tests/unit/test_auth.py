"""Desk logins over real HTTP (aiohttp test server) and a real database (SQLite and PostgreSQL):
Argon2id passwords, lockout, session idle and absolute expiry, CSRF, API tokens, revocation."""
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update

from callcenter.config import load_config
from callcenter.store.db import Store, migrate
from callcenter.store.models import AuthToken
from dashboard.auth import COOKIE, CSRF_HEADER, PRINCIPAL, Auth, hash_password

ROOT = Path(__file__).resolve().parents[2]
PW = "correct horse battery"


@pytest.fixture
async def client(db_url):
    url = db_url
    migrate(url, ROOT)
    cfg = load_config(ROOT, {"controller": {"session_idle_minutes": 1, "session_max_hours": 1}})
    store = Store(url, ROOT)
    auth = Auth(cfg, store, service_token="svc-token-for-tests")
    await auth.set_password("agent1001", PW)

    async def login(request):
        body = await request.json()
        try:
            p, token, csrf = await auth.login(body["user"], body["password"])
        except PermissionError as e:
            return web.json_response({"error": str(e)}, status=401)
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
    await store.close()


async def test_login_session_and_csrf(client):
    assert (await client.get("/api/me")).status == 401
    r = await client.post("/api/login", json={"user": "agent1001", "password": PW})
    assert r.status == 200
    csrf = (await r.json())["csrf"]
    assert (await (await client.get("/api/me")).json())["user"] == "agent1001"
    assert (await client.post("/api/me")).status == 403                      # no CSRF token
    assert (await client.post("/api/me", headers={CSRF_HEADER: "forged"})).status == 403
    assert (await client.post("/api/me", headers={CSRF_HEADER: csrf})).status == 200


async def test_wrong_passwords_lock_the_user_out_for_a_while(client):
    for _ in range(5):
        r = await client.post("/api/login", json={"user": "agent1001", "password": "nope nope nope"})
        assert r.status == 401
    r = await client.post("/api/login", json={"user": "agent1001", "password": PW})
    assert r.status == 401 and "too many" in (await r.json())["error"]
    # an unknown user gets the same answer as a wrong password
    r = await client.post("/api/login", json={"user": "nobody", "password": PW})
    assert (await r.json())["error"] == "wrong user or password"


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
