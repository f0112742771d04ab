"""Desk logins over real HTTP (aiohttp test server) and a real database (SQLite and PostgreSQL):
Argon2id passwords, lockout, session idle and absolute expiry, CSRF, API tokens, revocation."""
import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update

from core.config import load_config
import store.auth
from store.auth import AuthStore
from store.engine import Database, migrate
from store.models import AuditEntry, AuthToken
import dashboard.auth
from dashboard.common import AUTH
from tests.helpers import http_app
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

    async def audit(action, source, user_id="", role="", target="", detail=""):
        refused.append((user_id, action, target, source))
    client.auth.refused = audit
    r = await client.post("/api/login", json={"user": "agent1001", "password": PW})
    csrf = (await r.json())["csrf"]
    for forged in ("令牌", csrf[:-1] + "é", "forged"):
        r = await client.post("/api/me", headers={CSRF_HEADER: forged})
        assert r.status == 403, forged
    assert (await client.post("/api/me", headers={CSRF_HEADER: csrf})).status == 200
    assert refused == [("agent1001", "csrf_refused", "POST /api/me", "127.0.0.1")] * 3   # audited like other refusals


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
    # a guess spread over many addresses: past 50, each address that failed for the user is held (one
    # guess per address and window), while an address that has not failed for the user is still let try
    for i in range(50):
        t.failed("agent1003", f"10.1.0.{i}")
    assert t.wait("agent1003", "10.1.0.7")[0] == "user"
    assert t.wait("agent1003", "10.2.0.1") == ("", 0.0)
    t.failed("agent1003", "10.2.0.1")
    assert t.wait("agent1003", "10.2.0.1")[0] == "user"
    # made-up names cannot grow it without bound
    for i in range(5000):
        t.failed(f"x{i}", f"192.0.2.{i % 250}")
    assert len(t._failures) <= 500 + 3


def test_failures_from_many_addresses_never_refuse_the_owner_from_a_clean_address():
    """Issue 16, finding 3: ten addresses failing five times each used to hold the user everywhere,
    the owner's own machine included. The guessers are held; the owner's correct password gets in."""
    now = [1000.0]
    t = LoginThrottle(window=60, per_pair=5, per_client=20, per_user=50, clock=lambda: now[0])
    for i in range(10):
        for _ in range(5):
            t.failed("agent1001", f"203.0.113.{i}")
    for i in range(10):                                   # every guessing address is held ...
        assert t.wait("agent1001", f"203.0.113.{i}")[0] in ("pair", "user")
    assert t.wait("agent1001", "10.8.0.20") == ("", 0.0)    # ... the owner's machine is not
    # many more addresses, one guess each: still never the clean one
    for i in range(500):
        t.failed("agent1001", f"198.51.100.{i % 250}")
    assert t.wait("agent1001", "10.8.0.20") == ("", 0.0)
    # the window passes: the guessers may try again, a few at a time
    now[0] += 61
    assert t.wait("agent1001", "203.0.113.1") == ("", 0.0)


def test_one_busy_address_is_no_reason_to_refuse_a_clean_one():
    """Behind a proxy that is not configured as trusted everybody shares its address; configured
    (controller.trusted_proxies), each client is itself. Either way a clean address is let in."""
    now = [1000.0]
    t = LoginThrottle(window=60, per_pair=5, per_client=20, per_user=50, clock=lambda: now[0])
    for i in range(20):
        t.failed(f"user{i}", "192.0.2.1")
    assert t.wait("agent1001", "192.0.2.1")[0] == "client"
    assert t.wait("agent1001", "192.0.2.2") == ("", 0.0)


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


