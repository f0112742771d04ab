"""Issue 16, finding 8, over the API: the screen-pop's history (GET /api/calls/{id}/history) of a call
from an empty or withheld number lists no other calls and no other tickets."""

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.calls import CallState
from core.config import load_config
from hotline import compose
from store.secrets import Secrets
from store.engine import migrate
from tests.helpers import ROOT


@pytest.fixture
async def api(db_url, tmp_path):
    migrate(db_url, ROOT)
    cfg = load_config(None, {"state_dir": str(tmp_path), "database": {"url": db_url}})
    secrets = Secrets(ami_user="u", ami_secret="s", agent_passwords={}, service_token="t", privacy_key="k", bus_key="k")
    ctl = compose.controller(cfg, secrets)
    c = TestClient(TestServer(compose.api(ctl, secrets)))
    await c.start_server()
    yield c, ctl
    await c.close()
    await ctl.db.close()


async def test_a_withheld_number_shows_no_one_elses_history(api):
    client, ctl = api
    numbers = ["13800004444", "", "anonymous", "unknown"]
    for i, number in enumerate(numbers * 2):
        c = CallState(call_id=f"p.{i}", city="leshan", caller_number=number, agent="agent1001", status="ended",
                      outcome="answered", started_at=1000.0 + i, answered_at=1001.0 + i, ended_at=1060.0 + i)
        await ctl.call_records.save_call(c)
        await ctl.tickets.ensure_for_call(c, "call", 72)
    auth = {"Authorization": "Bearer t"}
    for i, number in enumerate(numbers):
        call_id = f"p.{i + len(numbers)}"
        r = await client.get(f"/api/calls/{call_id}/history", headers=auth)
        assert r.status == 200
        h = await r.json()
        if number == "13800004444":
            assert [c["call_id"] for c in h["previous_calls"]] == ["p.0"]
            assert {t["call_id"] for t in h["tickets"]} == {"p.0", call_id}
        else:     # only the call's own ticket (the desk edits it); nobody else's calls or tickets
            assert h["previous_calls"] == [], number
            assert [t["call_id"] for t in h["tickets"]] == [call_id], number
