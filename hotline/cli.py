"""`hotline` command line: one module per group of commands, each registering its own subcommands."""
from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version

from callcenter.asterisk.runtime import AsteriskRuntimeError
from core.config import ConfigError
from hotline import admin, backup, daemons, logs, models, ops, phones, privacy, reports, services
from hotline.common import console
from hotline import centers
from hotline import knowledge
from hotline.phones import UnknownAccount
from rich.markup import escape


def _version() -> str:
    try:
        return version("hotline12348")
    except PackageNotFoundError:   # run from a checkout that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hotline", description="12348 public legal service hotline platform")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    logs.add_arguments(p)
    p.add_argument("--root", help="project root holding config/ and ivr_flows/ (default: this checkout)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override config/hotline.yaml, e.g. --set asterisk.sip_port=5070")
    p.add_argument("--config-dir", metavar="DIR",
                   help="directory holding hotline.yaml and the other config files (default: $HOTLINE_CONFIG_DIR, "
                        "else /etc/hotline if it holds hotline.yaml, else the checkout's config/)")
    sub = p.add_subparsers(dest="command", required=True)
    for group in (ops, daemons, phones, admin, reports, privacy, models, backup, services):
        group.register(sub)
    centers.register(sub)
    knowledge.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args)
    try:
        return args.func(args)
    except ConfigError as e:
        console.print(f"[red]configuration error[/red]\n{e}", highlight=False)
        return 2
    except UnknownAccount as e:
        console.print(f"[red]{e}[/red]", highlight=False)
        return 2
    except AsteriskRuntimeError as e:
        # escaped: the message may quote config text in [brackets], which rich would take for markup
        console.print(f"[red]Asterisk: {escape(str(e))}[/red]", highlight=False)
        return 1


if __name__ == "__main__":
    sys.exit(main())
