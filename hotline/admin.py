"""Operator commands on config and data: prompts, config check/generate, migrations, desk
passwords and API tokens."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.table import Table


from hotline.common import _config, _overrides, console, out, with_auth


# ------------------------------------------------------------------ prompts, config, db
def cmd_prompts(args) -> int:
    from ivr_flows.prompts import TEXT_PLACEHOLDER, missing_recordings, progress, prompt_numbers

    cfg = _config(args)
    if args.action == "pins":
        return _prompt_pins(cfg, args)
    numbers = prompt_numbers(cfg)
    order = [l.code for l in cfg.ivr.languages]
    missing = sorted(missing_recordings(cfg), key=lambda m: (order.index(m.lang), numbers.get(m.prompt_id, 0)))
    per_lang = progress(cfg)
    if args.json:
        print(json.dumps({"progress": per_lang,
                          "missing": [{"lang": m.lang, "prompt": m.prompt_id, "number": numbers.get(m.prompt_id),
                                       "text": m.text, "file": str(m.path)} for m in missing]},
                         ensure_ascii=False, indent=2))
    else:
        t = Table("language", "recorded", "synthesised", "placeholder", "total", "done", "text to translate",
                  title="prompts per language")
        for code, n in per_lang.items():
            done = (n["recorded"] + n["synthesised"]) / n["total"] if n["total"] else 1.0
            t.add_row(f"{n['name']} ({code})", str(n["recorded"]), str(n["synthesised"]),
                      f"[yellow]{n['placeholder']}[/]" if n["placeholder"] else "0", str(n["total"]),
                      f"{done:.0%}", str(n["untranslated"]) if n["untranslated"] else "")
        out.print(t)
        t = Table("language", "no.", "prompt", "record to", "text", title=f"{len(missing)} recordings missing")
        for m in missing:
            t.add_row(m.lang, str(numbers.get(m.prompt_id, "")), m.prompt_id, str(m.path.relative_to(cfg.root)),
                      ("[yellow](to translate)[/] " if m.text.startswith(TEXT_PLACEHOLDER) else "") + m.text)
        out.print(t)
        console.print(f"record by phone: dial {cfg.system.prompts.record_code} on a supervisor's phone, "
                      "or upload a WAV on the prompts page (/prompts); docs/prompts.md")
    return 1 if (missing and args.strict) else 0


def _prompt_pins(cfg, args) -> int:
    """Each supervisor's PIN for recording prompts from an outside phone (the secrets file's; handed to
    them in person). `hotline setup` installs their hashes for Asterisk."""
    from store.secrets import load_or_create

    pins = load_or_create(cfg).prompt_pins
    rows = [(s.id, s.name, pins.get(s.id, "")) for s in cfg.supervisors]
    if args.json:
        print(json.dumps([{"supervisor": i, "name": n, "pin": p} for i, n, p in rows], ensure_ascii=False, indent=2))
        return 0
    number = cfg.system.prompts.record_number
    t = Table("supervisor", "name", "PIN", title="PINs for recording prompts by phone"
              + (f" (dial {number})" if number else " (prompts.record_number is not set: phones of ours only)"))
    for row in rows:
        t.add_row(*row)
    out.print(t)
    return 0


def cmd_config(args) -> int:
    from hotline.config_check import check, generate_asterisk

    if args.action == "check":
        report = check(Path(args.root) if args.root else None, _overrides(args), args.config_dir)
        if args.json:
            print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        elif report.ok:
            s = report.summary
            console.print(f"[green]config OK[/green] ({report.config_dir}): {s['cities']} cities, {s['agents']} agents, "
                          f"{s['ivr_languages']} IVR languages, {s['ticket_categories']} ticket categories, "
                          f"{s['legal_aid_centers']} legal-aid centers, {s['keyword_topics']} keyword topics, "
                          f"partners {', '.join(s['partners']) or 'none'}; "
                          f"{len(s['asterisk_files'])} Asterisk files generated", highlight=False)
            for key, source in s["sources"].items():
                console.print(f"  {key}: from {source}", highlight=False)
            if "live_max_calls" in s:
                lm = s["live_max_calls"]
                console.print(f"  live transcription: up to {lm['calls']} calls at once ("
                              + (f"auto, from {lm['cores']:g} cores" if lm["setting"] == "auto" else "live.max_calls")
                              + ")", highlight=False)
        else:
            console.print(f"[red]configuration error[/red] ({len(report.problems)}) in {report.config_dir}",
                          highlight=False)
            for pr in report.problems:
                where = ": ".join(x for x in (pr.file, pr.field) if x)
                console.print(f"{where}: {pr.message}" if where else pr.message, highlight=False)
        return 0 if report.ok else 2
    files = generate_asterisk(_config(args), Path(args.out))
    console.print(f"wrote {len(files)} files to {args.out}")
    return 0


def cmd_db(args) -> int:
    from store.backup import schema_revision
    from store.engine import migrate, migrate_down

    cfg = _config(args)
    url = cfg.system.database.url
    if args.action == "upgrade":
        migrate(url, cfg.root, args.revision or "head")
    elif args.action == "downgrade":
        if not args.revision:
            console.print("[red]downgrade needs the revision to go back to, e.g. `hotline db downgrade 0011`[/red]")
            return 2
        migrate_down(url, cfg.root, args.revision)
    out.print(schema_revision(url, cfg.root) or "none")     # the revision the database is at now
    return 0


def cmd_passwd(args) -> int:
    import getpass

    cfg = _config(args)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"new password for {args.user}: ")
        if getpass.getpass("again: ") != password:
            console.print("[red]the two passwords differ[/red]")
            return 2
    try:
        with_auth(cfg, lambda auth: auth.set_password(args.user, password))
    except (KeyError, ValueError) as e:
        console.print(f"[red]{e.args[0]}[/red]")
        return 2
    console.print(f"password set for {args.user}; their earlier sessions and tokens are ended")
    return 0


def cmd_token(args) -> int:
    cfg = _config(args)
    try:
        token = with_auth(cfg, lambda auth: auth.issue_api_token(args.user, args.days, args.label))
    except KeyError as e:
        console.print(f"[red]{e.args[0]}[/red]")
        return 2
    print(token)   # bare on stdout, for scripts
    return 0


def cmd_sip_blocks(args) -> int:
    """The SIP addresses blocked after failed authentications (callcenter/sipguard.py); --unblock lifts
    one at once (an office whose misconfigured phone locked its colleagues out), audited."""
    import asyncio
    import time
    from datetime import datetime

    from callcenter.asterisk.acl import SipBlocklist, blocklist_path
    from core.paths import InstancePaths
    from store.auth import AuditLog
    from store.engine import Database, migrate

    cfg = _config(args)
    a = cfg.system.asterisk
    paths = InstancePaths(cfg.resolve(a.rootfs), a.instance)
    blocklist = SipBlocklist(paths.host(blocklist_path(paths)))
    blocklist.ensure()
    if not args.unblock:
        t = Table("network", "blocked until", title="blocked SIP addresses")
        for net, until in sorted(blocklist.blocked().items()):
            t.add_row(net, datetime.fromtimestamp(until).isoformat(timespec="seconds"))
        out.print(t)
        return 0
    try:
        lifted = blocklist.unblock(args.unblock)
    except ValueError:
        console.print(f"[red]{args.unblock!r} is not an IP address or network[/red]")
        return 2
    if not lifted:
        console.print(f"{args.unblock} is not blocked")
        return 1
    migrate(cfg.system.database.url, cfg.root)

    async def audit():
        db = Database(cfg.system.database.url, cfg.root)
        try:
            await AuditLog(db).audit("operator", "", "sip_unblocked", target=args.unblock,
                                     detail=f"lifted by `hotline sip-blocks --unblock` at {time.time():.0f}")
        finally:
            await db.close()
    asyncio.run(audit())
    console.print(f"{args.unblock} let in again")
    return 0


def register(sub) -> None:
    s = sub.add_parser("prompts", help="IVR prompts")
    s.add_argument("action", choices=["check", "pins"],
                   help="check: progress per language and what is missing; pins: supervisors' PINs for recording by phone")
    s.add_argument("--json", action="store_true")
    s.add_argument("--strict", action="store_true", help="exit 1 if any recording is missing")
    s.set_defaults(func=cmd_prompts)
    s = sub.add_parser("config", help="validate config or write the generated Asterisk files")
    s.add_argument("action", choices=["check", "generate"])
    s.add_argument("--out", default="build/asterisk")
    s.add_argument("--json", action="store_true", help="check: the report as JSON on stdout")
    s.set_defaults(func=cmd_config)
    s = sub.add_parser("db", help="database migrations: upgrade [REV], downgrade REV (a rollback), current")
    s.add_argument("action", choices=["upgrade", "downgrade", "current"])
    s.add_argument("revision", nargs="?", help="an Alembic revision (0011, head); upgrade: default head")
    s.set_defaults(func=cmd_db)
    s = sub.add_parser("passwd", help="set a desk user's password (agents and supervisors in config/agents.yaml)")
    s.add_argument("user")
    s.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    s.set_defaults(func=cmd_passwd)
    s = sub.add_parser("token", help="issue an API token (Authorization: Bearer) for a desk user")
    s.add_argument("user")
    s.add_argument("--days", type=float, default=90)
    s.add_argument("--label", default="")
    s.set_defaults(func=cmd_token)
    s = sub.add_parser("sip-blocks", help="SIP addresses blocked after failed logins; --unblock lifts one")
    s.add_argument("--unblock", metavar="ADDRESS", help="e.g. 192.0.2.7/32 (IPv6: the /64)")
    s.set_defaults(func=cmd_sip_blocks)
