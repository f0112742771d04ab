"""The knowledge base over the real HTTP app (every route, the real stores, sessions with CSRF, the
audit log) on SQLite and PostgreSQL: search, suggestions for a call, attaching to a ticket, the
summary queued in the SMS outbox, the supervisors' maintenance, roles and refusals (all 4xx)."""
from __future__ import annotations

import pytest

from core.calls import CallState
from core.knowledge import load_knowledge
from dashboard.auth import CSRF_HEADER
from dashboard.common import AUTH
from tests.helpers import http_app

PW = "knowledge-test-password-12348"
SERVICE = {"Authorization": "Bearer t"}


@pytest.fixture
async def api(db_url, tmp_path):
    async with http_app(db_url, tmp_path) as c:
        auth = c.server.app[AUTH]
        for user in ("agent1001", "agent1008", "sup_leshan", "sup_chengdu"):
            await auth.set_password(user, PW)
        kf = load_knowledge(c.ctl.cfg.config_dir, set(c.ctl.ticket_rules.categories))
        from dashboard.services import SERVICES
        c.svc = c.server.app[SERVICES]
        await c.svc.knowledge.load_seed([e.model_dump() for e in kf.entries], "hotline-seed")
        yield c


async def login(client, user: str) -> dict:
    client.session.cookie_jar.clear()
    r = await client.post("/api/login", json={"user": user, "password": PW})
    assert r.status == 200, await r.text()
    return {CSRF_HEADER: (await r.json())["csrf"]}


async def a_call(ctl, call_id: str, number: str, ivr_path: str = "lang=zh/svc=legal_aid") -> dict:
    c = CallState(call_id=call_id, city="leshan", caller_number=number, agent="agent1001", status="ended",
                  outcome="answered", ivr_path=ivr_path, service=ivr_path.rsplit("svc=", 1)[-1], language="zh",
                  started_at=1000.0, answered_at=1001.0, ended_at=1060.0)
    await ctl.call_records.save_call(c)
    await ctl.tickets.ensure_for_call(c, "call", 72)
    return await ctl.tickets.for_call(call_id)


