"""Partners as configuration (config/partners.yaml), checked with precise errors; field mapping and
data minimisation are pure functions."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from core.config import ConfigError, Strict, _read_yaml, _validate

# the fields of a handoff we can send; which of them a partner gets is its mapping
HANDOFF_FIELDS = ("handoff_id", "ticket_id", "city", "category", "summary", "language", "caller_number",
                  "caller_name", "created_at")
PERSONAL = ("caller_number", "caller_name")   # leave 12348 only with the caller's consent


class SipTrunk(Strict):
    uris: dict[str, str]                       # city id or "default" -> sip:number@host:port
    ticket_header: str = Field("X-12348-Ticket-Id", pattern=r"^X-[A-Za-z0-9-]+$")

    @field_validator("uris")
    @classmethod
    def sip_uris(cls, v: dict[str, str]) -> dict[str, str]:
        import re
        for city, uri in v.items():
            if not re.fullmatch(r"sips?:[^@\s]+@[A-Za-z0-9.\-\[\]:]+", uri):
                raise ValueError(f"sip.uris.{city}: expected sip:user@host[:port], got {uri!r}")
        return v


class Partner(Strict):
    name: dict[str, str]
    endpoints: dict[str, str]                  # city id or "default" -> base URL
    fields: dict[str, str]
    sip: SipTrunk | None = None

    @field_validator("endpoints")
    @classmethod
    def urls(cls, v: dict[str, str]) -> dict[str, str]:
        for city, url in v.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"endpoints.{city}: expected an http(s) URL, got {url!r}")
        return v

    @field_validator("fields")
    @classmethod
    def known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = set(v) - set(HANDOFF_FIELDS)
        if unknown:
            raise ValueError(f"fields: unknown {sorted(unknown)}; we can send {', '.join(HANDOFF_FIELDS)}")
        if "handoff_id" not in v:
            raise ValueError("fields: handoff_id must be mapped (it is how status updates find the handoff)")
        return v

    def endpoint(self, city: str) -> str | None:
        return self.endpoints.get(city) or self.endpoints.get("default")


class PartnersFile(Strict):
    version: int
    partners: dict[str, Partner] = {}


def load_partners(root: Path, cities: set[str], endpoints: dict[str, dict[str, str]] | None = None,
                  sip: dict[str, dict[str, str]] | None = None) -> dict[str, Partner]:
    """Partners from config/partners.yaml; ``endpoints`` and ``sip`` (hotline.yaml interop.*) give
    this deployment's addresses."""
    path = root / "config" / "partners.yaml"
    if not path.exists():
        return {}
    raw = _read_yaml(path)
    for pid, urls in (endpoints or {}).items():
        if pid not in (raw.get("partners") or {}):
            raise ConfigError(f"config/hotline.yaml: interop.endpoints.{pid}: no such partner in {path}")
        raw["partners"][pid]["endpoints"] = {**raw["partners"][pid].get("endpoints", {}), **urls}
    for pid, uris in (sip or {}).items():
        if pid not in (raw.get("partners") or {}) or not raw["partners"][pid].get("sip"):
            raise ConfigError(f"config/hotline.yaml: interop.sip.{pid}: no partner with a SIP trunk {pid!r} in {path}")
        raw["partners"][pid]["sip"]["uris"] = {**raw["partners"][pid]["sip"].get("uris", {}), **uris}
    data = _validate(PartnersFile, raw, path)
    for pid, p in data.partners.items():
        for where, keys in (("endpoints", p.endpoints), ("sip.uris", p.sip.uris if p.sip else {})):
            for city in keys:
                if city != "default" and city not in cities:
                    raise ConfigError(f"{path}: partners.{pid}.{where}: unknown city {city!r}")
    return data.partners


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


def partners_of(cfg) -> dict[str, Partner]:
    """This deployment's partners (config/partners.yaml with hotline.yaml's addresses)."""
    i = cfg.system.interop
    return load_partners(cfg.root, {c.id for c in cfg.cities}, i.endpoints, i.sip)
