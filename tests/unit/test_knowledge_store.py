"""The legal knowledge base's store on SQLite and PostgreSQL: versions, review states, expiry, Chinese
search with jieba through the transcripts' full-text engines, uses on tickets, the SMS outbox and the
report of what was used and what found nothing."""
from __future__ import annotations

from datetime import date

import pytest

from core.config import load_config
from core.knowledge import EntryFields, load_knowledge
from store.engine import Database, migrate
from store.knowledge import KnowledgeError, KnowledgeStore, OptedOut
from store.sms import SmsStore
from store.transcripts import TranscriptStore
from tests.helpers import ROOT
from transcription.segment import index_text, query_tokens

TODAY = date(2026, 12, 6)


def fields(**kw) -> dict:
    base = {"title": "拖欠工资怎么办", "question": "老板拖欠工资三个月不给，怎么办？",
            "answer": "可以向劳动保障监察机构投诉，也可以申请劳动争议仲裁；农民工追索劳动报酬可申请法律援助。",
            "summary": "欠薪可向劳动监察投诉或申请仲裁，可申请法律援助。",
            "laws": [{"law": "保障农民工工资支付条例", "article": "第三条"}],
            "keywords": ["欠薪", "讨薪"], "effective_from": "2020-05-01"}
    base.update(kw)
    return EntryFields.model_validate(base).model_dump()


@pytest.fixture
async def kb(db_url):
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    try:
        yield KnowledgeStore(db, index_text), db
    finally:
        await db.close()


async def test_versions_and_review_states(kb):
    store, _ = kb
    e = await store.create(slug="wages", category="labour_wages", fields=fields(), by="sup_leshan")
    assert (e["status"], e["latest_version"], e["published_version"]) == ("draft", 1, None)
    # a draft is never suggested nor found
    assert await store.search(query_tokens("拖欠工资"), today=TODAY) == []
    e = await store.publish(e["id"], 1, "sup_leshan")
    assert e["status"] == "published" and e["published"]["reviewed_by"] == "sup_leshan"
    assert [x["slug"] for x in await store.search(query_tokens("拖欠工资"), today=TODAY)] == ["wages"]

    # an edit is a new draft version; the published text stays until it is published
    e = await store.edit(e["id"], {"summary": "新的短信摘要：可投诉、仲裁或申请法律援助。"}, "sup_chengdu", expect_version=1)
    assert (e["latest_version"], e["published_version"], e["status"]) == (2, 1, "published")
    assert e["latest"]["title"] == "拖欠工资怎么办" and e["latest"]["summary"].startswith("新的")
    (hit,) = await store.search(query_tokens("欠薪"), today=TODAY)
    assert hit["version"] == 1
    with pytest.raises(KnowledgeError, match="changed meanwhile"):
        await store.edit(e["id"], {"title": "x" * 5}, "sup_chengdu", expect_version=1)
    with pytest.raises(KnowledgeError, match="only a draft"):
        await store.publish(e["id"], 1, "sup_chengdu")
    e = await store.publish(e["id"], 2, "sup_chengdu")
    full = await store.get(e["id"])
    assert [(v["version"], v["status"]) for v in full["versions"]] == [(1, "superseded"), (2, "published")]
    (hit,) = await store.search(query_tokens("欠薪"), today=TODAY)
    assert hit["version"] == 2 and hit["summary"].startswith("新的")

    # expired: kept, never suggested; it comes back only by publishing a new version
    e = await store.expire(e["id"], "sup_chengdu")
    assert e["status"] == "expired" and e["published"] is None
    assert await store.search(query_tokens("欠薪"), today=TODAY) == []
    assert await store.suggest(categories=["labour_wages"], words=[], today=TODAY) == []
    with pytest.raises(KnowledgeError):
        await store.expire(e["id"], "sup_chengdu")
    e = await store.edit(e["id"], {}, "sup_chengdu")
    assert e["status"] == "draft" and e["latest_version"] == 3
    await store.publish(e["id"], 3, "sup_chengdu")
    assert len(await store.search(query_tokens("欠薪"), today=TODAY)) == 1


async def test_effective_dates_and_lapsed_expiry(kb):
    store, _ = kb
    old = await store.create(slug="old_rule", category="labour_wages", by="s",
                             fields=fields(title="旧规定下的欠薪", effective_from="2010-01-01", effective_to="2020-05-01"))
    future = await store.create(slug="future_rule", category="labour_wages", by="s",
                                fields=fields(title="将来施行的欠薪规定", effective_from="2030-01-01"))
    for e in (old, future):
        await store.publish(e["id"], 1, "s")
    assert await store.search(query_tokens("欠薪"), today=TODAY) == []     # neither in force today
    assert [x["slug"] for x in await store.search(query_tokens("欠薪"), today=date(2031, 1, 1))] == ["future_rule"]
    assert await store.expire_lapsed(TODAY) == [old["id"]]
    assert (await store.get(old["id"]))["status"] == "expired"
    assert (await store.get(future["id"]))["status"] == "published"


