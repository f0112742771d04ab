"""Personal data (PIPL) from the command line, straight on the database (the controller need not run):
replace caller numbers past their retention period by their pseudonyms now, and export everything
held about one number. Both are audited; the operator is the one logged in on this machine."""
from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys

from hotline.common import _config, console


def _run(cfg, work):
    """``work(PrivacyStore)`` on this node's database, with the key from the secrets file."""
    from store.engine import Database, migrate
    from store.privacy import PrivacyStore
    from store.secrets import load_or_create

    key = load_or_create(cfg).privacy_key
    migrate(cfg.system.database.url, cfg.root)

    async def run():
        db = Database(cfg.system.database.url, cfg.root)
        try:
            return await work(PrivacyStore(db, key))
        finally:
            await db.close()
    return asyncio.run(run())


def _operator() -> str:
    return f"{getpass.getuser()}@cli"


def cmd_purge(args) -> int:
    cfg = _config(args)
    days = cfg.system.privacy.caller_number_retention_days
    counts = _run(cfg, lambda p: p.purge_older_than(days, _operator(), "command"))
    if args.json:
        print(json.dumps({"retention_days": days, "replaced": counts}))
    else:
        console.print(f"caller numbers older than {days} days replaced by their pseudonyms: "
                      + ", ".join(f"{k} {n}" for k, n in counts.items()))
    return 0


def cmd_export(args) -> int:
    from core.numbering import to_e164

    cfg = _config(args)
    reason = (args.reason or "").strip()
    if not reason:
        console.print("[red]say why: --reason (it is written to the audit log)[/red]")
        return 2
    if not to_e164(args.number):
        console.print(f"[red]{args.number!r} is not a phone number[/red]")
        return 2
    data = _run(cfg, lambda p: p.export(args.number, user_id=_operator(), role="command", reason=reason))
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if args.out:
        # the file holds one person's data: readable by the operator only
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        console.print(f"wrote {args.out}")
    else:
        sys.stdout.write(text + "\n")
    return 0


def register(sub) -> None:
    s = sub.add_parser("privacy", help="personal data: retention (PIPL) and one person's export")
    actions = s.add_subparsers(dest="action", required=True)
    p = actions.add_parser("purge", help="replace caller numbers past privacy.caller_number_retention_days "
                                         "by their keyed hash now (the controller also does it periodically)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_purge)
    p = actions.add_parser("export", help="everything held about one number, as JSON (audited)")
    p.add_argument("number")
    p.add_argument("--reason", required=True, help="why (the person's request and its reference); audited")
    p.add_argument("--out", help="write to this file (mode 600) instead of stdout")
    p.set_defaults(func=cmd_export)
