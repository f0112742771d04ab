"""Issue 16, the fresh-eyes review of the HTTP, AMI and dialplan surface: what it found, one test each
(docs/security.md, "Fresh-eyes review"). Over the real aiohttp app on both databases where a database
is involved: most of these were 500s only on PostgreSQL."""
import asyncio
import json
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
from types import SimpleNamespace

import pytest

from backoffice.appointments import BookingError, check_booking_time
from callcenter.asterisk import ami
from core.calls import CallState
from core.config import load_config
from core.paths import InstancePaths
from dashboard.common import AUTH
from dashboard.services import SERVICES
from interop import signing
from store.engine import migrate
from store.secrets import Secrets
from tests.helpers import ROOT, http_app
from transcription.service import recording_tracks

PARTNER, SECRET = "12345", "partner-secret-for-tests"


@pytest.fixture
async def api(db_url, tmp_path):
    async with http_app(db_url, tmp_path, {"asterisk": {"rootfs": str(tmp_path / "rootfs")}},
                        partner_secrets={PARTNER: SECRET}) as c:
        for i in range(2):
            call = CallState(call_id=f"r.{i}", city="leshan", caller_number="13800004444", agent="agent1001",
                             status="ended", outcome="answered", started_at=1000.0 + i, answered_at=1001.0 + i,
                             ended_at=1060.0 + i)
            await c.ctl.call_records.save_call(call)
            await c.ctl.tickets.ensure_for_call(call, "call", 72)
        yield c


BEARER = {"Authorization": "Bearer t"}
# path and query parameters that reach a query: NUL (PostgreSQL refuses it; bytes that are not UTF-8
# become U+FFFD in a URL, harmless)
UNSTORABLE_URLS = [
    "/api/calls/%00", "/api/calls/r%00.0/history", "/api/calls/r.0/transcript?reason=a%00",
    "/api/tickets?caller=%00", "/api/tickets?agent=%00", "/api/tickets?city=%00", "/api/calls?city=%00",
    "/api/appointments?caller=%00", "/api/appointments?date=%00", "/api/complaints?assigned_to=%00",
    "/api/alerts?call_id=%00", "/api/alerts?kind=%00", "/api/audit?call_id=%00", "/api/search?q=a%00b",
    "/api/federation/events?node=%00", "/api/follow-ups?status=%00", "/api/outbox?related=%00",
]
UNSTORABLE_BODIES = [
    ("PUT", "/api/calls/r.0/notes", '{"notes": "a\\u0000b"}'),
    ("PUT", "/api/calls/r.0/notes", '{"notes": "a\\udcffb"}'),
    ("PATCH", "/api/tickets/1", '{"summary": "a\\u0000b"}'),
    ("PATCH", "/api/tickets/1", '{"answer": "a\\ud800b"}'),
    ("POST", "/api/complaints", '{"city": "leshan", "description": "x\\u0000"}'),
    ("POST", "/api/complaints", '{"city": "leshan", "description": "x\\ud800"}'),
    ("POST", "/api/complaints", '{"city": "leshan", "description": "x", "complainant_name": "\\u0000"}'),
    ("POST", "/api/complaints", '{"city": "leshan", "description": "x", "call_id": "\\u0000"}'),
]


async def test_text_no_database_can_store_is_refused_not_a_500(api):
    """NUL anywhere and unpaired surrogates in path, query or JSON body gave a 500 (with a traceback in
    the log) instead of a 400: on PostgreSQL for NUL, on both databases for surrogates."""
    for url in UNSTORABLE_URLS:
        r = await api.get(url, headers=BEARER)
        assert r.status == 400, (url, r.status, await r.text())
        assert "NUL" in (await r.json())["error"]
    for method, url, body in UNSTORABLE_BODIES:
        r = await api.request(method, url, data=body.encode(), headers={**BEARER, "Content-Type": "application/json"})
        assert r.status == 400, (method, url, body, r.status, await r.text())
    # nothing was written
    assert (await api.ctl.call_records.call("r.0"))["notes"] == ""
    t = await api.ctl.tickets.get(1)
    assert (t["summary"], t["answer"]) == ("", "")
    r = await api.get("/api/complaints", headers=BEARER)
    assert await r.json() == []
    # and ordinary text, emoji included, still goes through
    r = await api.put("/api/calls/r.0/notes", json={"notes": "欠薪 😀 三个月"}, headers=BEARER)
    assert r.status == 200 and (await api.ctl.call_records.call("r.0"))["notes"] == "欠薪 😀 三个月"


def _signed(path: str, doc: dict, idempotency_key: str = "") -> tuple[bytes, dict]:
    body = json.dumps(doc).encode()
    return body, signing.sign(PARTNER, SECRET, "POST", path, body, time.time(), idempotency_key=idempotency_key)


