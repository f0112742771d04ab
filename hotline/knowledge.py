"""`hotline kb`: load the knowledge base's seed file, expire entries past their end date, and the
report of the entries used most and the questions that found none (the same figures as
GET /api/knowledge/report)."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from rich.table import Table

from hotline.common import _config, console, out

WHO = "hotline-cli"


def _run(args, work):
    from store.auth import AuditLog
    from store.engine import Database, migrate
    from store.knowledge import KnowledgeStore
    from transcription.segment import index_text

    cfg = _config(args)
    migrate(cfg.system.database.url, cfg.root)

    async def go():
        db = Database(cfg.system.database.url, cfg.root)
        try:
            return await work(cfg, KnowledgeStore(db, index_text), AuditLog(db))
        finally:
            await db.close()
    return asyncio.run(go())


def cmd_load(args) -> int:
    from store.engine import migrate

    cfg = _config(args)
    migrate(cfg.system.database.url, cfg.root)
    added, kept = seed(cfg)
    console.print(f"knowledge base / 法律知识库: {len(added)} entries added and published, {len(kept)} already there "
                  f"(kept as supervisors left them). Every seed entry needs a lawyer's review / 均需律师审核.")
    return 0


def seed(cfg) -> tuple[list[str], list[str]]:
    """The seed file's entries not in the base yet, created and published (`hotline kb load`, `hotline
    setup`); returns (added, kept) slugs."""
    from core.ivr import SERVICES
    from core.knowledge import load_knowledge
    from store.auth import AuditLog
    from store.engine import Database
    from store.knowledge import KnowledgeStore
    from transcription.segment import index_text

    kf = load_knowledge(cfg.config_dir, set(cfg.tickets.categories), set(SERVICES))

    async def go():
        db = Database(cfg.system.database.url, cfg.root)
        try:
            added, kept = await KnowledgeStore(db, index_text).load_seed([e.model_dump() for e in kf.entries], WHO)
            for slug in added:
                await AuditLog(db).audit(WHO, "command", "kb_seed", target=slug, detail="created and published v1")
            return added, kept
        finally:
            await db.close()
    return asyncio.run(go())


def cmd_expire(args) -> int:
    async def work(cfg, kb, audit):
        today = datetime.now(ZoneInfo(cfg.routing.timezone)).date()
        done = await kb.expire_lapsed(today)
        for entry_id in done:
            await audit.audit(WHO, "command", "kb_expire", target=f"kb:{entry_id}", detail="end date reached")
        return done
    done = _run(args, work)
    console.print(f"{len(done)} entries expired (end date reached)")
    return 0


def cmd_report(args) -> int:
    async def work(cfg, kb, audit):
        return await kb.report(since=datetime.now(timezone.utc) - timedelta(days=args.days), limit=args.limit)
    r = _run(args, work)
    if args.json:
        out.print_json(json.dumps({"days": args.days, **r}, ensure_ascii=False))
        return 0
    t = Table(title=f"最常用的条目 / entries used most (last {args.days} days)")
    for col in ("id", "title", "attached", "texted", "total"):
        t.add_column(col)
    for x in r["most_used"]:
        t.add_row(str(x["id"]), x["title"], str(x["attached"]), str(x["texted"]), str(x["total"]))
    out.print(t)
    t = Table(title="未找到答案的问题 / questions that found no entry")
    for col in ("query", "count", "last"):
        t.add_column(col)
    for x in r["unanswered"]:
        t.add_row(x["query"], str(x["count"]), x["last_at"] or "")
    out.print(t)
    return 0


def register(sub) -> None:
    kb = sub.add_parser("kb", help="the legal knowledge base (法律知识库): load the seed file, expire, report")
    ks = kb.add_subparsers(dest="kb_command", required=True)
    s = ks.add_parser("load", help="add the entries of config/knowledge.yaml that are not in the base yet (published)")
    s.set_defaults(func=cmd_load)
    s = ks.add_parser("expire", help="expire the published entries whose end date has come")
    s.set_defaults(func=cmd_expire)
    s = ks.add_parser("report", help="entries used most and questions that found no entry")
    s.add_argument("--days", type=int, default=30)
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_report)
