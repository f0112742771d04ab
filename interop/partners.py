"""What a partner hotline receives: field mapping and data minimisation, pure functions over the
partners of config/partners.yaml (loaded and checked by core/config; on the config as ``cfg.partners``)."""
from __future__ import annotations

from core.config import PERSONAL, Partner


def handoff_payload(partner: Partner, facts: dict, consent: bool) -> dict:
    """What the partner receives: only its mapped fields, under its names; the caller's number and
    name only with consent (else they are not sent at all)."""
    out = {}
    for ours, theirs in partner.fields.items():
        if ours in PERSONAL and not consent:
            continue
        value = facts.get(ours)
        if value not in (None, ""):
            out[theirs] = value
    return out
