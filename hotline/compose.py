"""Composition root: the controller and what the HTTP API gets from it, wired in one place.
The API never sees the Controller; it gets an ``ApiServices`` (dashboard/services.py)."""
from __future__ import annotations

from aiohttp import web

from backoffice.appointments import centers_of
from callcenter.controller import Controller
from core.config import HotlineConfig
from core.paths import InstancePaths
from dashboard.app import make_app
from dashboard.services import ApiServices, LiveEvents
from store.interop import FederationStore, InteropStore
from store.knowledge import KnowledgeStore
from store.secrets import Secrets, load_or_create
from core.ivr import SERVICES as IVR_SERVICES
from core.knowledge import load_knowledge
from transcription.segment import index_text


def controller(cfg: HotlineConfig, secrets: Secrets) -> Controller:
    return Controller(cfg, secrets)


def api_services(ctl: Controller, secrets: Secrets) -> ApiServices:
    cfg = ctl.cfg
    return ApiServices(
        cfg=cfg, service_token=secrets.service_token,
        db=ctl.db, call_records=ctl.call_records, callback_tasks=ctl.callback_tasks, auth_store=ctl.auth_store,
        audit_log=ctl.audit_log, alerts=ctl.alerts, tickets=ctl.tickets, appointments=ctl.appointments, followups=ctl.followups,
        complaints=ctl.complaints, transcripts=ctl.transcripts,
        interop=InteropStore(ctl.db, cfg.system.node.name), federation=FederationStore(ctl.db), privacy=ctl.privacy,
        ticket_rules=ctl.ticket_rules, keyword_rules=ctl.keyword_rules,
        legal_aid_rules=cfg.legal_aid, centers=centers_of(cfg), partners=dict(cfg.partners),
        partner_keys=dict(secrets.partner_secrets), federation_keys=federation_keys(cfg),
        paths=InstancePaths(cfg.resolve(cfg.system.asterisk.rootfs), cfg.system.asterisk.instance),
        tracker=ctl.tracker, agents=ctl.agents, desk=ctl.desk, wallboard=ctl.wallboard,
        status=ctl.status,
        health=lambda: {"ami_connected": ctl.ami.connected.is_set(), "resynced": ctl.resynced.is_set()},
        index_document=ctl.index_document,
        events=LiveEvents(calls=ctl.listeners, agents=ctl.agents.listeners, tickets=ctl.ticket_listeners,
                          transcription=ctl.transcription_listeners, broadcast=ctl.broadcast),
        metrics=ctl.metrics.registry,
        knowledge=KnowledgeStore(ctl.db, index_text),
        knowledge_rules=load_knowledge(cfg.config_dir, set(ctl.ticket_rules.categories),
                                       set(IVR_SERVICES)),
        phone_passwords={a: secrets.agent_passwords[a] for a in cfg.system.phones.browser if a in secrets.agent_passwords},
        nodes=ctl.nodes.view,
    )


def federation_keys(cfg: HotlineConfig):
    """Node -> secret. A node trusted with `hotline federation trust` is accepted without a restart:
    the secrets file is re-read only when it changed (a stat per request, not a read and parse)."""
    trusted: dict = {"mtime": None, "keys": {}}
    path = cfg.state_dir / "secrets.json"

    def keys() -> dict[str, str]:
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime is None or mtime != trusted["mtime"]:
            trusted["keys"], trusted["mtime"] = load_or_create(cfg).federation_keys, mtime
        return trusted["keys"]
    return keys


def api(ctl: Controller, secrets: Secrets) -> web.Application:
    return make_app(api_services(ctl, secrets))
