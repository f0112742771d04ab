"""Configuration as data: YAML under config/ and ivr_flows/, validated into typed models.

Errors name the file and the field (``config/cities.yaml: cities[3].area_code: ...``) so that an
operator can fix a typo without reading code.
"""
from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.ivr import IvrFlow

REPO_ROOT = Path(__file__).resolve().parent.parent
AreaCode = Annotated[str, Field(pattern=r"^0[1-9][0-9]{1,2}$")]
Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")]
PROVINCE = "province"


class ConfigError(Exception):
    """A configuration file is missing, unreadable or invalid. str() is operator-facing."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Names(Strict):
    zh: str
    en: str
    bo: str


class City(Strict):
    id: Ident
    area_code: AreaCode
    names: Names
    default: bool = False

    @property
    def did(self) -> str:
        return f"{self.area_code}12348"


class ProvincePool(Strict):
    id: Ident = PROVINCE
    names: Names


class CitiesFile(Strict):
    cities: list[City] = Field(min_length=1)
    province_pool: ProvincePool

    @model_validator(mode="after")
    def check(self) -> "CitiesFile":
        ids = [c.id for c in self.cities]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate city ids: {dup}")
        if self.province_pool.id in ids:
            raise ValueError(f"province_pool.id {self.province_pool.id!r} clashes with a city id")
        by_code: dict[str, list[City]] = {}
        for c in self.cities:
            by_code.setdefault(c.area_code, []).append(c)
        for code, group in by_code.items():
            defaults = [c.id for c in group if c.default]
            if len(group) > 1 and len(defaults) != 1:
                raise ValueError(
                    f"area code {code} is shared by {[c.id for c in group]}: exactly one needs "
                    f"'default: true' (the city used when the caller chooses nothing), found {defaults}")
            if len(group) > 9:
                raise ValueError(f"area code {code}: at most 9 cities can share a code (one DTMF digit each)")
        return self


class Agent(Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{2,31}$")]
    name: str
    queues: list[str] = Field(min_length=1)      # home cities and/or `province`
    languages: list[str] = Field(min_length=1)
    gender: Literal["f", "m"] | None = None      # domestic-violence callers prefer a female lawyer
    specialties: dict[str, Annotated[int, Field(ge=1, le=5)]] = Field(default_factory=dict)  # proficiency 1-5


class Interpreter(Strict):
    """Conferenced in when no agent speaks the caller's language: a SIP account of ours, or a phone
    number reached through the carrier trunk."""
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{2,31}$")]
    name: str
    languages: list[str] = Field(min_length=1)
    number: Annotated[str, Field(pattern=r"^\+?[0-9]{3,20}$")] | None = None


class Supervisor(Strict):
    """A city supervisor (coaches agents of their cities: listen, whisper, barge) or a command-center
    operator (all cities). Gets a desk login and a SIP account for listening in."""
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{2,31}$")]
    name: str
    role: Literal["supervisor", "command"]
    cities: list[str] = Field(default_factory=list)   # a supervisor's cities (`province` for the pool)

    @model_validator(mode="after")
    def scoped(self) -> "Supervisor":
        if self.role == "supervisor" and not self.cities:
            raise ValueError(f"supervisor {self.id} needs at least one city")
        return self


class Wallboard(Strict):
    """A wall display's login: sees the wallboard of its cities (none listed: every city) with numbers
    masked, and nothing else — no calls, recordings, transcripts or actions; no SIP account."""
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{2,31}$")]
    name: str
    cities: list[str] = Field(default_factory=list)


class AgentsFile(Strict):
    agents: list[Agent]
    interpreters: list[Interpreter] = Field(default_factory=list)
    supervisors: list[Supervisor] = Field(default_factory=list)
    wallboards: list[Wallboard] = Field(default_factory=list)

    @model_validator(mode="after")
    def unique(self) -> "AgentsFile":
        ids = [a.id for a in self.agents] + [i.id for i in self.interpreters] + [s.id for s in self.supervisors] \
            + [w.id for w in self.wallboards]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate agent ids: {dup}")
        return self


class Node(Strict):
    name: str
    province: str


class AsteriskSettings(Strict):
    rootfs: Path
    instance: Ident
    sip_bind: str = "127.0.0.1"
    sip_port: int = Field(5060, ge=1, le=65535)
    ami_port: int = Field(5038, ge=1, le=65535)
    rtp_start: int = Field(10000, ge=1024, le=65535)
    rtp_end: int = Field(10999, ge=1024, le=65535)

    @field_validator("sip_bind")
    @classmethod
    def ip(cls, v: str) -> str:
        ipaddress.ip_address(v)
        return v

    @model_validator(mode="after")
    def rtp_range(self) -> "AsteriskSettings":
        if self.rtp_end - self.rtp_start < 20:
            raise ValueError(f"rtp_end ({self.rtp_end}) must be at least rtp_start+20 ({self.rtp_start + 20})")
        return self


class Trunk(Strict):
    name: Ident
    match: list[str] = Field(min_length=1)
    codecs: list[str] = Field(min_length=1)
    # where outbound calls (callbacks) go: the carrier's SIP address; none = no callbacks
    outbound: Annotated[str, Field(pattern=r"^sip:[A-Za-z0-9.\-]+(:[0-9]{1,5})?$")] | None = None

    @field_validator("match")
    @classmethod
    def networks(cls, v: list[str]) -> list[str]:
        for net in v:
            ipaddress.ip_network(net, strict=False)
        return v

    @field_validator("codecs")
    @classmethod
    def codecs_known(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in ("alaw", "ulaw", "g722", "gsm", "opus")]
        if bad:
            raise ValueError(f"unsupported codecs {bad}")
        return v


class FollowUpSettings(Strict):
    """Follow-up visits (回访) after a ticket with follow_up is closed."""
    enabled: bool = True
    delay_minutes: float = Field(24 * 60, ge=0, le=30 * 24 * 60)   # after closing
    calling_hours: str = "09:00-20:00"                              # local time; never outside (quiet hours)
    attempts: int = Field(3, ge=1, le=10)
    retry_minutes: float = Field(120, ge=0.05, le=7 * 24 * 60)
    ring_seconds: int = Field(30, ge=5, le=120)
    survey_seconds: int = Field(120, ge=20, le=600)                 # an answered survey ends within this

    @field_validator("calling_hours")
    @classmethod
    def span(cls, v: str) -> str:
        from core.schedule import parse_span
        parse_span(v)
        return v


class ControllerSettings(Strict):
    http_host: str = "127.0.0.1"
    http_port: int = Field(8348, ge=1, le=65535)
    rota_interval_seconds: float = Field(30, ge=0.2, le=3600)   # rotas and scheduled callbacks
    rotas_enabled: bool = True
    session_idle_minutes: float = Field(30, gt=0, le=24 * 60)     # desk sessions end after this idle time
    session_max_hours: float = Field(12, gt=0, le=7 * 24)         # ... and after this long in any case
    hold_limit_seconds: int = Field(300, ge=10, le=3600)          # a held caller goes back to the queue after this
    follow_up: FollowUpSettings = FollowUpSettings()


class Database(Strict):
    url: str

    @field_validator("url")
    @classmethod
    def scheme(cls, v: str) -> str:
        if not v.startswith(("sqlite", "postgresql")):
            raise ValueError(f"database url must be sqlite:/// or postgresql+psycopg://, got {v!r}")
        return v


class RedisSettings(Strict):
    url: str | None = "redis://127.0.0.1:6379/0"
    prefix: str = "hotline"


class CallbackSettings(Strict):
    key: Annotated[str, Field(pattern=r"^[0-9]$")] = "5"   # pressed while waiting in a queue
    offer_every_seconds: int = Field(30, ge=10, le=600)   # how often the offer is announced
    attempts: int = Field(3, ge=1, le=10)
    retry_seconds: int = Field(120, ge=5, le=3600)
    ring_seconds: int = Field(30, ge=5, le=120)


class AnnounceSettings(Strict):
    # the handle time the wait estimate assumes until the controller has learnt it from history
    aht_seconds: int = Field(420, ge=30, le=3600)


class QueueSettings(Strict):
    strategy: str = "rrmemory"
    wrapup_seconds: int = Field(5, ge=0, le=600)
    ring_seconds: int = Field(15, ge=5, le=120)
    max_callers: int = Field(50, ge=1, le=1000)
    callback: CallbackSettings = CallbackSettings()
    announce: AnnounceSettings = AnnounceSettings()

    @field_validator("strategy")
    @classmethod
    def strategy_known(cls, v: str) -> str:
        known = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom", "rrordered")
        if v not in known:
            raise ValueError(f"unknown strategy {v!r}; app_queue knows {', '.join(known)}")
        return v


class LiveTranscription(Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(9092, ge=1, le=65535)
    partial_every_ms: int = Field(300, ge=50, le=5000)
    # calls transcribed live at once (two streams each); beyond it a call gets its post-call
    # transcript only. bench/bench_vosk.py measures what a machine sustains.
    max_calls: int = Field(3, ge=0, le=1000)


class Retention(Strict):
    recordings_days: int = Field(180, ge=1, le=3650)
    transcripts_days: int = Field(1095, ge=1, le=36500)


class TranscriptionSettings(Strict):
    enabled: bool = True
    models: dict[str, list[str]] = {}
    workers: int = Field(2, ge=1, le=64)
    # CPU priority (Unix nice, 0-19) of the transcriber: recognition is the heaviest work on the box and
    # never urgent; with the cores busy, Asterisk's calls and the controller go first
    nice: int = Field(10, ge=0, le=19)
    lease_seconds: float = Field(60, ge=1, le=3600)
    max_attempts: int = Field(3, ge=1, le=20)
    retry_seconds: float = Field(30, ge=0.1, le=86400)
    live: LiveTranscription = LiveTranscription()
    retention: Retention = Retention()
    keywords_file: str = "config/keywords.yaml"


class InteropSettings(Strict):
    """Delivery of the partner outbox (`hotline interop`)."""
    enabled: bool = True
    poll_seconds: float = Field(0.5, ge=0.05, le=60)
    lease_seconds: float = Field(30, ge=1, le=3600)     # a message whose worker died is sent again after this
    timeout_seconds: float = Field(10, ge=0.5, le=120)  # per request
    concurrency: int = Field(8, ge=1, le=200)
    max_attempts: int = Field(20, ge=1, le=1000)        # then a dead letter (alert; `hotline outbox retry`)
    backoff_seconds: float = Field(1, ge=0.01, le=3600)
    backoff_max_seconds: float = Field(300, ge=0.01, le=86400)
    # this deployment's partner addresses, overriding config/partners.yaml: {partner: {city|default: url}}
    endpoints: dict[str, dict[str, str]] = {}
    # ... and their SIP trunks for warm transfers: {partner: {city|default: sip uri}}
    sip: dict[str, dict[str, str]] = {}


class FederationSettings(Strict):
    """One province, one or many deployments: a city node reports to the command-center node."""
    mode: Literal["standalone", "city", "command"] = "standalone"
    command_center_url: str = ""           # city: the command-center node's base URL
    report_seconds: float = Field(2, ge=0.2, le=300)
    stale_seconds: float = Field(10, ge=1, le=3600)   # command: a node not heard from this long is stale
    cities: list[str] = []                 # city: the cities this node serves (default: all configured)

    @model_validator(mode="after")
    def city_needs_url(self):
        if self.mode == "city" and not self.command_center_url.startswith(("http://", "https://")):
            raise ValueError("federation.command_center_url: a city node needs the command center's http(s) URL")
        return self


class AlarmThresholds(Strict):
    service_level_target: float = Field(0.8, ge=0, le=1)     # alarm below this ...
    min_calls_for_service_level: int = Field(5, ge=1)        # ... once this many calls were queued today
    longest_wait_seconds: float = Field(120, ge=1)           # alarm when a caller waits longer
    no_agent_when_open: bool = True                          # alarm when the city is open and nobody is logged in


class WallboardSettings(Strict):
    """KPI definitions (core/kpi.py, docs/kpis.md) and alarm thresholds, per city if needed."""
    service_level_seconds: float = Field(20, ge=1, le=600)
    short_abandon_seconds: float = Field(5, ge=0, le=120)
    exclude_short_abandons: bool = True
    alarm_interval_seconds: float = Field(5, ge=0.2, le=600)
    thresholds: AlarmThresholds = AlarmThresholds()
    city_thresholds: dict[str, AlarmThresholds] = {}


class SystemFile(Strict):
    state_dir: str = ".hotline"
    # the roster (agents, interpreters, supervisors) may live elsewhere, e.g. kept by the duty office
    agents_file: str = "config/agents.yaml"
    node: Node
    asterisk: AsteriskSettings
    trunk: Trunk
    controller: ControllerSettings
    database: Database
    redis: RedisSettings
    queues: QueueSettings
    transcription: TranscriptionSettings = TranscriptionSettings()
    interop: InteropSettings = InteropSettings()
    federation: FederationSettings = FederationSettings()
    wallboard: WallboardSettings = WallboardSettings()


class LanguageRouting(Strict):
    served_by: Literal["city", "province"]


class WorkflowStep(Strict):
    target: Literal["city", "city_skill", "neighbours", "language_pool", "province"]
    wait: int = Field(ge=5, le=3600)
    interpreter: bool = False   # conference in an interpreter of the caller's language on answer


class GreenCategory(Strict):
    digit: Annotated[str, Field(pattern=r"^[0-9]$")]
    id: Ident
    workflow: Ident = "green"


class GreenChannel(Strict):
    priority: int = Field(10, ge=1, le=100)
    digit: Annotated[str, Field(pattern=r"^[0-9]$")]
    categories: list[GreenCategory] = Field(min_length=1)


class Overflow(Strict):
    waiting_per_agent: int = Field(3, ge=1, le=100)


class CitySchedule(Strict):
    always_open: bool = False
    weekly: dict[str, list[str]] | None = None


class Schedules(Strict):
    default: CitySchedule
    cities: dict[str, CitySchedule] = Field(default_factory=dict)
    holidays: str | None = None


class RoutingFile(Strict):
    timezone: str
    languages: dict[str, LanguageRouting]
    specialties: list[Ident]
    services: dict[str, Ident] = Field(default_factory=dict)
    neighbours: dict[str, list[str]] = Field(default_factory=dict)
    overflow: Overflow
    green_channel: GreenChannel
    workflows: dict[Ident, list[WorkflowStep]]
    schedules: Schedules
    # outside numbers the desk may transfer callers to (and nothing else: no toll fraud by desk)
    transfer_numbers: dict[Annotated[str, Field(pattern=r"^[0-9]{3,20}$")], str] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r}") from None
        return v

    @model_validator(mode="after")
    def check(self) -> "RoutingFile":
        needed = {"standard", "specialist", "language", "green", "night"} | {c.workflow for c in self.green_channel.categories}
        missing = sorted(needed - set(self.workflows))
        if missing:
            raise ValueError(f"workflows: missing {missing}")
        for name, steps in self.workflows.items():
            if not steps:
                raise ValueError(f"workflows.{name}: needs at least one step")
        for svc, spec in self.services.items():
            if spec not in self.specialties:
                raise ValueError(f"services.{svc}: {spec!r} is not in specialties")
        return self


class HotlineConfig(Strict):
    """Everything the platform is configured with, cross-checked."""
    system: SystemFile
    cities: list[City]
    province: ProvincePool
    agents: list[Agent]
    interpreters: list[Interpreter]
    supervisors: list[Supervisor]
    wallboards: list[Wallboard] = Field(default_factory=list)
    ivr: IvrFlow
    routing: RoutingFile
    schedules: dict[str, Any]      # city id -> core.schedule.Schedule
    rotas: dict[str, Any]          # agent id -> core.schedule.Schedule (on-duty hours)
    green_registry: dict[str, str]  # caller number -> green-channel category
    root: Path

    @model_validator(mode="after")
    def cross_check(self) -> "HotlineConfig":
        queue_ids = {c.id for c in self.cities} | {self.province.id}
        langs = {l.code for l in self.ivr.languages}
        r = self.routing
        for lang in langs - set(r.languages):
            raise ValueError(f"routing.yaml: languages: no routing for IVR language {lang!r}")
        city_ids = {c.id for c in self.cities}
        for city, near in r.neighbours.items():
            for n in [city, *near]:
                if n not in city_ids:
                    raise ValueError(f"routing.yaml: neighbours.{city}: unknown city {n!r}")
        for city in r.schedules.cities:
            if city not in city_ids:
                raise ValueError(f"routing.yaml: schedules.cities: unknown city {city!r}")
        svc_digits = {o.digit for o in self.ivr.menus.service.options}
        if r.green_channel.digit in svc_digits:
            raise ValueError(f"routing.yaml: green_channel.digit {r.green_channel.digit} is already a service menu digit")
        green_ids = {c.id for c in r.green_channel.categories}
        for number, cat in self.green_registry.items():
            if cat not in green_ids:
                raise ValueError(f"green_registry.yaml: {number}: unknown category {cat!r} (known: {sorted(green_ids)})")
        for i, a in enumerate(self.agents):
            for q in a.queues:
                if q not in queue_ids:
                    raise ValueError(f"agents[{i}] ({a.id}).queues: unknown city or pool {q!r}")
            for lang in a.languages:
                if lang not in langs:
                    raise ValueError(f"agents[{i}] ({a.id}).languages: {lang!r} is not an IVR language {sorted(langs)}")
            for spec in a.specialties:
                if spec not in r.specialties:
                    raise ValueError(f"agents[{i}] ({a.id}).specialties: unknown specialty {spec!r}")
        for kind, people in (("supervisors", self.supervisors), ("wallboards", self.wallboards)):
            for i, sup in enumerate(people):
                for c in sup.cities:
                    if c not in queue_ids:
                        raise ValueError(f"{kind}[{i}] ({sup.id}).cities: unknown city or pool {c!r}")
        return self

    def city(self, city_id: str) -> City:
        for c in self.cities:
            if c.id == city_id:
                return c
        raise KeyError(city_id)

    def agent(self, agent_id: str) -> Agent:
        for a in self.agents:
            if a.id == agent_id:
                return a
        raise KeyError(agent_id)

    def sip_accounts(self) -> list[str]:
        """Everyone with a SIP account of ours: agents and interpreters without a phone number."""
        return ([a.id for a in self.agents] + [i.id for i in self.interpreters if not i.number]
                + [s.id for s in self.supervisors])

    @property
    def queue_ids(self) -> list[str]:
        return [c.id for c in self.cities] + [self.province.id]

    def resolve(self, path: str | Path) -> Path:
        """Relative paths in config are relative to the project root."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    @property
    def state_dir(self) -> Path:
        return self.resolve(self.system.state_dir)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as e:          # a directory where the file should be, no permission…
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: invalid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _validate(model: type[BaseModel], data: Any, path: Path) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            got = f" (got {err['input']!r})" if err["type"] not in ("missing",) and not isinstance(err["input"], dict) else ""
            lines.append(f"{path}: {_loc(err['loc'])}: {err['msg']}{got}")
        raise ConfigError("\n".join(lines)) from None


