"""The one loader: every config file under config/ and ivr_flows/, validated into one typed
HotlineConfig and cross-checked. Errors name the file and the field
(``config/cities.yaml: cities[3].area_code: ...``) so an operator can fix a typo without reading code.
Every daemon and `hotline config check` load through here, so the check sees what a daemon would."""
from __future__ import annotations

import ipaddress

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from core.config.base import REPO_ROOT, ConfigError, Strict, deep_merge, read_yaml, validate
from core.config.people import Agent, AgentsFile, CitiesFile, City, Interpreter, ProvincePool, Supervisor, Wallboard
from core.config.model_catalogue import ModelCatalogue
from core.config.routing_file import CitySchedule, LocalHolidaysFile, RoutingFile
from core.config.sources import Sources, find_config_dir
from core.config.services import OfficesFile
from core.config.services import (CentersFile, KeywordsFile, LegalAidRules, Matter, Partner, PartnersFile,
                                  TicketRules)
from core.config.system import SystemFile
from core.ivr import IvrFlow
from core.numbering import to_e164


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
    green_registry: dict[str, str]  # caller number (E.164, core.numbering.to_e164) -> green-channel category
    # years with holiday dates: "national" (holidays.yaml) and each city with local holidays
    holiday_years: dict[str, list[int]] = Field(default_factory=dict)
    tickets: TicketRules
    legal_aid: LegalAidRules
    centers: CentersFile
    keywords: KeywordsFile
    legal_aid_offices: OfficesFile = Field(default_factory=lambda: OfficesFile(offices=[]))
    partners: dict[str, Partner] = Field(default_factory=dict)   # with this deployment's addresses
    root: Path
    config_dir: Path
    # hotline.yaml keys set by the environment, a secret file or an override -> which (never the value)
    sources: dict[str, str] = Field(default_factory=dict)

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
        ivr_services = {o.service for o in self.ivr.menus.service.options}
        for svc in r.service_workflows:
            if svc not in ivr_services:
                raise ValueError(f"routing.yaml: service_workflows.{svc}: not a service of the IVR's service menu "
                                 f"{sorted(ivr_services)}")
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
        for lang in self.ivr.languages:
            for c in lang.cities:
                if c not in city_ids:
                    raise ValueError(f"ivr_flows/hotline.yaml: languages ({lang.code}).cities: unknown city {c!r}")
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

    def agent_cities(self) -> dict[str, frozenset[str]]:
        """Agent id -> the cities (and pool) whose queues they serve: who may manage them, whose
        wallboard they count on. The one place this map is built."""
        return {a.id: frozenset(a.queues) for a in self.agents}

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


def load_config(root: Path | None = None, overrides: dict[str, Any] | None = None,
                config_dir: Path | str | None = None) -> HotlineConfig:
    """Load and validate the config directory (core/config/sources.py find_config_dir: ``config_dir``,
    else ``root``/config when ``root`` is given, else $HOTLINE_CONFIG_DIR, /etc/hotline or this
    checkout's config/) and ivr_flows/ under ``root``.

    hotline.yaml's keys may also come from secret files and HOTLINE_<SECTION>__<KEY> variables;
    ``overrides`` deep-merges over all of them (tests use it for ports and instance names); its
    ``routing`` key, if any, merges into routing.yaml instead.
    """
    root_given = root is not None
    root = (root or REPO_ROOT).resolve()
    overrides = dict(overrides or {})
    routing_overrides = overrides.pop("routing", {}) or {}
    cdir = find_config_dir(root, config_dir, root_given)
    sys_path, cities_path = cdir / "hotline.yaml", cdir / "cities.yaml"
    ivr_path = root / "ivr_flows" / "hotline.yaml"
    sources = Sources()
    sys_data = sources.merge(read_yaml(sys_path), overrides)
    system = validate(SystemFile, sys_data, sys_path, sources.origin, sources.secret_values)
    if cdir != root / "config":
        _absolute_paths(system, sys_path, sources)
    system = _this_node(system)
    agents_path = _resolve(cdir, system.agents_file)
    cities = validate(CitiesFile, read_yaml(cities_path), cities_path)
    agents = validate(AgentsFile, read_yaml(agents_path), agents_path)
    ivr = validate(IvrFlow, read_yaml(ivr_path), ivr_path)
    routing_path = cdir / "routing.yaml"
    routing = validate(RoutingFile, deep_merge(read_yaml(routing_path), routing_overrides), routing_path)
    schedules, holiday_years = _schedules(routing, cities.cities, cdir, routing_path)
    rotas = _rotas(cdir / "rotas.yaml", {a.id for a in agents.agents})
    unknown = [i for i in system.phones.browser if i not in {a.id for a in agents.agents}]
    if unknown:
        raise ConfigError(f"{sys_path}: phones.browser: {', '.join(unknown)}: not an agent in {agents_path.name}")
    registry_path = cdir / "green_registry.yaml"
    registry = read_yaml(registry_path) if registry_path.exists() else {"callers": {}}
    callers = registry.get("callers") or {}
    if not isinstance(callers, dict):
        raise ConfigError(f"{registry_path}: callers: expected a mapping of number: category")
    files = _service_files(cdir, system, {c.id for c in cities.cities})
    _cluster_cities(system, {c.id for c in cities.cities}, sys_path)
    try:
        return HotlineConfig(**files, system=system, cities=cities.cities, province=cities.province_pool,
                             agents=agents.agents, interpreters=agents.interpreters,
                             supervisors=agents.supervisors, wallboards=agents.wallboards, ivr=ivr, routing=routing,
                             schedules=schedules, rotas=rotas, holiday_years=holiday_years,
                             green_registry=_green_registry(callers, registry_path), root=root,
                             config_dir=cdir, sources=sources.described())
    except ValidationError as e:
        msgs = "; ".join(err["msg"].removeprefix("Value error, ") for err in e.errors())
        where = "" if msgs.split(":")[0].endswith(".yaml") else f"{agents_path}: "
        raise ConfigError(f"{where}{msgs}") from None


