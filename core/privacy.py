"""Caller numbers past their retention period (PIPL): replaced by a keyed hash, a pseudonym.

The pseudonym is HMAC-SHA256 of the number's E.164 form (core/numbering.py ``to_e164``) under a key
kept in the secrets file, never in the database: there are only some 10^11 Chinese numbers, so an
unkeyed hash would be reversed by trying them all. The same number always gives the same pseudonym,
which is how an old (hashed) row and a new (clear) row of one caller still count together.
Written ``h:`` + 30 hex digits (120 bits, the 32 characters of a number column): never a digit
string, so the numbering plan refuses it and nothing dials it. Pure; store/privacy.py applies it.
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from core.numbering import caller_forms, to_e164

PREFIX = "h:"
HEX_DIGITS = 30


def is_pseudonym(value: str | None) -> bool:
    return (value or "").startswith(PREFIX)


def pseudonym(key: str, number: str | None) -> str:
    """The keyed hash of a caller number ('' for an empty, withheld or non-numeric one: nothing to
    keep). A value that already is a pseudonym stays as it is."""
    if is_pseudonym(number):
        return number or ""
    if not key:
        raise ValueError("no privacy key: numbers are never hashed without one (an unkeyed hash is reversible)")
    n = to_e164(number)
    if not n:
        return ""
    return PREFIX + hmac.new(key.encode(), n.encode(), hashlib.sha256).hexdigest()[:HEX_DIGITS]


def clear_forms(number: str | None) -> set[str]:
    """The forms one number may be stored in: every form that reads as the same caller
    (core.numbering ``caller_forms``) and the number as typed: what an export looks for."""
    forms = set(caller_forms(number))
    return forms | {(number or "").strip()} if forms else set()


def cutoff(now: datetime, retention_days: int) -> datetime:
    """Rows settled before this instant lose their clear number."""
    return now - timedelta(days=retention_days)
