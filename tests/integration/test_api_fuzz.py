"""Schemathesis against the live controller of the test stack, driven by the OpenAPI documents it
serves: /api/openapi.json (the desk/operator API, dashboard/openapi.py) and /api/interop/openapi.json
(the signed partner API). Every generated request, valid or not, must get an answer that is not a
5xx, in the documented status codes, content types and response schemas; invalid input must be
refused (4xx). Unsigned partner requests are refused and write nothing.

Bounded and deterministic: derandomized Hypothesis with a fixed seed, MAX_EXAMPLES random cases per
operation after schemathesis's coverage cases, loopback only.
A few records are seeded (calls with tickets, complaints, an alert, an appointment) and small
numeric ids in generated paths are mapped onto them, so the fuzzer reaches the handlers' body
validation instead of stopping at 404, and never touches another test's records. At the end the
agents are logged out again and the fuzzer's appointments cancelled (their seats freed).
"""
from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import time
import traceback
import urllib.error
import urllib.request
import zlib
from datetime import date, timedelta

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the test extras")

from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.generation.hypothesis.builder import (HypothesisTestConfig, HypothesisTestMode,  # noqa: E402
                                                        create_test)
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,  # noqa: E402
                                               response_schema_conformance, status_code_conformance)
from sqlalchemy import create_engine, text  # noqa: E402

from core.calls import CallState  # noqa: E402
from store.alerts import AlertStore  # noqa: E402
from store.calls import CallStore  # noqa: E402
from store.engine import Database, sync_url  # noqa: E402
from store.tickets import TicketStore  # noqa: E402
from interop import signing  # noqa: E402
from tests.helpers import fresh  # noqa: E402

_SEEDS = itertools.count()
# per operation (random phase; the coverage phase adds its own): ~100 s for the file on 2 cores.
# HOTLINE_FUZZ_EXAMPLES=1000 HOTLINE_FUZZ_RANDOM=1 fuzzes harder, and differently each run.
MAX_EXAMPLES = int(os.environ.get("HOTLINE_FUZZ_EXAMPLES", "100"))
RANDOM = bool(os.environ.get("HOTLINE_FUZZ_RANDOM"))
SMALL_ID = 10 ** 6         # generated ids below this are mapped onto the seeded records
FUZZ_SETTINGS = settings(max_examples=MAX_EXAMPLES, derandomize=not RANDOM, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck), print_blob=False,
                         phases=(Phase.explicit, Phase.generate))
# schema examples, then the coverage phase (each parameter and property missing, of the wrong type,
# at and past its bounds), then random valid and invalid data
MODES = [HypothesisTestMode.EXAMPLES, HypothesisTestMode.COVERAGE, HypothesisTestMode.FUZZING]
MAIN_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
               response_schema_conformance, negative_data_rejection]


def _config(headers: dict | None = None):
    return schemathesis.Config.from_dict({
        **({} if RANDOM else {"seed": 12348}),
        "headers": headers or {},
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": not RANDOM,
                       "database": "none"},
        "phases": {"stateful": {"enabled": False}},
        "request-timeout": 20,
        # a refusal is a 4xx: 413 (body over 64 KiB) too
        "checks": {"negative_data_rejection": {"expected-statuses": [
            "400", "401", "403", "404", "405", "406", "409", "413", "415", "422"]}},
    })


def _bearer(s) -> dict:
    return {"Authorization": f"Bearer {s.secrets.service_token}"}


def _count(s, table: str) -> int:
    engine = create_engine(sync_url(s.cfg.system.database.url, s.cfg.root))
    try:
        with engine.connect() as c:
            return c.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