async def test_a_partners_unstorable_or_odd_document_is_a_4xx_not_a_500(api):
    """A signed partner ticket whose question held "\\u0000" was a 500 on PostgreSQL; a status update naming
    handoff "<node>-h²" (isdigit() but not int()) or a 40-digit handoff id was a 500 on both."""
    path = "/api/interop/v1/tickets"
    ticket = {"partner_ticket_id": "T-1", "city": "leshan", "caller_number": "13800001111", "question": "x\u0000",
              "consent": False}
    body, headers = _signed(path, ticket)
    r = await api.post(path, data=body, headers=headers)
    assert r.status == 400, await r.text()
    # the Idempotency-Key is stored as sent: bytes that are not UTF-8 (signed as bytes) could not be
    body, headers = _signed(path, {**ticket, "question": "工资"}, "k\udcff")
    raw = b"".join(f"{k}: {v}\r\n".encode("utf-8", "surrogateescape") for k, v in headers.items())
    request = (f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}\r\n".encode()
               + raw + b"\r\n" + body)
    data = await _raw(api, request)
    assert data.split(b" ", 2)[1] == b"400", data[:300]
    body, headers = _signed(path, {**ticket, "question": "工资"}, "k-1")
    r = await api.post(path, data=body, headers=headers)
    assert r.status == 201, await r.text()
    node = api.ctl.cfg.system.node.name
    path = "/api/interop/v1/status"
    for ref in (f"{node}-h²", f"{node}-h" + "9" * 40, f"{node}-h０"):
        doc = {"handoff_ref": ref, "status": "accepted", "seq": 1, "at": "2026-12-06T10:00:00+08:00"}
        body, headers = _signed(path, doc)
        r = await api.post(path, data=body, headers=headers)
        assert r.status == 404, (ref, r.status, await r.text())


