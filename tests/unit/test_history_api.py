"""Issue 16, finding 8, over the API: the screen-pop's history (GET /api/calls/{id}/history) of a call
from an empty or withheld number lists no other calls and no other tickets."""

import pytest

from core.calls import CallState
from tests.helpers import http_app


@pytest.fixture
async def api(db_url, tmp_path):
    async with http_app(db_url, tmp_path) as c:
        yield c, c.ctl


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


async def test_a_call_from_plus_86_sees_the_history_of_the_11_digit_number(api):
    """Issue 16, finding 4: +8613800005555 and 13800005555 are one caller: the screen-pop of a call from
    the E.164 form lists the calls and tickets written under the national form (and the 0086 form)."""
    client, ctl = api
    for i, number in enumerate(["13800005555", "008613800005555", "13800006666", "+8613800005555"]):
        c = CallState(call_id=f"q.{i}", city="leshan", caller_number=number, agent="agent1001", status="ended",
                      outcome="answered", started_at=1000.0 + i, answered_at=1001.0 + i, ended_at=1060.0 + i)
        await ctl.call_records.save_call(c)
        await ctl.tickets.ensure_for_call(c, "call", 72)
    r = await client.get("/api/calls/q.3/history", headers={"Authorization": "Bearer t"})
    assert r.status == 200
    h = await r.json()
    assert [c["call_id"] for c in h["previous_calls"]] == ["q.1", "q.0"]
    assert {t["call_id"] for t in h["tickets"]} == {"q.0", "q.1", "q.3"}
    r = await client.get("/api/tickets?caller=13800005555", headers={"Authorization": "Bearer t"})
    assert {t["call_id"] for t in await r.json()} == {"q.0", "q.1", "q.3"}
    for odd in ("%2B999", "%2B1", "anonymous", "1" * 300):     # no number, or none phonenumbers can read
        r = await client.get(f"/api/tickets?caller={odd}", headers={"Authorization": "Bearer t"})
        assert r.status == 200 and await r.json() == [], odd


async def test_complaints_are_listed_by_caller_in_any_form(api):
    client, _ = api
    auth = {"Authorization": "Bearer t"}
    for number in ("13800007777", "+8613800007777", "13800008888"):
        r = await client.post("/api/complaints", headers=auth, json={
            "city": "leshan", "complainant_number": number, "description": "nobody called back"})
        assert r.status == 201, await r.text()
    r = await client.get("/api/complaints?caller=008613800007777", headers=auth)
    assert r.status == 200
    assert sorted(c["complainant_number"] for c in await r.json()) == ["+8613800007777", "13800007777"]
