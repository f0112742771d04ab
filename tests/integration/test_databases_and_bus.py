"""The controller against PostgreSQL, and live call state on Redis, on the same real Asterisk."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import redis

from tests.helpers import ROOT, free_port, postgres_database


def test_second_controller_on_postgresql_records_the_same_call(clean_stack, audio):
    s = clean_stack
    with postgres_database() as url:
        overrides = json.loads(s.env["HOTLINE_CONFIG_OVERRIDES"])
        port = free_port()
        overrides["database"] = {"url": url}
        overrides["controller"] = {"http_port": port}
        env = {**s.env, "HOTLINE_CONFIG_OVERRIDES": json.dumps(overrides)}
        log = open(s.tmp / "controller-pg.log", "wb")
        pg = subprocess.Popen([sys.executable, "-m", "hotline.cli", "serve"], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
        try:
            import urllib.request
            def api(path):
                req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                             headers={"Authorization": f"Bearer {s.secrets.service_token}"})
                with urllib.request.urlopen(req, timeout=5) as r:
                    return json.loads(r.read())
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if api("/api/status")["controller"]["resynced"]:
                        break
                except OSError:
                    time.sleep(0.3)
            s.agent("agent1001")
            caller = s.call("083312348", dtmf="2:3,4:3", play=audio["caller"], hangup_after=12, caller="13933330001")
            assert caller.result(60)["answered"]
            deadline = time.monotonic() + 20
            rec = None
            while time.monotonic() < deadline and rec is None:
                rec = next((r for r in api("/api/calls") if r["caller_number"] == "13933330001"
                            and r["status"] == "ended"), None)
                time.sleep(0.3)
            assert rec, (s.tmp / "controller-pg.log").read_text()[-2000:]
            assert rec["language"] == "en" and rec["service"] == "mediation" and rec["agent"] == "agent1001"
            sqlite_rec = s.wait_record(lambda r: r["caller_number"] == "13933330001" and r["status"] == "ended")
            assert sqlite_rec["call_id"] == rec["call_id"]
        finally:
            pg.terminate()
            pg.wait(15)


def test_live_call_state_is_published_on_redis(clean_stack, audio):
    s = clean_stack
    r = redis.Redis.from_url(s.cfg.system.redis.url, decode_responses=True)
    prefix = s.cfg.system.redis.prefix
    sub = r.pubsub()
    sub.subscribe(f"{prefix}:events")
    s.agent("agent1001", answer_delay=4)
    caller = s.call("083312348", dtmf="2:1,4:1", hangup_after=20, caller="13933330002")
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = sub.get_message(timeout=1)
        if m and m["type"] == "message":
            call = json.loads(m["data"])["call"]
            if call["caller_number"] == "13933330002":
                seen.append(call["status"])
                if call["status"] == "queued":
                    assert r.sismember(f"{prefix}:calls", call["call_id"])
                    assert json.loads(r.get(f"{prefix}:call:{call['call_id']}"))["city"] == "leshan"
                if call["status"] == "ended":
                    assert not r.exists(f"{prefix}:call:{call['call_id']}")  # gone once ended
                    break
    caller.result(60)
    assert "queued" in seen and "talking" in seen and seen[-1] == "ended", seen
    sub.close()