async def _raw(api, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(api.host, api.port)
    writer.write(request)
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


@pytest.mark.parametrize("header", [b"Authorization: Bearer \xff\xfe", b"Cookie: hl_session=\xff\xfe"])
async def test_a_token_or_key_that_is_not_utf8_is_refused_not_a_500(api, header):
    """A bearer token or session cookie of bytes that are not UTF-8 (aiohttp keeps them as surrogates,
    which cannot be hashed) was a 500 for anyone, without a login: now simply no login (401)."""
    for path in (b"/api/me", b"/ws", b"/api/calls"):
        data = await _raw(api, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + header + b"\r\nConnection: close\r\n\r\n")
        status = int(data.split(b" ", 2)[1])
        assert status in (400, 401), (header, path, data[:200])


async def test_api_answers_are_never_cached(api):
    """Callers' numbers, notes and transcripts were sent without Cache-Control: a shared desk PC's browser
    cache (or a caching proxy) could keep them after logout."""
    for url in ("/api/calls", "/api/calls/r.0", "/api/calls/r.0/history", "/api/tickets/1", "/api/me",
                "/api/no-such-route"):
        r = await api.get(url, headers=BEARER)
        assert r.headers.get("Cache-Control") == "no-store", url
    r = await api.get("/api/calls")                    # refusals too
    assert r.status == 401 and r.headers.get("Cache-Control") == "no-store"
    r = await api.get("/static/desk.js")              # static files keep their caching
    assert r.headers.get("Cache-Control") != "no-store"


async def test_an_unknown_call_action_is_a_404_not_a_refusal_that_cannot_be_stored(api):
    """POST /api/calls/{id}/{action} by someone who may not act on the call audited the refusal with the
    action from the URL, longer than the audit log's column: a 500 on PostgreSQL."""
    live = CallState(call_id="live.1", city="chengdu", caller_number="13800002222", agent="agent2001",
                     status="talking", channel="PJSIP/carrier-00000001", agent_channel="PJSIP/agent2001-00000002",
                     started_at=time.time())
    api.ctl.tracker.calls[live.call_id] = live
    auth = api.server.app[AUTH]
    await auth.set_password("agent1001", "correct horse battery")
    r = await api.post("/api/login", json={"user": "agent1001", "password": "correct horse battery"})
    csrf = (await r.json())["csrf"]
    r = await api.post("/api/calls/live.1/" + "x" * 100, headers={"X-CSRF-Token": csrf})
    assert r.status == 404, await r.text()
    r = await api.post("/api/calls/live.1/hangup", headers={"X-CSRF-Token": csrf})   # not their call
    assert r.status == 403
    rows = await api.ctl.audit_log.audit_entries(10)
    assert [(x["action"], x["allowed"]) for x in rows if x["call_id"] == "live.1"] == [("hangup", False)]


async def test_phone_numbers_are_ascii_digits(api):
    """An appointment's SMS number and a complaint's number passed str.isdigit(), which also takes
    "١٣٨…" (Arabic-Indic digits) and "²": an SMS queued to a number no network can dial."""
    r = await api.post("/api/complaints", headers=BEARER,
                       json={"city": "leshan", "description": "x", "complainant_number": "١٣٨٠٠٠٠٤٤٤٤"})
    assert r.status == 400, await r.text()
    r = await api.post("/api/complaints", headers=BEARER,
                       json={"city": "leshan", "description": "x", "complainant_number": "+13800004444"})
    assert r.status == 201, await r.text()
    center = next(iter(api.server.app[SERVICES].centers.by_id))
    r = await api.post("/api/appointments", headers=BEARER,
                       json={"center": center, "date": "2030-01-07", "slot": "09:00", "caller_number": "١٣٨٠٠٠٠٤٤٤٤"})
    assert r.status == 400 and "caller_number" in (await r.json())["error"]


def test_a_recording_name_outside_the_monitor_directory_names_no_file(tmp_path):
    """The recording's name comes from an AMI event or Asterisk's CDR; the desk serves the file and the
    retention purge deletes it. A forged "../../etc/shadow" was served and deleted as named."""
    paths = InstancePaths(tmp_path / "rootfs", "t")
    ok = recording_tracks(paths, "20261206/1733.12.wav")
    assert ok["mixed"].name == "1733.12.wav" and ok["caller"].name == "1733.12-caller.wav"
    for forged in ("../../../../etc/shadow", "/etc/shadow", "20261206/../../x.wav", "x.txt", "", "a\x00.wav"):
        assert recording_tracks(paths, forged) == {}, forged


async def test_the_recording_route_serves_no_file_outside_the_monitor_directory(api):
    paths = api.server.app[SERVICES].paths
    monitor = paths.host(paths.monitor)
    monitor.mkdir(parents=True)
    assert monitor.is_relative_to(api.tmp)
    (api.tmp / "secret.wav").write_bytes(b"RIFF not a recording")
    (monitor / "20261206").mkdir()
    (monitor / "20261206" / "r.8.wav").write_bytes(b"RIFF a recording")
    for call_id, name in (("r.8", "20261206/r.8.wav"), ("r.9", "../" * 6 + "secret.wav")):
        call = CallState(call_id=call_id, city="leshan", caller_number="13800004444", agent="agent1001",
                         status="ended", outcome="answered", started_at=1000.0, answered_at=1001.0, ended_at=1060.0,
                         recording=name)
        await api.ctl.call_records.save_call(call)
    r = await api.get("/api/calls/r.8/recording?reason=audit", headers=BEARER)
    assert r.status == 200 and await r.read() == b"RIFF a recording"
    r = await api.get("/api/calls/r.9/recording?reason=audit", headers=BEARER)
    assert r.status == 404, r.status


async def test_ami_actions_cannot_carry_extra_lines_or_variables():
    """AMI is a line protocol and panoramisk writes values as given; Asterisk ends a line at a bare LF.
    A value with a line break would add headers, or a whole action (an Originate past the numbering
    plan); a comma in an Originate Variable sets another variable. Refused before anything is sent."""
    client = ami.AmiClient("127.0.0.1", 1, "u", "s")
    sent = []
    client.action_session.send_action = lambda action, as_list=False: sent.append(action) or _done({"Response": "Success"})
    client.connected.set()
    for bad in ({"Action": "Setvar", "Channel": "PJSIP/a-1", "Variable": "X", "Value": "1\r\n\r\nAction: Originate"},
                {"Action": "Setvar", "Channel": "PJSIP/a-1", "Variable": "X", "Value": "1\nChannel: PJSIP/b"},
                {"Action": "Originate", "Channel": "Local/t1@hotline-cb-hold", "Variable": ["__HLCB_LANG=zh,__HLCB_NUMBER=00882"]},
                {"Action": "Hangup", "Channel": "PJSIP/a-1\x00"}):
        with pytest.raises(ValueError):   # ami.UnsafeAction
            await client.action(bad)
    assert sent == []
    ok = {"Action": "Originate", "Channel": "PJSIP/sup_leshan", "Application": "ChanSpy", "Data": "PJSIP/a-1,qEd",
          "CallerID": '"listen agent1001" <sup_leshan>', "Variable": "HOTLINE_SPY=listen:1733.1"}
    assert (await client.action(ok))["Response"] == "Success"
    assert sent == [ok]


def _done(value):
    f = asyncio.get_running_loop().create_future()
    f.set_result(value)
    return f


class _Answer:
    """aiohttp's ClientResponse, as far as the deliverer reads it (text() decodes as UTF-8, strict, when
    the answer names no charset)."""

    def __init__(self, status: int, body: bytes):
        self.status, self._body = status, body
        self.content = SimpleNamespace(read=self._read)

    async def _read(self, n: int = -1) -> bytes:       # a few bytes at a time, as a stream may give them
        chunk, self._body = self._body[:min(n, 3)], self._body[min(n, 3):]
        return chunk

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False

    async def text(self, encoding=None, errors="strict"):
        return self._body.decode(encoding or "utf-8", errors)


async def test_a_partners_answer_that_cannot_be_stored_does_not_stop_delivery(db_url, tmp_path):
    """The outbox worker read a partner's answer as strict UTF-8 and stored its error text in the message
    (and a dead letter's alert) as it came. A GBK error page (UnicodeDecodeError), or an answer with a
    NUL (PostgreSQL), made the worker's batch raise: the message came back to fail again, for ever, and
    the others in its batch with it. Any server at the partner's URL, or on the path of an http:// one,
    could do it."""
    from interop.delivery import Deliverer
    from store.tickets import TicketStore
    migrate(db_url, ROOT)
    cfg = load_config(None, {"state_dir": str(tmp_path), "database": {"url": db_url}})
    d = Deliverer(cfg, Secrets(ami_user="u", ami_secret="s", agent_passwords={}, partner_secrets={PARTNER: SECRET},
                               bus_key="k"))
    tickets = TicketStore(d.db)
    await tickets.ensure_for_call(CallState(call_id="c0", city="leshan", agent="agent1001"), "call", 72)
    t = await tickets.for_call("c0")
    await tickets.update(t["id"], {"category": "land_housing"})
    await d.outbox.hand_off(t["id"], PARTNER, False, "agent1001", lambda facts: facts, "referred_12345", "open")
    try:
        gbk_busy = "服务器忙".encode("gbk")
        for status, body in ((503, gbk_busy), (503, b"busy\x00"), (400, b"no\x00")):   # retries, a dead letter
            d.http = SimpleNamespace(post=lambda *a, **k: _Answer(status, body))
            d.bus.publish = _noop
            [m] = await d.outbox.claim(d.worker, 30)
            await d.deliver(m)
            [row] = await d.outbox.outbox(partner=PARTNER)
            assert row["status"] == ("pending" if status == 503 else "dead")
            assert "\x00" not in row["last_error"] and row["last_error"].startswith(f"{'HTTP' if status == 503 else 'refused'}")
            if status == 503:      # due again at once, for the next round
                await d.outbox.requeue(row["id"])
    finally:
        await d.db.close()


async def _noop(*a, **k):
    return None


async def test_no_sms_is_queued_to_a_number_outside_the_numbering_plan(api):
    """The review's last open item: appointment texts and complaint replies were queued to any digits,
    +882… and premium ranges included — the toll-fraud hole of finding 4, for SMS. An SMS reaches only a
    mobile of the numbering plan; the booking and the reply still happen, with no text queued."""
    svc = api.server.app[SERVICES]
    center = next(iter(svc.centers.by_id.values()))
    today = datetime.now(ZoneInfo(svc.cfg.routing.timezone)).date()

    def open_day(d):
        try:
            check_booking_time(center, d, "09:00", svc.cfg.schedules.get(center.city), today)
            return True
        except BookingError:
            return False
    days = [d for d in (today + timedelta(days=k) for k in range(3, 30)) if open_day(d)]
    for day, (number, texts) in zip(days, (("+88212345678", False), ("02887654321", False), ("13800004444", True))):
        r = await api.post("/api/appointments", headers=BEARER, json={
            "center": center.id, "date": day.isoformat(), "slot": "09:00", "caller_number": number})
        assert r.status == 201, await r.text()
        queued = await svc.appointments.outbox(related=f"appointment:{(await r.json())['id']}")
        assert bool(queued) is texts, (number, queued)
    for number, texts in (("+88212345678", False), ("13800004444", True)):
        r = await api.post("/api/complaints", headers=BEARER,
                           json={"city": "leshan", "description": "x", "complainant_number": number})
        cid = (await r.json())["id"]
        await api.post(f"/api/complaints/{cid}/assign", headers=BEARER, json={"to": "sup_leshan"})
        r = await api.post(f"/api/complaints/{cid}/reply", headers=BEARER, json={"reply": "已处理"})
        assert r.status == 200, await r.text()
        queued = await svc.appointments.outbox(related=f"complaint:{cid}")
        assert bool(queued) is texts, (number, queued)