def test_the_client_address_is_read_from_x_forwarded_for_only_behind_a_trusted_proxy():
    import ipaddress
    from dashboard.auth import client_address
    proxies = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))
    # no trusted proxy configured (the default): the header is anybody's to write, and ignored
    assert client_address("127.0.0.1", ["203.0.113.5"], ()) == "127.0.0.1"
    # a request that does not come from a trusted proxy: ignored
    assert client_address("198.51.100.7", ["203.0.113.5"], proxies) == "198.51.100.7"
    # from a trusted proxy: the right-most address that is not one of ours; what the client wrote to
    # the left of it (here 1.2.3.4) is not believed
    assert client_address("127.0.0.1", ["1.2.3.4, 203.0.113.5"], proxies) == "203.0.113.5"
    assert client_address("127.0.0.1", ["1.2.3.4, 203.0.113.5, 10.1.2.3"], proxies) == "203.0.113.5"
    assert client_address("127.0.0.1", ["1.2.3.4", "203.0.113.5"], proxies) == "203.0.113.5"  # two headers
    # from a trusted proxy without the header, or only trusted hops: the nearest of them
    assert client_address("127.0.0.1", [], proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", ["10.1.2.3"], proxies) == "10.1.2.3"
    # garbage where an address belongs: not a key a client may choose; the proxy it came through
    assert client_address("127.0.0.1", ["1.2.3.4, bogus"], proxies) == "127.0.0.1"
    # IPv6: one /64 is one client (a host has a whole /64 to pick addresses from)
    assert client_address("127.0.0.1", ["2001:db8:1:2::abcd"], proxies) == "2001:db8:1:2::/64"
    assert client_address("2001:db8:1:2::1", [], ()) == "2001:db8:1:2::/64"
    assert client_address("::ffff:192.0.2.9", [], ()) == "192.0.2.9"


def test_trusted_proxies_are_validated():
    from pydantic import ValidationError
    from core.config.system import ControllerSettings
    assert ControllerSettings().trusted_proxies == []
    assert ControllerSettings(trusted_proxies=["127.0.0.1", "10.0.0.0/8", "::1"]).trusted_proxies
    for bad in (["proxy.example"], ["10.0.0.1/8"], ["0.0.0.0/0"], ["::/0"]):
        with pytest.raises(ValidationError, match="trusted_proxies"):
            ControllerSettings(trusted_proxies=bad)


async def test_a_login_through_a_trusted_proxy_is_throttled_per_forwarded_address(db_url, monkeypatch):
    """Over HTTP: ten forwarded addresses failing five times each, then the owner from a clean one."""
    real = dashboard.auth._verify      # the 50 wrong guesses need not cost 50 Argon2 checks here
    monkeypatch.setattr(dashboard.auth, "_verify", lambda stored, pw: pw != "wrong password!" and real(stored, pw))
    migrate(db_url, ROOT)
    cfg = load_config(ROOT, {"controller": {"trusted_proxies": ["127.0.0.1"]}})
    db = Database(db_url, ROOT)
    auth = Auth(cfg, AuthStore(db))
    await auth.set_password("agent1001", PW)

    async def login(request):
        body = await request.json()
        try:
            await auth.login(body["user"], body["password"], auth.client(request))
        except PermissionError as e:
            return login_refused(e)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/api/login", login)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        async def attempt(password, forwarded=None):
            headers = {"X-Forwarded-For": forwarded} if forwarded else {}
            return (await c.post("/api/login", json={"user": "agent1001", "password": password},
                                 headers=headers)).status
        statuses = [await attempt("wrong password!", f"203.0.113.{i}") for i in range(10) for _ in range(5)]
        assert statuses == [401] * 50
        assert await attempt(PW, "203.0.113.3") == 429          # a guesser, even with the right password
        assert await attempt(PW, "10.8.0.20") == 200            # the owner, from their own machine
        assert await attempt(PW) == 200                         # the proxy's own address is clean too
    await db.close()


async def test_a_login_is_rechecked_against_the_store(client):
    """What an open live socket asks every few seconds (dashboard/live.py): does its login still stand?"""
    from dashboard.auth import digest
    auth, store = client.auth, client.store
    ended = []
    auth.ended.append(lambda token_hash, user_id, why: ended.append((token_hash, user_id, why)))

    async def row_of(token):
        row = await store.token(digest(token))
        return {**row, "hash": digest(token)}

    _, token, _ = await auth.login("agent1001", PW, client="10.0.0.1")
    row = await row_of(token)
    assert await auth.still_valid(row) == ""
    assert await auth.still_valid(None) == ""                        # the service token
    await auth.revoke(row["hash"])                                   # logout
    assert "ended" in await auth.still_valid(row) and ended[-1] == (row["hash"], "", "logged out")

    _, token, _ = await auth.login("agent1001", PW, client="10.0.0.1")
    row = await row_of(token)
    past = datetime.now(timezone.utc) - timedelta(minutes=2)
    async with store.session.begin() as s:                           # idle for 2 min > 1 min
        await s.execute(update(AuthToken).where(AuthToken.token_hash == row["hash"]).values(last_seen=past))
    assert await auth.still_valid(row) == "session expired (idle)"
    async with store.session.begin() as s:
        await s.execute(update(AuthToken).where(AuthToken.token_hash == row["hash"]).values(expires_at=past))
    assert await auth.still_valid(row) == "session expired"

    api = await auth.issue_api_token("agent1001", days=1)
    api_row = await row_of(api)
    assert await auth.still_valid(api_row) == ""
    await auth.set_password("agent1001", PW)                         # as `hotline passwd` does, elsewhere
    assert "ended" in await auth.still_valid(api_row)
    assert ended[-1] == ("", "agent1001", "password changed")


# ---- the audit log: refusals are folded, rows have a retention period (issue 16, finding 6)

@pytest.fixture
async def api(db_url, tmp_path):
    """The real HTTP app (every route, the real audit log) on SQLite and PostgreSQL, without Asterisk."""
    async with http_app(db_url, tmp_path) as c:
        c.auth = c.server.app[AUTH]
        yield c


def _one_minute(monkeypatch) -> datetime:
    """Pin the audit log's clock inside one minute, so that a burst cannot straddle two."""
    at = datetime.now(timezone.utc).replace(second=20, microsecond=0)
    monkeypatch.setattr(store.auth, "utcnow", lambda: at)
    return at


async def _rows(c, action: str) -> list[dict]:
    return [r for r in await c.ctl.audit_log.audit_entries(1000) if r["action"] == action]


async def test_500_refused_logins_from_one_address_in_a_minute_leave_one_row_with_their_count(api, monkeypatch):
    """Finding 6: every refused login added a row, no login needed, so anyone could grow the audit log
    without limit. Refusals from one address are one row per minute with a count; many at once
    (concurrent upserts of the same row) lose none."""
    _one_minute(monkeypatch)
    monkeypatch.setattr(dashboard.auth, "_verify", lambda stored, pw: False)   # no Argon2 cost here
    statuses = []
    for burst in range(10):
        statuses += await asyncio.gather(*(
            api.post("/api/login", json={"user": f"guess{i % 7}", "password": "wrong password"})
            for i in range(burst * 50, burst * 50 + 50)))
    assert {r.status for r in statuses} <= {401, 429} and len(statuses) == 500
    rows = await _rows(api, "login")
    assert len(rows) == 1, rows
    assert rows[0]["count"] == 500 and not rows[0]["allowed"] and rows[0]["source"] == "127.0.0.1"
    assert rows[0]["user_id"].startswith("guess")
    # an authenticated, audited read is not folded: each one is its own row
    for _ in range(2):
        assert (await api.get("/api/search?q=wages", headers={"Authorization": "Bearer t"})).status == 200
    reads = await _rows(api, "search")
    assert [(r["count"], r["user_id"], r["detail"]) for r in reads] == [(1, "hotline-service", "wages")] * 2


async def test_refusals_fold_per_source_and_are_capped_per_minute(api, monkeypatch):
    """The fold is per (action, source address, minute): another address or another minute is another
    row; past the configured number of sources in a minute, the rest share one row."""
    at = _one_minute(monkeypatch)
    log = api.ctl.audit_log
    for _ in range(3):
        await log.refused("interop_refused", "192.0.2.1", user_id="12345", detail="signature does not match")
    await log.refused("interop_refused", "192.0.2.2", user_id="12345", detail="signature does not match")
    monkeypatch.setattr(store.auth, "utcnow", lambda: at + timedelta(minutes=1))
    await log.refused("interop_refused", "192.0.2.1", user_id="12345", detail="stale")
    rows = await _rows(api, "interop_refused")
    assert sorted((r["source"], r["count"]) for r in rows) == [("192.0.2.1", 1), ("192.0.2.1", 3), ("192.0.2.2", 1)]
    assert api.ctl.audit_log.sources_per_minute == api.ctl.cfg.system.audit.refusal_sources_per_minute
    capped = store.auth.AuditLog(api.ctl.db, sources_per_minute=10)
    for i in range(40):
        await capped.refused("federation_refused", f"2001:db8:{i:x}::/64", user_id="node")
    rows = await _rows(api, "federation_refused")
    assert len(rows) == 11 and sum(r["count"] for r in rows) == 40
    assert [r["count"] for r in rows if r["source"] == "*"] == [30]


async def test_audit_rows_past_the_retention_period_are_purged(api):
    """Finding 6: audit rows had no retention. The controller purges rows older than
    audit.retention_days (config/hotline.yaml) on a schedule."""
    ctl = api.ctl
    days = ctl.cfg.system.audit.retention_days
    await ctl.audit_log.audit("sup_leshan", "supervisor", "listen", "c.1")
    await ctl.audit_log.audit("sup_leshan", "supervisor", "listen", "c.2")
    await ctl.audit_log.refused("login", "203.0.113.9", user_id="guess")
    old = datetime.now(timezone.utc) - timedelta(days=days + 1)
    async with ctl.db.session.begin() as s:
        await s.execute(update(AuditEntry).where(AuditEntry.call_id != "c.2").values(at=old))
    await ctl.purge_audit()
    assert [r["call_id"] for r in await ctl.audit_log.audit_entries(100)] == ["c.2"]


@pytest.mark.parametrize("body", [
    '{"user": "\\udcff", "password": "correct horse battery"}',        # a lone surrogate in the user
    '{"user": "agent1001", "password": "\\ud800 horse battery"}',      # ... in the password
    '{"user": "agent\\u0000", "password": "correct horse battery"}',   # NUL: PostgreSQL cannot store it
])
async def test_a_login_with_text_no_database_can_store_is_a_4xx_and_audited(api, body):
    """A JSON login whose user or password held a lone surrogate was a 500: the database could not
    store the refused user in the audit log, and Argon2 could not encode the password."""
    await api.auth.set_password("agent1001", PW)
    r = await api.post("/api/login", data=body, headers={"Content-Type": "application/json"})
    assert 400 <= r.status < 500, await r.text()
    [row] = await _rows(api, "login")
    assert not row["allowed"] and row["source"] == "127.0.0.1"
    json.dumps(row["user_id"]).encode()      # stored as valid text
    assert "\x00" not in row["user_id"]


async def test_a_user_id_longer_than_any_is_refused_before_the_throttle_keeps_it(api):
    """The throttle keeps each failing user name for a minute: 64 KiB names from many addresses would
    have filled memory. No user id is longer than 32 characters."""
    r = await api.post("/api/login", json={"user": "x" * 60_000, "password": "wrong password"})
    assert r.status == 400
    assert api.auth.throttle._failures == {}
    [row] = await _rows(api, "login")
    assert not row["allowed"] and len(row["user_id"]) <= 64


async def test_a_wall_displays_refused_route_is_audited_and_folded(api):
    """A wall display's 403 for a route it may not use was not audited."""
    await api.auth.set_password("wall_province", PW)
    assert (await api.post("/api/login", json={"user": "wall_province", "password": PW})).status == 200
    assert (await api.get("/api/wallboard")).status == 200
    for _ in range(3):
        assert (await api.get("/api/calls")).status == 403
    [row] = await _rows(api, "route_refused")
    assert (row["user_id"], row["role"], row["target"], row["count"], row["allowed"]) == \
        ("wall_province", "wallboard", "GET /api/calls", 3, False)


async def test_a_refused_token_is_audited_and_folded(api):
    """An API token or session cookie that is unknown, revoked or expired was a silent 401."""
    for _ in range(4):
        assert (await api.get("/api/calls", headers={"Authorization": "Bearer hlt_forged"})).status == 401
    assert (await api.get("/api/calls")).status == 401             # no token at all: nothing to audit
    [row] = await _rows(api, "token_refused")
    assert (row["count"], row["target"], row["allowed"]) == (4, "GET /api/calls", False)


async def _raw_status(api, headers: bytes) -> int:
    """GET /api/calls with header bytes as sent (an HTTP client library would refuse to send these)."""
    reader, writer = await asyncio.open_connection(api.host, api.port)
    writer.write(b"GET /api/calls HTTP/1.1\r\nHost: hotline\r\nConnection: close\r\n" + headers + b"\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return int(answer.split()[1])


@pytest.mark.parametrize("header", [b"Authorization: Bearer \xff\xfe", "Authorization: Bearer 令牌".encode(),
                                    b"Cookie: hl_session=\xff\xfe", "Cookie: hl_session=令牌".encode()])
async def test_a_token_that_is_not_utf8_or_ascii_is_a_401_and_audited_not_a_crash(api, header):
    """Noticed in review: a bearer token or session cookie with bytes that are not UTF-8 reached
    hashlib as lone surrogates (str.encode raised: a 500)."""
    assert await _raw_status(api, header + b"\r\n") == 401
    [row] = await _rows(api, "token_refused")
    assert row["count"] == 1 and row["target"] == "GET /api/calls"