async def test_agent_searches_gets_suggestions_attaches_and_texts(api):
    client, ctl = api, api.ctl
    ticket = await a_call(ctl, "k.1", "13922220001")
    h = await login(client, "agent1001")

    r = await client.get("/api/knowledge", params={"q": "包工头拖欠工资"})
    assert r.status == 200
    found = await r.json()
    assert found["results"] and all(x["category"] == "labour_wages" for x in found["results"])
    assert all(x["needs_lawyer_review"] for x in found["results"])
    for bad in ({}, {"q": "x" * 201}, {"q": "欠薪", "category": "nope"}, {"q": "欠薪", "limit": "many"}):
        assert (await client.get("/api/knowledge", params=bad)).status == 400, bad
    r = await client.get("/api/knowledge", params={"q": "比特币挖矿"})
    assert (await r.json())["results"] == []          # kept for the report

    # the screen-pop: the IVR service (legal aid) gives its categories' entries
    r = await client.get("/api/calls/k.1/knowledge")
    s = await r.json()
    assert s["service"] == "legal_aid" and s["categories"] == ["other", "criminal"]
    assert s["suggestions"] and {x["category"] for x in s["suggestions"]} <= {"other", "criminal"}
    # the ticket's category comes first; the live transcript's words first of all
    await ctl.tickets.update(ticket["id"], {"category": "labour_wages"})
    s = await (await client.get("/api/calls/k.1/knowledge", params={"text": "包工头跑了，工地上的工资一直不给"})).json()
    assert s["categories"][0] == "labour_wages"
    assert s["suggestions"][0]["why"] == "words" and s["suggestions"][0]["category"] == "labour_wages"
    assert {"工头", "工资"} <= set(s["suggestions"][0]["matched"])
    assert (await client.get("/api/calls/k.1/knowledge", params={"text": "字" * 601})).status == 400
    assert (await client.get("/api/calls/nope/knowledge")).status == 404

    entry = s["suggestions"][0]
    # attach: CSRF like every desk change; refusals are 4xx and change nothing
    assert (await client.post(f"/api/tickets/{ticket['id']}/knowledge", json={"entry_id": entry["id"]})).status == 403
    for bad, code in (({"entry_id": "x"}, 400), ({"entry_id": 0}, 400), ({"entry_id": 99999}, 404), ({}, 400)):
        r = await client.post(f"/api/tickets/{ticket['id']}/knowledge", json=bad, headers=h)
        assert r.status == code, (bad, await r.text())
    r = await client.post(f"/api/tickets/{ticket['id']}/knowledge", json={"entry_id": entry["id"]}, headers=h)
    assert r.status == 200
    assert [(u["entry_id"], u["action"]) for u in await r.json()] == [(entry["id"], "attach")]

    # the summary to the caller: queued in the outbox (the SMS worker delivers it)
    r = await client.post(f"/api/tickets/{ticket['id']}/knowledge/{entry['id']}/sms", headers=h)
    assert r.status == 201, await r.text()
    msg = await r.json()
    assert msg["to_number"] == "13922220001" and entry["summary"] in msg["body"] and msg["body"].startswith("【12348】")
    again = await client.post(f"/api/tickets/{ticket['id']}/knowledge/{entry['id']}/sms", headers=h)
    assert again.status == 409
    out = await (await client.get(f"/api/outbox?related=ticket:{ticket['id']}", headers=SERVICE)).json()
    assert [(m["kind"], m["to_number"], m["status"]) for m in out] == [("kb_summary", "13922220001", "pending")]
    uses = await (await client.get(f"/api/tickets/{ticket['id']}/knowledge")).json()
    assert [u["action"] for u in uses] == ["attach", "sms"]

    # no text to a fixed line, nor to a caller who opted out
    landline = await a_call(ctl, "k.2", "02885551234")
    r = await client.post(f"/api/tickets/{landline['id']}/knowledge/{entry['id']}/sms", headers=h)
    assert r.status == 409 and "mobile" in (await r.json())["error"]
    from store.engine import utcnow
    from store.models import OptOut
    async with ctl.db.session.begin() as ses:
        ses.add(OptOut(number="+8613922220009", source="test", created_at=utcnow()))
    opted = await a_call(ctl, "k.3", "13922220009")
    r = await client.post(f"/api/tickets/{opted['id']}/knowledge/{entry['id']}/sms", headers=h)
    assert r.status == 409 and "opt-out" in (await r.json())["error"]
    out = await (await client.get("/api/outbox", headers=SERVICE)).json()
    assert [m["to_number"] for m in out if m["kind"] == "kb_summary"] == ["13922220001"]

    # another agent's ticket is not theirs
    h8 = await login(client, "agent1008")
    r = await client.post(f"/api/tickets/{ticket['id']}/knowledge", json={"entry_id": entry["id"]}, headers=h8)
    assert r.status == 403

    # agents do not maintain the base
    for method, path in (("post", "/api/knowledge/entries"), ("get", "/api/knowledge/entries"),
                         ("get", "/api/knowledge/report"), ("post", f"/api/knowledge/{entry['id']}/expire"),
                         ("patch", f"/api/knowledge/{entry['id']}")):
        r = await getattr(client, method)(path, headers=h8, **({"json": {}} if method != "get" else {}))
        assert r.status == 403, (method, path)
    audit = await (await client.get("/api/audit?limit=50", headers=SERVICE)).json()
    assert {"kb_attach", "kb_sms"} <= {a["action"] for a in audit if a["allowed"]}
    assert "kb_create" in {a["action"] for a in audit if not a["allowed"]}