def load_config(root: Path | None = None, overrides: dict[str, Any] | None = None) -> HotlineConfig:
    """Load and validate config/ and ivr_flows/ under ``root``.

    ``overrides`` deep-merges into config/hotline.yaml (tests use it for ports and instance names);
    its ``routing`` key, if any, merges into config/routing.yaml instead.
    """
    root = (root or REPO_ROOT).resolve()
    overrides = dict(overrides or {})
    routing_overrides = overrides.pop("routing", {}) or {}
    cdir = root / "config"
    sys_path, cities_path, agents_path = cdir / "hotline.yaml", cdir / "cities.yaml", cdir / "agents.yaml"
    ivr_path = root / "ivr_flows" / "hotline.yaml"
    sys_data = _deep_merge(_read_yaml(sys_path), overrides)
    system = _validate(SystemFile, sys_data, sys_path)
    agents_path = root / system.agents_file
    cities = _validate(CitiesFile, _read_yaml(cities_path), cities_path)
    agents = _validate(AgentsFile, _read_yaml(agents_path), agents_path)
    ivr = _validate(IvrFlow, _read_yaml(ivr_path), ivr_path)
    routing_path = cdir / "routing.yaml"
    routing = _validate(RoutingFile, _deep_merge(_read_yaml(routing_path), routing_overrides), routing_path)
    schedules = _schedules(routing, cities.cities, cdir, routing_path)
    rotas = _rotas(cdir / "rotas.yaml", {a.id for a in agents.agents})
    registry_path = cdir / "green_registry.yaml"
    registry = _read_yaml(registry_path) if registry_path.exists() else {"callers": {}}
    callers = registry.get("callers") or {}
    if not isinstance(callers, dict):
        raise ConfigError(f"{registry_path}: callers: expected a mapping of number: category")
    try:
        return HotlineConfig(system=system, cities=cities.cities, province=cities.province_pool,
                             agents=agents.agents, interpreters=agents.interpreters,
                             supervisors=agents.supervisors, wallboards=agents.wallboards, ivr=ivr, routing=routing,
                             schedules=schedules, rotas=rotas,
                             green_registry={str(k): str(v) for k, v in callers.items()}, root=root)
    except ValidationError as e:
        msgs = "; ".join(err["msg"].removeprefix("Value error, ") for err in e.errors())
        where = "" if msgs.split(":")[0].endswith(".yaml") else f"{agents_path}: "
        raise ConfigError(f"{where}{msgs}") from None


