"""Issue 16, finding 7, over real HTTP: the 12345 simulator (`hotline simulate-12345`) signs tickets as
12345 with this node's shared secret, so it runs only where tests and the demo run it, and its control
endpoints (/_sim/*) answer only to the holder of its run's token."""
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import ROOT, free_port, terminate

INBOUND = {"schema_version": 1, "partner_ticket_id": "12345-leshan-9", "city": "leshan",
           "caller_number": "13900009999", "question": "工资被拖欠", "consent": True}


def env_for(state: Path, **overrides) -> dict:
    return {**os.environ, "HOTLINE_CONFIG_OVERRIDES": json.dumps({"state_dir": str(state), **overrides}),
            "PYTHONUNBUFFERED": "1"}


def simulate(*args: str) -> list[str]:
    return [sys.executable, "-m", "hotline.cli", "simulate-12345", *args]


@pytest.mark.parametrize("args, overrides, why", [
    ((), {}, "--test-only"),
    (("--test-only", "--host", "0.0.0.0"), {}, "loopback"),
    (("--test-only", "--target", "http://192.0.2.7:8080"), {}, "loopback"),
    (("--test-only",), {"interop": {"endpoints": {"12345": {"leshan": "https://12345.leshan.example/api/v1"}}}},
     "12345.leshan.example"),
])
def test_the_simulator_refuses_to_run_outside_tests_and_the_demo(tmp_path, args, overrides, why):
    port = free_port()
    # before the fix it started and served: the timeout ends it and fails the test
    done = subprocess.run(simulate("--port", str(port), *args), cwd=ROOT, env=env_for(tmp_path, **overrides),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and why in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / f"sim12345-{port}.token").exists()


class Receiver(BaseHTTPRequestHandler):
    """12348's inbound endpoint, as far as the simulator can tell: records what it is sent."""
    got: list[tuple[str, dict]] = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Receiver.got.append((self.path, dict(self.headers)))
        body = json.dumps({"ticket_id": 1, "handoff_ref": "x-h1", "callback": True}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def simulator(tmp_path):
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    Receiver.got = []
    port = free_port()
    proc = subprocess.Popen(simulate("--test-only", "--port", str(port), "--target",
                                     f"http://127.0.0.1:{receiver.server_port}"),
                            cwd=ROOT, env=env_for(tmp_path), stdout=open(tmp_path / "sim.log", "wb"),
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "sim.log").read_text()[-2000:]
            time.sleep(0.2)
    yield port, tmp_path / f"sim12345-{port}.token", proc
    terminate(proc)
    receiver.shutdown()


def call(port: int, method: str, path: str, authorization: bytes | None = None, body=None) -> tuple[int, dict]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.putrequest(method, path)
        data = json.dumps(body).encode() if body is not None else b""
        c.putheader("Content-Type", "application/json")
        c.putheader("Content-Length", str(len(data)))
        if authorization is not None:
            c.putheader("Authorization", authorization)      # bytes: sent as they are, not as latin-1
        c.endheaders(data)
        r = c.getresponse()
        raw = r.read()
        return r.status, json.loads(raw) if r.getheader("Content-Type", "").startswith("application/json") else {}
    finally:
        c.close()


def test_the_control_endpoints_need_the_runs_token(simulator):
    port, token_file, proc = simulator
    for method, path, body in (("GET", "/_sim/state", None), ("POST", "/_sim/push", INBOUND),
                               ("POST", "/_sim/faults", {"error500": True})):
        for authorization in (None, b"Bearer not-the-token", "Bearer 密钥".encode(), b"Bearer \xff\xfe",
                              b"Basic dXNlcjpwdw=="):
            code, _ = call(port, method, path, authorization, body)
            assert code == 401, (method, path, authorization, code)
    for path in ("//_sim/state", "/%5Fsim/state", "/_sim/state/", "/_SIM/state"):   # other spellings too
        assert call(port, "GET", path)[0] in (401, 404), path
    assert Receiver.got == []                        # nothing was signed and sent for anyone

    # the run's token: in a file only this user can read, new for every run
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 32
    bearer = f"Bearer {token}".encode()
    code, pushed = call(port, "POST", "/_sim/push", bearer, INBOUND)
    assert code == 200 and pushed["status"] == 201
    assert [p for p, _ in Receiver.got] == ["/api/interop/v1/tickets"]
    code, state = call(port, "GET", "/_sim/state", bearer)
    assert code == 200 and state["inbound"][0]["status"] == 201
    # the ordinary, signed partner endpoints do not take the token: they check signatures as before
    code, refused = call(port, "POST", "/api/v1/tickets", bearer, {"region": "leshan"})
    assert code == 401 and "unsigned" in refused["error"]
    terminate(proc)
    assert not token_file.exists()                   # gone with the run
