"""Callback requests kept in Asterisk's astdb (hlcb/<id>/…, written by the dialplan of
confgen/callbacks.py), read from the file on the host: the controller has no AMI 'system' right."""
from __future__ import annotations

import sqlite3

from core.paths import InstancePaths


def callback_requests(paths: InstancePaths) -> dict[str, dict[str, str]]:
    """Every callback request Asterisk holds: id -> its fields (queue, number, position, attempt, …)."""
    db = paths.host(paths.lib / "astdb.sqlite3")
    if not db.is_file():
        return {}
    try:
        # read-only: Asterisk owns the file; a busy timeout covers its short write locks
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            rows = conn.execute("SELECT key, value FROM astdb WHERE key LIKE '/hlcb/%'").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return {}
    out: dict[str, dict[str, str]] = {}
    for key, value in rows:
        parts = key.split("/")          # "", "hlcb", id, field
        if len(parts) == 4 and parts[2]:
            out.setdefault(parts[2], {})[parts[3]] = value
    return out