def _rotas(path: Path, agent_ids: set[str]) -> dict:
    from core.schedule import Schedule, parse_days, parse_span

    if not path.exists():
        return {}
    raw = _read_yaml(path)
    data = (raw.get("rotas") if isinstance(raw, dict) else raw) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: rotas: expected agent ids mapped to their weekly hours")
    out = {}
    for agent_id, weekly in data.items():
        if agent_id not in agent_ids:
            raise ConfigError(f"{path}: rotas.{agent_id}: unknown agent")
        if not isinstance(weekly, dict):
            raise ConfigError(f"{path}: rotas.{agent_id}: expected day ranges mapped to lists of hours")
        spans: dict[int, tuple] = {}
        try:
            for days, hours in weekly.items():
                for d in parse_days(str(days)):
                    spans[d] = spans.get(d, ()) + tuple(parse_span(h) for h in hours)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{path}: rotas.{agent_id}: {e}") from None
        out[agent_id] = Schedule(False, spans, frozenset(), frozenset())
    return out


def _schedules(routing: RoutingFile, cities: list[City], cdir: Path, routing_path: Path) -> dict:
    from core.schedule import Schedule, parse_dates, parse_days, parse_span

    closed, workdays = frozenset(), frozenset()
    sch = routing.schedules
    if sch.holidays:
        hpath = cdir / sch.holidays
        data = _read_yaml(hpath)
        try:
            c, w = [], []
            for year, entry in data.items():
                c += entry.get("closed", []) or []
                w += entry.get("workdays", []) or []
            closed, workdays = parse_dates(c), parse_dates(w)
        except (ValueError, AttributeError, TypeError) as e:
            raise ConfigError(f"{hpath}: {e}") from None

    def build(cs: CitySchedule, where: str) -> Schedule:
        weekly: dict[int, tuple] = {}
        try:
            for days, spans in (cs.weekly or sch.default.weekly or {}).items():
                for d in parse_days(str(days)):
                    weekly[d] = weekly.get(d, ()) + tuple(parse_span(x) for x in spans)
        except ValueError as e:
            src = where if cs.weekly or where == "schedules.default" else "schedules.default"
            raise ConfigError(f"{routing_path}: {src}.weekly: {e}") from None
        return Schedule(cs.always_open, weekly, closed, workdays)

    build(sch.default, "schedules.default")   # a bad default is named as the default, not as a city's
    out = {}
    for c in cities:
        cs = sch.cities.get(c.id, sch.default)
        out[c.id] = build(cs, f"schedules.cities.{c.id}" if c.id in sch.cities else "schedules.default")
    return out


def _deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
