"""Signed requests between 12348 and its partners: HMAC-SHA256 over the method, path, timestamp,
a one-time nonce and the body's hash. A request is refused if the signature does not match, the
timestamp is more than WINDOW seconds off, or (checked by the receiver's store) the nonce was seen.
Pure functions: no clock, no I/O."""
from __future__ import annotations

import hashlib
import hmac
import secrets

KEY, TIMESTAMP, NONCE, SIGNATURE, IDEMPOTENCY = (
    "X-Hotline-Key", "X-Hotline-Timestamp", "X-Hotline-Nonce", "X-Hotline-Signature", "Idempotency-Key")
WINDOW = 300


class SignatureError(ValueError):
    """Why a request was refused (said to the sender, written to the audit log)."""


def canonical(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return "\n".join((method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest())).encode()


def signature(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    return hmac.new(secret.encode(), canonical(method, path, timestamp, nonce, body), hashlib.sha256).hexdigest()


def sign(key_id: str, secret: str, method: str, path: str, body: bytes, now: float,
         idempotency_key: str = "", nonce: str | None = None) -> dict[str, str]:
    ts = str(int(now))
    nonce = nonce or secrets.token_hex(16)
    headers = {KEY: key_id, TIMESTAMP: ts, NONCE: nonce, SIGNATURE: signature(secret, method, path, ts, nonce, body),
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
    # compare_digest raises TypeError on non-ASCII str (was a 500): such a signature cannot match anyway
    if not (sig.isascii() and hmac.compare_digest(sig, signature(secret, method, path, ts, nonce, body))):
        raise SignatureError("signature does not match (tampered body or wrong key)")
    return key_id, nonce