def _seed(s) -> dict[str, list]:
    """Records of this test's own for the fuzzer to work on."""
    tag = f"fuzz{s.name}-{next(_SEEDS)}"

    async def make():
        db = Database(s.cfg.system.database.url, s.cfg.root)
        store, tickets, alerts = CallStore(db), TicketStore(db), AlertStore(db)
        calls, ticket_ids, alert_ids = [], [], []
        now = time.time()
        try:
            for i in range(3):
                c = CallState(call_id=f"{tag}-{i}", city="leshan", caller_number=f"1398888{i:04d}", language="zh",
                              status="ended", outcome="answered", agent="agent1001", started_at=now - 600,
                              queued_at=now - 590, answered_at=now - 580, ended_at=now - 300)
                await store.save_call(c)
                await tickets.ensure_for_call(c, "call", 72)
                calls.append(c.call_id)
                ticket_ids.append((await tickets.for_call(c.call_id))["id"])
            a = await alerts.add_alert(kind="keyword", city="leshan", call_id=calls[0], agent="agent1001",
                                       topic="fuzz", term="fuzz", detail="seeded by test_api_fuzz")
            alert_ids.append(a["id"])
        finally:
            await db.close()
        return calls, ticket_ids, alert_ids

    calls, ticket_ids, alert_ids = asyncio.run(make())
    complaints = [s.api("/api/complaints", "POST", {"city": "leshan", "description": f"fuzz seed {i}",
                                                    "complainant_number": "13988880009"})["id"] for i in range(2)]
    appointments = []
    for ahead in range(1, 20):
        day = (date.today() + timedelta(days=ahead)).isoformat()
        free = [x["slot"] for x in s.api(f"/api/legal-aid/centers/leshan_city/slots?date={day}") if x["free"] > 0]
        if free:
            appointments.append(s.api("/api/appointments", "POST", {
                "center": "leshan_city", "date": day, "slot": free[0], "caller_number": "13988880010",
                "ticket_id": ticket_ids[0]})["id"])
            break
    return {"call_id": calls, "ticket_id": ticket_ids, "alert_id": alert_ids, "complaint_id": complaints,
            "appointment_id": appointments}


def _restore(s, appointments_before: int) -> None:
    """Agents logged out; appointments the fuzzer booked cancelled (their seats free for others)."""
    s.logout_all()
    for a in s.api("/api/appointments?status=booked"):
        if a["id"] > appointments_before:
            s.api(f"/api/appointments/{a['id']}/cancel", "POST", {})


@pytest.fixture
def fuzz_stack(stack):
    with fresh(stack):
        before = max([a["id"] for a in stack.api("/api/appointments")], default=0)
        stack.seeded = _seed(stack)
        try:
            yield stack
        finally:
            _restore(stack, before)


def onto_seeded_records(case, seeded: dict[str, list]) -> None:
    """Small ids in the path become ids of this test's records, and call ids two times out of three:
    the handlers get past their 404 to the body, and no other test's record is touched."""
    params = case.path_parameters or {}
    for name, value in list(params.items()):
        known = seeded.get(name)
        if not known:
            continue
        if name == "call_id":
            if isinstance(value, str) and value and zlib.crc32(value.encode()) % 3:
                params[name] = known[zlib.crc32(value.encode()) % len(known)]
        elif isinstance(value, int) and not isinstance(value, bool) and 0 < value < SMALL_ID:
            params[name] = known[value % len(known)]


@pytest.fixture
def api_schema(fuzz_stack):
    s = fuzz_stack
    return schemathesis.openapi.from_url(f"{s.base_url}/api/openapi.json", config=_config(_bearer(s)),
                                         headers=_bearer(s), timeout=10)


@pytest.fixture
def interop_schema(fuzz_stack):
    return schemathesis.openapi.from_url(f"{fuzz_stack.base_url}/api/interop/openapi.json", config=_config(),
                                         timeout=10)


