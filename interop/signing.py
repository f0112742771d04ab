"""Signed requests between 12348 and its partners, and from city nodes to the command center:
HMAC-SHA256 over a versioned string of the method, path, key id, timestamp, one-time nonce,
Idempotency-Key and the body's hash. A request is refused if the signature does not match, the
timestamp is more than WINDOW seconds off, or (checked by the receiver's store) the nonce was seen.
Pure functions: no clock, no I/O."""
from __future__ import annotations

import hashlib
import hmac
import secrets

KEY, TIMESTAMP, NONCE, SIGNATURE, IDEMPOTENCY = (
    "X-Hotline-Key", "X-Hotline-Timestamp", "X-Hotline-Nonce", "X-Hotline-Signature", "Idempotency-Key")
WINDOW = 300
# Version 2 (issue 16, finding 12) also signs the key id and the Idempotency-Key, so neither can be
# changed on the way. Version 1 is refused by name: both ends ship in this repository and no partner
# was promised it.
VERSION = "v2"
PREFIX = f"{VERSION}="


class SignatureError(ValueError):
    """Why a request was refused (said to the sender, written to the audit log)."""


def canonical(method: str, path: str, key_id: str, timestamp: str, nonce: str, idempotency_key: str,
              body: bytes) -> bytes:
    # surrogateescape: header bytes that were not UTF-8 are signed as they came, never a crash
    return "\n".join((f"HOTLINE-HMAC-SHA256-{VERSION.upper()}", method.upper(), path, key_id, timestamp, nonce,
                      idempotency_key, hashlib.sha256(body).hexdigest())).encode("utf-8", "surrogateescape")


def signature(secret: str, method: str, path: str, key_id: str, timestamp: str, nonce: str, idempotency_key: str,
              body: bytes) -> str:
    mac = hmac.new(secret.encode(), canonical(method, path, key_id, timestamp, nonce, idempotency_key, body),
                   hashlib.sha256)
    return PREFIX + mac.hexdigest()


def sign(key_id: str, secret: str, method: str, path: str, body: bytes, now: float,
         idempotency_key: str = "", nonce: str | None = None) -> dict[str, str]:
    ts = str(int(now))
    nonce = nonce or secrets.token_hex(16)
    headers = {KEY: key_id, TIMESTAMP: ts, NONCE: nonce,
               SIGNATURE: signature(secret, method, path, key_id, ts, nonce, idempotency_key, body),
               "Content-Type": "application/json"}
    if idempotency_key:
        headers[IDEMPOTENCY] = idempotency_key
    return headers


def header_text(value: str) -> str:
    """A header value as text that can be stored and shown: bytes that were not UTF-8 (aiohttp keeps
    them as lone surrogates, which the database drivers cannot encode) become U+FFFD."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def verify(headers, method: str, path: str, body: bytes, keys: dict[str, str], now: float) -> tuple[str, str]:
    """(key id, nonce) of a correctly signed, fresh request; SignatureError otherwise."""
    key_id, ts, nonce, sig = (headers.get(h, "") for h in (KEY, TIMESTAMP, NONCE, SIGNATURE))
    if not (key_id and ts and nonce and sig):
        raise SignatureError(f"unsigned request: {KEY}, {TIMESTAMP}, {NONCE} and {SIGNATURE} are required")
    secret = keys.get(key_id)
    if secret is None:
        raise SignatureError(f"unknown key {key_id[:40]!r}")
    if not (8 <= len(nonce) <= 64) or not (nonce.isascii() and nonce.isalnum()):
        raise SignatureError("nonce must be 8 to 64 letters or digits")
    try:
        when = int(ts)
    except ValueError:
        raise SignatureError("timestamp must be whole seconds since 1970") from None
    if abs(now - when) > WINDOW:
        raise SignatureError(f"timestamp {ts} is more than {WINDOW} s from our clock")
    if not sig.startswith(PREFIX):
        raise SignatureError(f"signature version {VERSION} is required ({SIGNATURE}: {PREFIX}<hex>, which also "
                             f"signs the key id and the Idempotency-Key; see /api/interop/openapi.json)")
    expected = signature(secret, method, path, key_id, ts, nonce, headers.get(IDEMPOTENCY, ""), body)
    # compare_digest raises TypeError on non-ASCII str (was a 500): such a signature cannot match anyway
    if not (sig.isascii() and hmac.compare_digest(sig, expected)):
        raise SignatureError("signature does not match (tampered body or headers, or wrong key)")
    return key_id, nonce