def _cluster_cities(system: SystemFile, city_ids: set[str], path: Path) -> None:
    """A node's cities are cities of cities.yaml: a misspelt one would silently go to the first node."""
    for i, node in enumerate(system.cluster.nodes):
        for city in node.cities:
            if city not in city_ids:
                raise ConfigError(f"{path}: cluster.nodes[{i}].cities: {city!r} is not a city of cities.yaml")


def _this_node(system: SystemFile) -> SystemFile:
    """A process that serves one cluster node (cluster.node) takes that node's address and ports for its
    Asterisk (SIP bind, AMI) and HTTP API, and its own Asterisk instance name, so several nodes can run
    on one machine from one config (docs/scale-out.md)."""
    node = system.cluster.this()
    if node is None:
        return system
    a = system.asterisk
    try:
        ipaddress.ip_address(node.address)
        bind = node.address
    except ValueError:        # a host name: the node's Asterisk keeps its configured bind address
        bind = a.sip_bind
    instance = f"{a.instance}_{node.name}"[:32]
    asterisk = a.model_copy(update={"sip_bind": bind, "sip_port": node.sip_port, "ami_port": node.ami_port,
                                    "instance": instance})
    controller = system.controller.model_copy(update={"http_port": node.http_port})
    return system.model_copy(update={"asterisk": asterisk, "controller": controller})


def load_model_catalogue(config_dir: Path | None = None) -> ModelCatalogue:
    """models.yaml of the config directory: the Vosk models `hotline models install` knows (none if
    the file is absent)."""
    path = (config_dir or REPO_ROOT / "config").resolve() / "models.yaml"
    if not path.exists():
        return ModelCatalogue()
    return validate(ModelCatalogue, read_yaml(path), path)


def _green_registry(callers: dict, path: Path) -> dict[str, str]:
    """Keyed by E.164: an entry written 13800000000 is the caller whose ID arrives as +8613800000000."""
    out: dict[str, str] = {}
    written: dict[str, str] = {}
    for number, cat in callers.items():
        e164 = to_e164(str(number))
        if not e164:
            raise ConfigError(f"{path}: callers: {str(number)!r} is not a phone number (digits, optionally one "
                              f"leading +)")
        if e164 in out:
            raise ConfigError(f"{path}: callers: {written[e164]} and {number} are the same number ({e164})")
        out[e164], written[e164] = str(cat), str(number)
    return out


def _rotas(path: Path, agent_ids: set[str]) -> dict:
    from core.schedule import Schedule, parse_days, parse_span

    if not path.exists():
        return {}
    raw = read_yaml(path)
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


def _schedules(routing: RoutingFile, cities: list[City], cdir: Path, routing_path: Path) -> tuple[dict, dict]:
    from core.schedule import Schedule, parse_dates, parse_days, parse_span

    closed, workdays = frozenset(), frozenset()
    sch = routing.schedules
    years: dict[str, list[int]] = {}
    if sch.holidays:
        hpath = cdir / sch.holidays
        data = read_yaml(hpath)
        try:
            c, w = [], []
            for year, entry in data.items():
                c += entry.get("closed", []) or []
                w += entry.get("workdays", []) or []
            closed, workdays = parse_dates(c), parse_dates(w)
            years["national"] = sorted(int(y) for y in data)
        except (ValueError, AttributeError, TypeError) as e:
            raise ConfigError(f"{hpath}: {e}") from None
    local = _local_holidays(cdir / sch.local_holidays, {c.id for c in cities}, years) if sch.local_holidays else {}

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
        s = build(cs, f"schedules.cities.{c.id}" if c.id in sch.cities else "schedules.default")
        if c.id in local:
            s = Schedule(s.always_open, s.weekly, s.closed | local[c.id], s.workdays)
        out[c.id] = s
    return out, years