def test_every_api_route_requires_auth_and_answers_in_the_error_shape(fuzz_stack):
    """Without credentials every documented operation (but health and the interop document) is 401."""
    s = fuzz_stack
    doc = s.api("/api/openapi.json")
    assert doc["openapi"].startswith("3.1") and "bearer" in doc["components"]["securitySchemes"]
    for path, ops in doc["paths"].items():
        concrete = path.replace("{call_id}", "x").replace("{agent_id}", "agent1001").replace("{city}", "leshan") \
            .replace("{center_id}", "leshan_city")
        for i in ("ticket_id", "complaint_id", "appointment_id", "alert_id"):
            concrete = concrete.replace("{" + i + "}", "1")
        for method, op in ops.items():
            req = urllib.request.Request(s.base_url + concrete, method=method.upper(),
                                         data=b"{}" if method != "get" else None,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status, body = e.code, e.read()
                assert b'"error"' in body, (method, path, body)
            if op.get("security") == []:
                assert status == 200, (method, path)
            else:
                assert status == 401, (method, path, status)


def test_known_malformed_inputs_get_a_clear_4xx(fuzz_stack):
    """Inputs the fuzzer found, or the same mistake elsewhere: each was a 500 (a dropped connection for
    the CSV name; text/plain for aiohttp's own 404 and 405). The alert is a check of the seeding."""
    s = fuzz_stack
    tid, cid, aid = s.seeded["ticket_id"][1], s.seeded["complaint_id"][0], s.seeded["alert_id"][0]
    huge = "8253546758346469858607104"
    cases = [
        ("GET", f"/api/tickets/{huge}", None, 404), ("GET", f"/api/tickets/{2 ** 31}/handoffs", None, 404),
        ("GET", f"/api/complaints/{huge}", None, 404), ("POST", f"/api/appointments/{huge}/cancel", None, 404),
        ("POST", f"/api/alerts/{huge}/ack", None, 404), ("GET", f"/api/follow-ups?ticket_id={huge}", None, 400),
        ("POST", "/api/appointments", {"center": "leshan_city", "date": "2030-01-01", "slot": "09:00",
                                       "caller_number": "13988880011", "ticket_id": int(huge)}, 400),
        ("POST", "/api/appointments", {"center": ["leshan_city"], "date": "2030-01-01", "slot": "09:00",
                                       "caller_number": "13988880011"}, 400),
        ("POST", "/api/appointments", {"center": "leshan_city", "date": "2030-01-01", "slot": "09:00",
                                       "caller_number": "13988880011", "language": ["zh"]}, 400),
        ("POST", "/api/complaints", {"city": "leshan", "description": "x", "call_id": {"a": 1}}, 400),
        ("POST", "/api/complaints", {"city": "leshan", "description": "x", "call_id": "c" * 65}, 400),
        ("POST", "/api/complaints", {"city": ["leshan"], "description": "x"}, 400),
        ("POST", "/api/complaints", {"city": "leshan", "description": "x", "language": "zh-Hans-CN"}, 400),
        ("POST", "/api/legal-aid/prescreen", {"city": "leshan", "matter": "traffic", "household_size": 10 ** 400,
                                              "household_monthly_income": 1}, 400),
        ("POST", "/api/legal-aid/prescreen", {"city": "leshan", "matter": "traffic", "household_size": 1,
                                              "household_monthly_income": 10 ** 400}, 400),
        ("POST", "/api/legal-aid/prescreen", {"city": "leshan", "matter": "traffic", "household_size": 1,
                                              "household_monthly_income": float("nan")}, 400),
        ("POST", "/api/legal-aid/prescreen", {"city": "leshan", "matter": "traffic", "household_size": 1,
                                              "household_monthly_income": -10 ** 400}, 400),
        ("PATCH", f"/api/tickets/{tid}", {"category": ["traffic"]}, 400),
        ("PATCH", f"/api/tickets/{tid}", {"outcome": {"x": 1}}, 400),
        ("POST", f"/api/tickets/{tid}/handoff", {"partner": ["12345"], "consent": True}, 400),
        ("POST", f"/api/tickets/{tid}/status", {"status": ["closed"]}, 400),
        ("POST", f"/api/complaints/{cid}/assign", {"to": ["command1"]}, 400),
        ("POST", f"/api/alerts/{aid}/ack", None, 200),
        ("GET", "/api/stats?from=0001-01-01&to=0001-01-01", None, 400),
        ("GET", "/api/stats?from=9999-12-31&to=9999-12-31", None, 400),
        ("GET", "/api/stats?from=2026-01-01&to=2026-01-02&format=csv&city=x%0D%0AX-Injected:%201", None, 400),
        ("GET", "/api/reports?from=0001-01-01&to=0001-01-01", None, 400),
        ("GET", "/api/search?q=x&to=9999-12-31", None, 400),
        ("GET", "/api/legal-aid/centers/leshan_city/slots?date=9999-12-31", None, 400),
        ("GET", "/api/no-such-route", None, 404), ("DELETE", "/api/tickets", None, 405),
    ]
    got = []
    for method, path, body, want in cases:
        req = urllib.request.Request(s.base_url + path, method=method,
                                     headers={**_bearer(s), "Content-Type": "application/json"},
                                     data=json.dumps(body).encode() if body is not None else None)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, payload = r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            status, payload = e.code, json.loads(e.read())
            assert set(payload) == {"error"}, (method, path, payload)
        got.append((method, path, status, payload if status != want else ""))
    assert [g[2] for g in got] == [c[3] for c in cases], "\n".join(map(str, got))


def _fuzz(schema, run_case) -> tuple[list[str], int]:
    """Every operation of ``schema`` through schemathesis's per-operation Hypothesis test (what its
    pytest plugin runs; ``schemathesis.pytest.from_fixture`` itself needs a ``Node._nodeid`` that
    pytest 9 no longer has): (failures, number of requests)."""
    failures, count = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()

        def one(case):
            nonlocal count
            count += 1
            run_case(case)
        test = create_test(operation=operation, test_func=one, config=HypothesisTestConfig(
            project=schema.config, modes=MODES, explicit_settings=FUZZ_SETTINGS,
            settings=schema.config.get_hypothesis_settings(operation=operation, phase="fuzzing")))
        try:
            test()
        except Unsatisfiable:   # no invalid value to send (e.g. a free-text path parameter)
            pass
        except (Exception, BaseExceptionGroup) as e:   # one report for all operations, not the first only
            text = "".join(traceback.format_exception_only(e)).strip()
            failures.append(f"{operation.label}: {text[:2500]}")
    return failures, count


def test_api_fuzz(api_schema, fuzz_stack):
    """Generated requests (valid and invalid) to every operation of /api/openapi.json."""
    statuses = collections.Counter()
    bearer = _bearer(fuzz_stack)

    def run_case(case):
        onto_seeded_records(case, fuzz_stack.seeded)
        # the coverage phase also drops or garbles the credentials: that is 401 every time (checked
        # above, for every operation); here every request gets past the login to the handler
        response = case.call_and_validate(headers=bearer, checks=MAIN_CHECKS)
        statuses[(case.operation.label, response.status_code)] += 1
    failures, count = _fuzz(api_schema, run_case)
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
    reached = {label for (label, status) in statuses if 200 <= status < 300}
    print(f"{count} generated requests; {len(reached)} of {len({k[0] for k in statuses})} operations answered 2xx")
    assert count > 2000 and len(reached) >= 30   # past the validation, into the work, for most


def test_interop_fuzz_unsigned_is_refused_and_writes_nothing(interop_schema, fuzz_stack):
    """Unsigned (or wrongly signed) partner and city-node requests: 401 or 400, never 5xx, nothing
    written. A node that is not the command center answers the federation endpoints 404."""
    s = fuzz_stack
    tables = ("tickets", "handoffs", "inbound_requests", "federated_events")
    before = {t: _count(s, t) for t in tables}

    def run_case(case):
        headers = {}
        seed = zlib.crc32(repr((case.body, case.headers)).encode())
        if seed % 2:   # half of them look signed: a known key, a fresh timestamp and nonce, a wrong signature
            keys = sorted(s.secrets.partner_secrets) or ["12345"]
            headers = {signing.KEY: keys[seed % len(keys)], signing.TIMESTAMP: str(int(time.time())),
                       signing.NONCE: f"fuzz{seed:08x}", signing.SIGNATURE: f"{seed:064x}"}
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error])
        allowed = {400, 401} if case.method == "POST" else {405}   # the coverage phase tries other methods too
        if case.path.startswith("/api/federation/v1/") and s.cfg.system.federation.mode != "command":
            allowed.add(404)
        assert response.status_code in allowed, (case.method, case.path, response.status_code, response.text[:300])
        assert response.headers.get("content-type", [""])[0].startswith("application/json")
        assert "error" in response.json()

    failures, count = _fuzz(interop_schema, run_case)
    print(f"{count} generated requests")
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
    assert count > 40
    assert {t: _count(s, t) for t in tables} == before, "unsigned requests wrote something"
