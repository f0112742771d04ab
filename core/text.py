"""Text that no database can store, wherever it comes from (HTTP users, partners, city nodes).

NUL is refused by PostgreSQL in any text value; an unpaired surrogate (JSON's "\\ud800", or bytes that
were not UTF-8 in a URL, which aiohttp keeps as surrogates) has no UTF-8 encoding, so neither driver can
send it. Either was a 500 wherever such a string reached a query or a row: notes, tickets, complaints,
search, every list filter, a partner's ticket. Refused at the edge instead (400)."""
from __future__ import annotations

import re

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(value, where: str = "body") -> str | None:
    """Where in ``value`` (a string, or a JSON-like document of dicts and lists) there is text no
    database can store, e.g. ``body.notes`` or ``query.caller``; None when there is none."""
    if isinstance(value, str):
        return where if UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = (unstorable(key, where) if isinstance(key, str) else None) or unstorable(item, f"{where}.{key}")
        if found:
            return found
    return None


def storable(text: str) -> str:
    """``text`` with what cannot be stored replaced by U+FFFD: for text we keep but did not write
    ourselves and must not refuse (a partner's error answer in the outbox)."""
    return UNSTORABLE.sub("\ufffd", text)
