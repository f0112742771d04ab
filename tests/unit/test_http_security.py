"""Issue 16, finding 10: browser protections on every answer of the HTTP app (pages, static files,
API answers and refusals), and a login that a cross-site form cannot send."""
import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.config import load_config
from hotline import compose
from store.secrets import Secrets


@pytest.fixture
async def client():
    cfg = load_config(None, {})
    secrets = Secrets(ami_user="u", ami_secret="s", agent_passwords={}, service_token="t", privacy_key="k", bus_key="k")
    c = TestClient(TestServer(compose.api(compose.controller(cfg, secrets), secrets)))
    await c.start_server()
    yield c
    await c.close()


def assert_protected(r):
    csp = r.headers.get("Content-Security-Policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives.get("script-src") == ["'self'"], (r.url, csp)
    assert directives.get("frame-ancestors") == ["'none'"], (r.url, csp)
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert r.headers.get("X-Content-Type-Options") == "nosniff", r.url
    assert r.headers.get("Referrer-Policy") in ("no-referrer", "same-origin"), r.url


async def test_every_page_and_api_answer_carries_the_browser_protections(client):
    for path in ("/", "/login", "/desk", "/reports", "/wallboard", "/static/desk.js", "/static/no-such-file",
                 "/api/health", "/api/me", "/api/openapi.json", "/api/no-such-route", "/vendor/echarts.min.js"):
        r = await client.get(path)
        # no Asterisk behind this app: health says so with a 503, and is protected all the same
        assert r.status < 500 or (path == "/api/health" and r.status == 503), path
        assert_protected(r)
    r = await client.post("/api/tickets", json={})          # a refusal (no login)
    assert r.status == 401
    assert_protected(r)


@pytest.mark.parametrize("content_type, body", [
    ("application/x-www-form-urlencoded", "user=agent1001&password=correct+horse+battery"),
    ("text/plain", '{"user": "agent1001", "password": "correct horse battery"}'),
    ("multipart/form-data; boundary=x", '--x\r\nContent-Disposition: form-data; name="user"\r\n\r\nagent1001\r\n--x--\r\n'),
    (None, '{"user": "agent1001", "password": "correct horse battery"}'),
])
async def test_login_is_json_only_so_a_cross_site_form_cannot_log_a_browser_in(client, content_type, body):
    headers = {"Content-Type": content_type} if content_type else {}
    r = await client.post("/api/login", data=body.encode(), headers=headers)
    assert r.status == 415, await r.text()
    assert "hl_session" not in r.cookies and "Set-Cookie" not in r.headers
    assert_protected(r)