async def test_supervisor_maintains_entries_with_versions_and_review(api):
    client = api
    h = await login(client, "sup_leshan")
    new = {"slug": "rural-land-contract", "category": "land_housing", "title": "土地承包经营权",
           "question": "村里要收回我家的承包地，可以吗？", "answer": "承包期内，发包方不得收回承包地（测试条目）。",
           "summary": "承包期内发包方一般不得收回承包地。", "laws": [{"law": "农村土地承包法", "article": "第二十七条"}],
           "effective_from": "2019-01-01"}
    for broken, field in (({"summary": "字" * 301}, "summary"), ({"laws": []}, "laws"),
                          ({"effective_to": "2018-01-01"}, "effective_to"), ({"category": "nope"}, "category"),
                          ({"slug": "Bad Slug"}, "slug"), ({"colour": "red"}, "colour")):
        r = await client.post("/api/knowledge/entries", json={**new, **broken}, headers=h)
        assert r.status == 400 and field in (await r.json())["error"], (broken, await r.text())
    r = await client.post("/api/knowledge/entries", json=new, headers=h)
    assert r.status == 201, await r.text()
    e = await r.json()
    assert (e["status"], e["latest_version"]) == ("draft", 1) and e["latest"]["needs_lawyer_review"] is True
    assert (await client.post("/api/knowledge/entries", json=new, headers=h)).status == 409
    # a draft is not found by agents
    slugs = [x["slug"] for x in (await (await client.get("/api/knowledge", params={"q": "收回承包地"})).json())["results"]]
    assert "rural-land-contract" not in slugs

    r = await client.post(f"/api/knowledge/{e['id']}/publish", json={"version": 1}, headers=h)
    assert r.status == 200 and (await r.json())["status"] == "published"
    slugs = [x["slug"] for x in (await (await client.get("/api/knowledge", params={"q": "收回承包地"})).json())["results"]]
    assert slugs[0] == "rural-land-contract"
    r = await client.patch(f"/api/knowledge/{e['id']}", json={"summary": "第二版摘要：承包期内一般不得收回。",
                                                              "expect_version": 1}, headers=h)
    assert r.status == 200
    e2 = await r.json()
    assert (e2["latest_version"], e2["published_version"]) == (2, 1)
    assert (await client.patch(f"/api/knowledge/{e['id']}", json={"title": "旧版本上的修改", "expect_version": 1},
                               headers=h)).status == 409
    assert (await client.patch(f"/api/knowledge/{e['id']}", json={"effective_from": "soon"}, headers=h)).status == 400
    assert (await client.post(f"/api/knowledge/{e['id']}/publish", json={"version": 1}, headers=h)).status == 409
    assert (await client.post(f"/api/knowledge/{e['id']}/publish", json={"version": 9}, headers=h)).status == 409
    r = await client.post(f"/api/knowledge/{e['id']}/publish", json={"version": 2}, headers=h)
    full = await (await client.get(f"/api/knowledge/{e['id']}")).json()
    assert [(v["version"], v["status"]) for v in full["versions"]] == [(1, "superseded"), (2, "published")]
    r = await client.post(f"/api/knowledge/{e['id']}/expire", json={}, headers=h)
    assert r.status == 200 and (await r.json())["status"] == "expired"
    assert (await client.post(f"/api/knowledge/{e['id']}/expire", json={}, headers=h)).status == 409
    assert (await client.get("/api/knowledge/99999")).status == 404
    assert (await client.get("/api/knowledge/x")).status == 400
    # an agent sees an expired entry as gone
    await login(client, "agent1001")
    assert (await client.get(f"/api/knowledge/{e['id']}")).status == 404

    h = await login(client, "sup_leshan")
    lst = await (await client.get("/api/knowledge/entries", params={"status": "expired"})).json()
    assert [x["slug"] for x in lst] == ["rural-land-contract"]
    audit = await (await client.get("/api/audit?limit=50", headers=SERVICE)).json()
    mine = [a["action"] for a in audit if a["user_id"] == "sup_leshan" and a["allowed"]]
    assert {"kb_create", "kb_publish", "kb_edit", "kb_expire"} <= set(mine)


async def test_report_of_entries_used_and_questions_unanswered(api):
    client, ctl = api, api.ctl
    ticket = await a_call(ctl, "r.1", "13922220011")
    h = await login(client, "agent1001")
    for q in ("宅基地被占了怎么办", "宅基地被占了怎么办", "比特币挖矿"):
        assert (await (await client.get("/api/knowledge", params={"q": q})).json())["results"] == []
    s = await (await client.get("/api/calls/r.1/knowledge")).json()
    e = s["suggestions"][0]
    await client.post(f"/api/tickets/{ticket['id']}/knowledge", json={"entry_id": e["id"]}, headers=h)
    await client.post(f"/api/tickets/{ticket['id']}/knowledge/{e['id']}/sms", headers=h)
    await login(client, "sup_leshan")
    r = await (await client.get("/api/knowledge/report", params={"days": 7})).json()
    assert r["most_used"][0] == {"id": e["id"], "title": e["title"], "attached": 1, "texted": 1, "total": 2}
    assert [(m["query"], m["count"]) for m in r["unanswered"]][:2] == [("宅基地被占了怎么办", 2), ("比特币挖矿", 1)]
    # Chengdu's supervisor sees Chengdu's use only
    await login(client, "sup_chengdu")
    assert (await (await client.get("/api/knowledge/report")).json())["most_used"] == []
    assert (await client.get("/api/knowledge/report", params={"days": "week"})).status == 400