async def test_chinese_search_ranking_and_suggestions(kb):
    store, _ = kb
    dv = await store.create(slug="dv", category="marriage_family", by="s", fields=fields(
        title="遭受家庭暴力可以申请人身安全保护令", question="丈夫经常打我，我能怎么办？",
        answer="可以向人民法院申请人身安全保护令，也可以报警，公安机关可以出具告诫书。",
        summary="遭受家暴可报警，可向法院申请人身安全保护令。",
        laws=[{"law": "反家庭暴力法", "article": "第二十三条"}], keywords=["家暴", "打人"]))
    divorce = await store.create(slug="divorce", category="marriage_family", by="s", fields=fields(
        title="协议离婚的冷静期", question="我们想离婚，去民政局要多久？",
        answer="自婚姻登记机关收到离婚登记申请之日起三十日内，任何一方不愿意离婚的，可以撤回申请。",
        summary="协议离婚有三十日冷静期。", laws=[{"law": "民法典", "article": "第一千零七十七条"}], keywords=["离婚"]))
    wages = await store.create(slug="wages", category="labour_wages", by="s", fields=fields())
    for e in (dv, divorce, wages):
        await store.publish(e["id"], 1, "s")

    assert [x["slug"] for x in await store.search(query_tokens("保护令"), today=TODAY)] == ["dv"]
    # every word must be there; a query by a long word finds its parts ("人身安全保护令")
    assert [x["slug"] for x in await store.search(query_tokens("申请人身安全保护令"), today=TODAY)] == ["dv"]
    assert await store.search(query_tokens("保护令 工资"), today=TODAY) == []
    # the law's name and article are indexed too
    assert [x["slug"] for x in await store.search(query_tokens("民法典"), today=TODAY)] == ["divorce"]

    # a call: words of the live transcript first (most words matched first), then the category's entries
    words = query_tokens("他又打我了，我想离婚，还想要人身安全保护令")
    got = await store.suggest(categories=["labour_wages"], words=words, today=TODAY)
    assert [x["slug"] for x in got][:2] == ["dv", "divorce"] and got[0]["why"] == "words"
    assert {"人身", "安全"} <= set(got[0]["matched"]) and got[1]["matched"] == ["离婚"]
    assert got[-1]["slug"] == "wages" and got[-1]["why"] == "category"
    only_cat = await store.suggest(categories=["marriage_family"], words=[], today=TODAY)
    assert {x["slug"] for x in only_cat} == {"dv", "divorce"}

    # the transcripts' search never returns knowledge entries (its results are calls)
    assert await TranscriptStore(store_db(store)).search(query_tokens("保护令")) == []


def store_db(store: KnowledgeStore):
    class _Db:
        session, dialect = store.session, store.dialect
    return _Db()


async def test_uses_outbox_opt_out_and_report(kb):
    store, db = kb
    from store.models import OptOut
    from store.engine import utcnow
    from store.tickets import TicketStore
    e = await store.create(slug="wages", category="labour_wages", fields=fields(), by="s")
    await store.publish(e["id"], 1, "s")
    tickets = TicketStore(db)
    from core.calls import CallState
    await tickets.ensure_for_call(CallState(call_id="c1", city="leshan", caller_number="13922220001", language="zh",
                                            agent="agent1001"), "call", 72)
    ticket = await tickets.for_call("c1")
    assert await store.attach(entry_id=e["id"], version=1, ticket=ticket, by="agent1001") is True
    assert await store.attach(entry_id=e["id"], version=1, ticket=ticket, by="agent1001") is False
    msg = await store.text_summary(entry_id=e["id"], version=1, ticket=ticket, to_number="13922220001",
                                   language="zh", body="【12348】欠薪可投诉", by="agent1001")
    assert (msg["kind"], msg["to_number"], msg["status"], msg["related"]) == (
        "kb_summary", "13922220001", "pending", f"ticket:{ticket['id']}")
    # the same row as every other text (store/sms.py text_row): on the ticket, claimed by the SMS sender
    assert msg["updated_at"] is not None and (msg["channel"], msg["attempts"], msg["worker"]) == ("sms", 0, "")
    sms = SmsStore(db)
    assert [m["id"] for m in await sms.for_ticket(ticket["id"])] == [msg["id"]]
    assert [m["id"] for m in await sms.claim("test-worker", 60)] == [msg["id"]]
    with pytest.raises(KnowledgeError, match="already"):
        await store.text_summary(entry_id=e["id"], version=1, ticket=ticket, to_number="13922220001",
                                 language="zh", body="again", by="agent1001")
    async with db.session.begin() as s:
        s.add(OptOut(number="+8613922220002", source="test", created_at=utcnow()))
    other = {**ticket, "id": ticket["id"] + 1}
    with pytest.raises(OptedOut):      # kept in E.164, asked for as dialled
        await store.text_summary(entry_id=e["id"], version=1, ticket=other, to_number="13922220002",
                                 language="zh", body="x", by="agent1001")
    assert [u["action"] for u in await store.uses(ticket["id"])] == ["attach", "sms"]
    assert await store.uses(other["id"]) == []

    for q in ("宅基地纠纷", "宅基地纠纷", "网络诈骗"):
        await store.missed(query=q, category="", city="leshan", by="agent1001")
    r = await store.report()
    assert r["most_used"] == [{"id": e["id"], "title": "拖欠工资怎么办", "attached": 1, "texted": 1, "total": 2}]
    assert [(m["query"], m["count"]) for m in r["unanswered"]] == [("宅基地纠纷", 2), ("网络诈骗", 1)]
    assert (await store.report(cities={"chengdu"}))["most_used"] == []


async def test_seed_file_loads_once_and_every_entry_is_found(kb):
    store, _ = kb
    cfg = load_config(ROOT)
    kf = load_knowledge(cfg.config_dir, set(cfg.tickets.categories))
    assert len(kf.entries) >= 30
    assert {e.category for e in kf.entries} == set(cfg.tickets.categories)    # every ticket category has one
    assert all(e.needs_lawyer_review for e in kf.entries)
    rows = [e.model_dump() for e in kf.entries]
    added, kept = await store.load_seed(rows, "hotline-seed")
    assert len(added) == len(rows) and kept == []
    added, kept = await store.load_seed(rows, "hotline-seed")
    assert added == [] and len(kept) == len(rows)
    for e in kf.entries:    # each entry is found by its own title
        found = await store.search(query_tokens(e.title), today=TODAY, limit=50)
        assert e.slug in [x["slug"] for x in found], e.title