def _local_holidays(path: Path, city_ids: set[str], years: dict[str, list[int]]) -> dict[str, frozenset]:
    """City id -> its own closed days (config/local_holidays.yaml); their years into ``years``."""
    from core.schedule import parse_dates

    data: LocalHolidaysFile = validate(LocalHolidaysFile, read_yaml(path), path)
    out: dict[str, frozenset] = {}
    for city, entries in data.cities.items():
        if city not in city_ids:
            raise ConfigError(f"{path}: cities.{city}: unknown city")
        days: set = set()
        for i, h in enumerate(entries):
            try:
                these = parse_dates([h.days])
            except ValueError as e:
                raise ConfigError(f"{path}: cities.{city}[{i}].days: {e}") from None
            if any(d.year != h.year for d in these):
                raise ConfigError(f"{path}: cities.{city}[{i}].days: {h.days} is not in {h.year}")
            days |= these
        out[city] = frozenset(days)
        years[city] = sorted({h.year for h in entries})
    return out


def _service_files(cdir: Path, system: SystemFile, city_ids: set[str]) -> dict[str, Any]:
    """The back-office, keyword and partner files, each cross-checked against the others."""
    path = cdir / "tickets.yaml"
    tickets: TicketRules = validate(TicketRules, read_yaml(path), path)
    return {"tickets": tickets,
            "legal_aid": _legal_aid(cdir / "legal_aid.yaml", city_ids),
            "centers": _centers(cdir / "legal_aid_centers.yaml", city_ids),
            "keywords": _keywords(_resolve(cdir, system.transcription.keywords_file), set(tickets.categories)),
            "partners": _partners(cdir / "partners.yaml", city_ids, system.interop.endpoints, system.interop.sip),
            "legal_aid_offices": _offices(cdir / "legal_aid_offices.yaml", cdir / "legal_aid_centers.yaml",
                                          cdir / "partners.yaml")}


