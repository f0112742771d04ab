"""Generated credentials (AMI secret, agents' SIP passwords, Redis password, bus key), kept out of config and git."""
from __future__ import annotations

import json
import os
import secrets as pysecrets
from dataclasses import dataclass, field

from core.config import HotlineConfig


@dataclass(frozen=True)
class Secrets:
    ami_user: str
    ami_secret: str
    agent_passwords: dict[str, str]
    service_token: str = ""   # the local operator's API token (CLI, demo, tests); file access = operator
    partner_secrets: dict[str, str] = field(default_factory=dict)   # HMAC secrets shared with partners
    federation_secret: str = ""                                       # this node's, for the command center
    federation_keys: dict[str, str] = field(default_factory=dict)     # command center: trusted city nodes
    privacy_key: str = ""   # HMAC key of the callers' pseudonyms (core/privacy.py); never in the database
    redis_password: str = ""   # the install's Redis ACL user (store/bus.py `provision`), every daemon logs in with it
    bus_key: str = ""          # HMAC key of the messages the install's daemons publish to each other
    prompt_pins: dict[str, str] = field(default_factory=dict)   # supervisor -> PIN for recording prompts from outside
    smpp_password: str = ""    # the SMSC's password for our account (sms.system_id); given by the operator


def _new() -> str:
    return pysecrets.token_urlsafe(18)  # 144 bits


def load_or_create(cfg: HotlineConfig) -> Secrets:
    path = cfg.state_dir / "secrets.json"
    data: dict = {}
    if path.exists():
        data = json.loads(path.read_text())
    changed = False
    if not data.get("ami_secret"):
        data["ami_secret"], changed = _new(), True
    if not data.get("service_token"):
        data["service_token"], changed = pysecrets.token_urlsafe(32), True
    # shared HMAC secrets with partner systems (config/partners.yaml), handed to them out of band
    partner_secrets = data.setdefault("partner_secrets", {})
    for partner in cfg.partners:
        if partner not in partner_secrets:
            partner_secrets[partner], changed = pysecrets.token_urlsafe(32), True
    # this node's secret for signing reports to the command center; the command center's list of
    # the city nodes it trusts (hotline federation trust)
    if not data.get("federation_secret"):
        data["federation_secret"], changed = pysecrets.token_urlsafe(32), True
    data.setdefault("federation_keys", {})
    # losing it loses nothing stored, but a new key no longer matches old pseudonyms to their callers
    if not data.get("privacy_key"):
        data["privacy_key"], changed = pysecrets.token_urlsafe(32), True
    for name in ("redis_password", "bus_key"):
        if not data.get(name):
            data[name], changed = pysecrets.token_urlsafe(32), True
    # supervisors recording prompts from an outside phone (docs/prompts.md): 8 digits each
    pins = data.setdefault("prompt_pins", {})
    for sup in cfg.supervisors:
        if sup.id not in pins:
            pins[sup.id], changed = f"{pysecrets.randbelow(10 ** 8):08d}", True
    agents = data.setdefault("agent_passwords", {})
    for account in cfg.sip_accounts():
        if account not in agents:
            agents[account], changed = _new(), True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        tmp.replace(path)
    return Secrets(ami_user="hotline", ami_secret=data["ami_secret"], agent_passwords=dict(agents),
                   service_token=data["service_token"], partner_secrets=dict(partner_secrets),
                   federation_secret=data["federation_secret"], federation_keys=dict(data["federation_keys"]),
                   privacy_key=data["privacy_key"], redis_password=data["redis_password"],
                   bus_key=data["bus_key"], prompt_pins=dict(pins),
                   smpp_password=str(data.get("smpp_password", "")))


def trust_node(cfg: HotlineConfig, node: str, secret: str) -> None:
    """Command center: accept reports and events signed by this city node's secret."""
    load_or_create(cfg)
    path = cfg.state_dir / "secrets.json"
    data = json.loads(path.read_text())
    data.setdefault("federation_keys", {})[node] = secret
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    tmp.replace(path)
