"""Logging for every command and daemon: one setup, from the global options (or their environment
variables, which systemd units and `hotline up` pass on).

* level: ``--log-level`` / HOTLINE_LOG_LEVEL (default INFO);
* format: ``--log-format text|json|auto`` / HOTLINE_LOG_FORMAT; auto (the default) is JSON when stderr
  goes to the journal (systemd sets JOURNAL_STREAM) and readable text otherwise;
* destination: stderr, or ``--log-file`` / HOTLINE_LOG_FILE, rotated by size (``--log-max-bytes``,
  ``--log-backups``) so that a daemon started by `hotline up` never fills the disk.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys

from pythonjsonlogger.json import JsonFormatter

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("auto", "text", "json")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_BYTES, BACKUPS = 10 * 1024 * 1024, 5


def add_arguments(p) -> None:
    env = os.environ.get
    p.add_argument("--log-level", type=str.upper, choices=LEVELS, default=env("HOTLINE_LOG_LEVEL", "INFO").upper(),
                   help="least severe message logged (default INFO; env HOTLINE_LOG_LEVEL)")
    p.add_argument("--log-format", choices=FORMATS, default=env("HOTLINE_LOG_FORMAT", "auto"),
                   help="json: one JSON object per line; auto: json under systemd, text otherwise "
                        "(env HOTLINE_LOG_FORMAT)")
    p.add_argument("--log-file", default=env("HOTLINE_LOG_FILE") or None,
                   help="log to this file, rotated by size, instead of stderr (env HOTLINE_LOG_FILE)")
    p.add_argument("--log-max-bytes", type=int, default=int(env("HOTLINE_LOG_MAX_BYTES", MAX_BYTES)),
                   help=f"rotate the log file at this size (default {MAX_BYTES})")
    p.add_argument("--log-backups", type=int, default=int(env("HOTLINE_LOG_BACKUPS", BACKUPS)),
                   help=f"rotated files kept (default {BACKUPS})")


def as_argv(args) -> list[str]:
    """The logging options again, for a daemon started by `hotline up` (which logs to its own file)."""
    return ["--log-level", args.log_level, "--log-format", args.log_format,
            "--log-max-bytes", str(args.log_max_bytes), "--log-backups", str(args.log_backups)]


def json_wanted(fmt: str) -> bool:
    return fmt == "json" or (fmt == "auto" and bool(os.environ.get("JOURNAL_STREAM")))


def setup(args) -> logging.Handler:
    """Configure the root logger from the parsed global options; returns the handler it installed."""
    # argparse checks the options' values, not defaults taken from the environment
    if args.log_level not in LEVELS or args.log_format not in FORMATS:
        raise SystemExit(f"hotline: log level {args.log_level!r} or format {args.log_format!r} unknown "
                         f"(HOTLINE_LOG_LEVEL: {', '.join(LEVELS)}; HOTLINE_LOG_FORMAT: {', '.join(FORMATS)})")
    if args.log_file:
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            args.log_file, maxBytes=args.log_max_bytes, backupCount=args.log_backups, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    if json_wanted(args.log_format):
        # the record's standard fields renamed to what log shippers expect; extras are kept as keys
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                                           datefmt="%Y-%m-%dT%H:%M:%S%z", json_ensure_ascii=False))
    else:
        handler.setFormatter(logging.Formatter(TEXT))
    root = logging.getLogger()
    # replace only our own earlier handler: main() may run twice in one process (tests), next to pytest's
    for old in [h for h in root.handlers if getattr(h, "hotline", False)]:
        root.removeHandler(old)
        old.close()
    handler.hotline = True
    root.addHandler(handler)
    root.setLevel(args.log_level)
    # Alembic narrates every migration step at INFO: only worth reading when debugging
    logging.getLogger("alembic").setLevel(args.log_level if args.log_level == "DEBUG" else "WARNING")
    return handler