def _resolve(root: Path, path: str | Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else root / p


def _absolute_paths(system: SystemFile, sys_path: Path, sources: Sources) -> None:
    """With the config outside the checkout (/etc/hotline) a relative data path has no sensible base
    (the checkout is code, the working directory is whatever started the daemon): it must be absolute."""
    db = system.database.url
    sqlite_file = db.split(":///", 1)[1] if db.startswith("sqlite") and ":///" in db else "/"
    checks = [(("state_dir",), system.state_dir, "/var/lib/hotline"),
              (("database", "url"), "" if sqlite_file.startswith("/") or sqlite_file == ":memory:" else db,
               "sqlite:////var/lib/hotline/hotline.db"),
              (("asterisk", "rootfs"), str(system.asterisk.rootfs), "/var/cache/hotline/rootfs"),
              (("trunk", "tls_ca_file"), system.trunk.tls_ca_file or "/", "/etc/hotline/carrier-ca.pem"),
              (("transcription", "models_dir"), system.transcription.models_dir, "/var/lib/hotline/models")]
    for lang, entries in system.transcription.models.items():
        checks += [(("transcription", "models", lang, i), e if not e.startswith("pkg:") else "/",
                    "/var/lib/hotline/models/vosk-model-cn-0.22") for i, e in enumerate(entries)]
    errors = []
    for loc, value, example in checks:
        if value and not value.startswith("/"):
            where = sources.origin(loc) or sys_path
            field = ".".join(map(str, loc[:-1])) + f"[{loc[-1]}]" if isinstance(loc[-1], int) else ".".join(loc)
            shown = "***" if value in sources.secret_values else repr(value)
            errors.append(f"{where}: {field}: {shown} is a relative path; with the config directory "
                          f"{sys_path.parent} outside the checkout it must be absolute, e.g. {example}")
    if errors:
        raise ConfigError("\n".join(errors))


def _legal_aid(path: Path, city_ids: set[str]) -> LegalAidRules:
    rules: LegalAidRules = validate(LegalAidRules, read_yaml(path), path)
    matters = set(Matter.__args__)
    for m in rules.documents.matters:
        if m not in matters:
            raise ConfigError(f"{path}: documents.matters: unknown matter {m!r}")
    for c in rules.hardship.cities:
        if c not in city_ids:
            raise ConfigError(f"{path}: hardship.cities: unknown city {c!r}")
    for year, figures in rules.standards.items():
        for table in ("dibao_urban", "dibao_rural", "minimum_wage"):
            for c in getattr(figures, table):
                if c != "default" and c not in city_ids:
                    raise ConfigError(f"{path}: standards.{year}.{table}: unknown city {c!r}")
    return rules


def _offices(path: Path, centers_path: Path, partners_path: Path) -> OfficesFile:
    """Every office's code is a Sichuan or Chongqing division (core/places.py); an appointment center exists."""
    from core.places import division
    if not path.exists():     # an install from before the file: jurisdiction answers with city ids only
        return OfficesFile(offices=[])
    f: OfficesFile = validate(OfficesFile, read_yaml(path), path)
    centers = {c.get("id") for c in (read_yaml(centers_path) or {}).get("centers", []) if isinstance(c, dict)}
    partners = ((read_yaml(partners_path) or {}).get("partners") or {}) if partners_path.exists() else {}
    for i, o in enumerate(f.offices):
        if division(o.code) is None:
            raise ConfigError(f"{path}: offices[{i}].code: {o.code} is no Sichuan or Chongqing division code")
        if o.appointment_center and o.appointment_center not in centers:
            raise ConfigError(f"{path}: offices[{i}].appointment_center: unknown center {o.appointment_center!r}")
        if o.partner and o.partner not in partners:
            raise ConfigError(f"{path}: offices[{i}].partner: unknown partner {o.partner!r} (config/partners.yaml)")
    return f


def _centers(path: Path, city_ids: set[str]) -> CentersFile:
    f: CentersFile = validate(CentersFile, read_yaml(path), path)
    for i, c in enumerate(f.centers):
        if c.city not in city_ids:
            raise ConfigError(f"{path}: centers[{i}] ({c.id}).city: unknown city {c.city!r}")
    for kind in ("confirmation", "reminder", "cancellation"):
        if "zh" not in getattr(f, kind):
            raise ConfigError(f"{path}: {kind}: needs at least the zh text")
    ids = [c.id for c in f.centers]
    if len(ids) != len(set(ids)):
        raise ConfigError(f"{path}: duplicate center ids")
    return f


def _keywords(path: Path, categories: set[str]) -> KeywordsFile:
    """Every term's topic exists, every topic's category is a ticket category; no file, no alerts."""
    if not path.exists():
        return KeywordsFile(topics={})
    data: KeywordsFile = validate(KeywordsFile, read_yaml(path), path)
    for lang, by_topic in data.terms.items():
        for topic in by_topic:
            if topic not in data.topics:
                raise ConfigError(f"{path}: terms.{lang}.{topic}: unknown topic (known: {sorted(data.topics)})")
    for name, t in data.topics.items():
        if t.category not in categories:
            raise ConfigError(f"{path}: topics.{name}.category: unknown ticket category {t.category!r}")
    return data


def _partners(path: Path, city_ids: set[str], endpoints: dict[str, dict[str, str]] | None = None,
              sip: dict[str, dict[str, str]] | None = None) -> dict[str, Partner]:
    """Partners from config/partners.yaml; ``endpoints`` and ``sip`` (hotline.yaml interop.*) give
    this deployment's addresses."""
    if not path.exists():
        return {}
    raw = read_yaml(path)
    for pid, urls in (endpoints or {}).items():
        if pid not in (raw.get("partners") or {}):
            raise ConfigError(f"{path.parent / 'hotline.yaml'}: interop.endpoints.{pid}: no such partner in {path}")
        raw["partners"][pid]["endpoints"] = {**raw["partners"][pid].get("endpoints", {}), **urls}
    for pid, uris in (sip or {}).items():
        if pid not in (raw.get("partners") or {}) or not raw["partners"][pid].get("sip"):
            raise ConfigError(f"{path.parent / 'hotline.yaml'}: interop.sip.{pid}: no partner with a SIP trunk {pid!r} in {path}")
        raw["partners"][pid]["sip"]["uris"] = {**raw["partners"][pid]["sip"].get("uris", {}), **uris}
    data = validate(PartnersFile, raw, path)
    for pid, p in data.partners.items():
        for where, keys in (("endpoints", p.endpoints), ("sip.uris", p.sip.uris if p.sip else {})):
            for city in keys:
                if city != "default" and city not in city_ids:
                    raise ConfigError(f"{path}: partners.{pid}.{where}: unknown city {city!r}")
    return data.partners
