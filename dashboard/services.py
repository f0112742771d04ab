"""What the HTTP API needs from the rest of the controller, handed in by the composition root
(hotline/compose.py) and put on the app under ``SERVICES``. Handlers never see the Controller."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry

from agents.desk import CallControl
from agents.service import AgentService
from backoffice.appointments import Centers
from callcenter.tracker import CallTracker
from callcenter.wallboard import Wallboard
from core.config import HotlineConfig, LegalAidRules, Partner, TicketRules
from core.knowledge import KnowledgeFile
from core.paths import InstancePaths
from store.alerts import AlertStore
from store.appointments import AppointmentStore
from store.auth import AuditLog, AuthStore
from store.callbacks import CallbackStore
from store.calls import CallStore
from store.complaints import ComplaintStore
from store.engine import Database
from store.followups import FollowUpStore
from store.interop import FederationStore, InteropStore
from store.knowledge import KnowledgeStore
from store.privacy import PrivacyStore
from store.tickets import TicketStore
from store.transcripts import TranscriptStore
from transcription.keywords import KeywordRules

Listener = Callable[[dict], None]


@dataclass(frozen=True)
class LiveEvents:
    """The controller's event fan-out: lists the live hub subscribes to, and ``broadcast`` to send a
    message (alert acknowledged, a city node's report) to every transcription/alert listener."""
    calls: list[Listener]           # call snapshots
    agents: list[Listener]          # agent views
    tickets: list[Listener]         # escalations
    transcription: list[Listener]   # live text, alerts, federation news
    broadcast: Listener


@dataclass(frozen=True)
class ApiServices:
    cfg: HotlineConfig
    service_token: str
    # stores: one per aggregate, on one database
    db: Database
    call_records: CallStore
    callback_tasks: CallbackStore
    auth_store: AuthStore
    audit_log: AuditLog
    alerts: AlertStore
    tickets: TicketStore
    appointments: AppointmentStore
    followups: FollowUpStore
    complaints: ComplaintStore
    transcripts: TranscriptStore
    interop: InteropStore
    federation: FederationStore
    privacy: PrivacyStore              # pseudonyms of caller numbers, retention, one person's export
    # rules and reference data
    ticket_rules: TicketRules
    keyword_rules: KeywordRules
    legal_aid_rules: LegalAidRules
    centers: Centers
    partners: dict[str, Partner]       # partner id -> its config
    partner_keys: dict[str, str]       # partner id -> shared secret (signed requests)
    federation_keys: Callable[[], dict[str, str]]   # node -> shared secret, re-read when trusted anew
    paths: InstancePaths               # where recordings are on the host
    # the live view, call control, agents
    tracker: CallTracker
    agents: AgentService
    desk: CallControl
    wallboard: Wallboard
    status: Callable[[], dict]         # controller, Asterisk, queues, calls, agents
    health: Callable[[], dict]         # {"ami_connected": bool, "resynced": bool}
    index_document: Callable[..., Awaitable[None]]   # text into the search index (never raises)
    events: LiveEvents
    metrics: CollectorRegistry
    knowledge: KnowledgeStore          # the legal knowledge base (法律知识库)
    knowledge_rules: KnowledgeFile     # its IVR service -> categories map and SMS text (config/knowledge.yaml)
    # agent id -> SIP password, for agents whose phone is the desk's browser phone (phones.browser)
    phone_passwords: dict[str, str] = field(default_factory=dict)
    nodes: Callable[[], list[dict]] = lambda: []    # the cluster's nodes and their health (callcenter/cluster.py)

    @cached_property
    def agent_cities(self) -> dict[str, frozenset[str]]:
        return self.cfg.agent_cities()

    @cached_property
    def city_ids(self) -> set[str]:
        return {c.id for c in self.cfg.cities}


SERVICES = web.AppKey("services", ApiServices)
