"""The back-office and partner files: config/tickets.yaml, legal_aid.yaml, legal_aid_centers.yaml,
keywords.yaml and partners.yaml. Models only; core/config/loader.py reads and cross-checks them with
everything else, so `hotline config check` sees every error a daemon would hit at start."""
from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from core.config.base import Strict
from core.schedule import parse_days, parse_span

# ---- config/tickets.yaml: ticket taxonomy, outcomes, deadlines, complaint replies

class Label(Strict):
    zh: str
    en: str


class ComplaintRules(Strict):
    reply_due_days: Annotated[float, Field(gt=0, le=90)]
    reply_text: dict[str, str]


class TicketRules(Strict):
    categories: dict[str, Label]
    outcomes: dict[str, Label]
    deadline_hours: dict[str, Annotated[float, Field(gt=0, le=24 * 90)]]
    complaints: ComplaintRules

    def deadline(self, green: bool) -> float:
        return self.deadline_hours.get("green" if green else "default", self.deadline_hours.get("default", 72))


# ---- config/legal_aid.yaml: the legal-aid pre-screen rules

Matter = Literal[
    "wage_arrears", "work_injury", "labour_dispute", "maintenance", "social_insurance", "pension_relief",
    "state_compensation", "domestic_violence", "traffic", "medical", "food_drug", "pollution",
    "fake_agri_inputs", "civil_litigation", "criminal_defence", "other"]


class Source(Strict):
    title: str
    in_force: str = ""
    ref: str
    verified: bool


class Rule(Strict):
    """One rule of the pre-screen with its citation. `text` says only what the article says; `note` is our
    explanation of it (shown as such, never as the article). `verified` is true only where `text` was
    compared word for word with the source's own text; false otherwise (the answer shows it to the agent),
    and a rule from a verified source that is itself not verified says why in `reason`."""
    source: str
    article: str
    text: str
    verified: bool
    note: str = ""
    reason: str = ""


class Group(Strict):
    name: str
    rule: str
    effect: Literal["no_means_test", "no_check"]
    matters: list[Matter] = Field(default_factory=list)     # empty: any matter


class Hardship(Strict):
    basis: Literal["dibao_multiple", "minimum_wage"]
    multiple: Annotated[float, Field(gt=0, le=10)]
    rule: str


class HardshipRules(Strict):
    default: Hardship
    cities: dict[str, Hardship] = Field(default_factory=dict)


class Standards(Strict):
    verified: bool
    source: str
    dibao_urban: dict[str, Annotated[float, Field(gt=0)]]
    dibao_rural: dict[str, Annotated[float, Field(gt=0)]]
    minimum_wage: dict[str, Annotated[float, Field(gt=0)]]

    @model_validator(mode="after")
    def defaults(self) -> "Standards":
        for name in ("dibao_urban", "dibao_rural", "minimum_wage"):
            if "default" not in getattr(self, name):
                raise ValueError(f"{name} needs a `default` figure")
        return self


# the places a caller can name (backoffice/legal_aid.py Places); jurisdiction rules pick among them
PLACE_KINDS = ("court", "handling_organ", "act", "detention", "respondent_domicile", "respondent_residence",
               "applicant_residence", "obligated_authority", "compensating_authority", "contract_performance")


class PlaceRule(Strict):
    """Where to apply: either a rule id (`rule`, art. 38/39) or its own citation in the rules' shape
    (`source`, `article`, `verified`, with `basis` as the text), e.g. seed 000's per-matter practice."""
    places: list[Literal[PLACE_KINDS]]
    rule: str = ""
    basis: str = ""
    source: str = ""
    article: str = ""
    verified: bool | None = None


class JurisdictionRules(Strict):
    litigation: PlaceRule
    non_litigation: PlaceRule
    detained: PlaceRule
    matters: dict[Matter, PlaceRule]


class Target(Strict):
    source: str
    verified: bool
    consultations: Annotated[int, Field(gt=0)]
    cases: Annotated[int, Field(gt=0)]


class Documents(Strict):
    always: list[str]
    hardship: list[str]
    group: list[str]
    matters: dict[str, list[str]]


# the rule ids the pre-screen's code applies (backoffice/legal_aid.py); the loader requires each
RULE_IDS = (
    "art25_mandatory", "art25_full_coverage", "sc_court_shall_notify", "art28_compulsory_medical",
    "art30_duty_lawyer", "art24_criminal_hardship", "art32_abuse_victim", "sc_no_matter_limit", "art31_matters",
    "art44_provide_first", "art38_litigation", "art38_non_litigation", "sc_chuanyu", "art41_declaration",
    "sc_online_check")


class LegalAidRules(Strict):
    version: str
    sources: dict[str, Source]
    rules: dict[str, Rule]
    groups: dict[str, Group]
    abuse_matters: list[Matter]
    unlisted_matters: Literal["means_test", "review"]
    hardship: HardshipRules
    standards: dict[str, Standards]           # calendar year -> figures
    jurisdiction: JurisdictionRules
    documents: Documents
    case_outcomes: list[str] = Field(default_factory=list)   # ticket outcomes that count as a legal-aid case
    targets: dict[str, Target] = Field(default_factory=dict)  # calendar year -> the 民生实事 targets

    @model_validator(mode="after")
    def references(self) -> "LegalAidRules":
        """Every rule cites a known source, every group and standard a known rule."""
        for rid, r in self.rules.items():
            if r.source not in self.sources:
                raise ValueError(f"rules.{rid}.source: unknown source {r.source!r}; known: {sorted(self.sources)}")
            if r.verified and not self.sources[r.source].verified:
                raise ValueError(f"rules.{rid}: verified, but its source {r.source!r} is not")
            if not r.verified and self.sources[r.source].verified and not r.reason:
                raise ValueError(f"rules.{rid}: not verified against a verified source: say why in `reason`")
        missing = [r for r in RULE_IDS if r not in self.rules]
        if missing:
            raise ValueError(f"rules: missing {missing} (the pre-screen applies them)")
        refs = [(f"groups.{g}.rule", x.rule) for g, x in self.groups.items()]
        refs += [("hardship.default.rule", self.hardship.default.rule)]
        refs += [(f"hardship.cities.{c}.rule", h.rule) for c, h in self.hardship.cities.items()]
        j = self.jurisdiction
        refs += [(f"jurisdiction.{k}.rule", getattr(j, k).rule) for k in ("litigation", "non_litigation", "detained")]
        for where, rid in refs:
            if rid not in self.rules:
                raise ValueError(f"{where}: unknown rule {rid!r}")
        places = [(k, getattr(j, k)) for k in ("litigation", "non_litigation", "detained")]
        places += [(f"matters.{m}", p) for m, p in j.matters.items()]
        for where, p in places:
            if p.rule:
                continue
            if not (p.source and p.article and p.basis and p.verified is not None):
                raise ValueError(f"jurisdiction.{where}: needs a `rule`, or `source`, `article`, `basis` and "
                                 f"`verified` like a rule")
            if p.source not in self.sources:
                raise ValueError(f"jurisdiction.{where}.source: unknown source {p.source!r}; known: "
                                 f"{sorted(self.sources)}")
            if p.verified and not self.sources[p.source].verified:
                raise ValueError(f"jurisdiction.{where}: verified, but its source {p.source!r} is not")
        for year in self.standards:
            if not re.fullmatch(r"20[0-9]{2}", year):
                raise ValueError(f"standards.{year}: expected a calendar year such as \"2027\"")
        return self

    def cite(self, rule_id: str) -> str:
        r = self.rules[rule_id]
        return self.cite_source(r.source, r.article, r.verified)

    def cite_source(self, source: str, article: str, verified: bool) -> str:
        return f"{self.sources[source].title} {article}" + ("" if verified else "（未核实）")


# ---- config/legal_aid_centers.yaml: appointment centers and the texts sent to callers

class CenterName(Strict):
    zh: str
    en: str
    bo: str


class HomeVisits(Strict):
    """上门服务: when a center's staff visit applicants at home, how long a visit takes (with travel)
    and how many teams go out at once."""
    hours: dict[str, list[str]]
    slot_minutes: Annotated[int, Field(ge=30, le=480)]
    capacity: Annotated[int, Field(ge=1, le=20)]

    @field_validator("hours")
    @classmethod
    def spans(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for days, spans in v.items():
            parse_days(days)
            for s in spans:
                parse_span(s)
        return v


class Center(Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{2,40}$")]
    city: str
    name: CenterName
    address: str
    hours: dict[str, list[str]]
    slot_minutes: Annotated[int, Field(ge=10, le=240)]
    capacity: Annotated[int, Field(ge=1, le=50)]
    # home visits for people aged 80+ or with a severe disability (seeds 001, 003 #18); none: not offered
    home_visits: HomeVisits | None = None

    @field_validator("hours")
    @classmethod
    def spans(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for days, spans in v.items():
            parse_days(days)
            for s in spans:
                parse_span(s)
        return v


class CentersFile(Strict):
    centers: list[Center]
    confirmation: dict[str, str]
    reminder: dict[str, str]
    cancellation: dict[str, str]
    home_visit_confirmation: dict[str, str] = Field(default_factory=dict)   # {address} is the applicant's


# ---- config/legal_aid_offices.yaml: every legal-aid center by division code, for jurisdiction answers

class Office(Strict):
    code: Annotated[str, Field(pattern=r"^[0-9]{6}$")]
    name: str
    name_checked: bool = False
    address: str | None
    phone: Annotated[str, Field(pattern=r"^[0-9][0-9-]{4,20}$")] | None
    hours: dict[str, list[str]] | None
    appointment_center: str | None = None      # an id in legal_aid_centers.yaml: booking on the call
    partner: str | None = None                 # a partner in partners.yaml that takes the handoff (Chongqing 12348)

    @field_validator("hours")
    @classmethod
    def spans(cls, v: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        for days, spans in (v or {}).items():
            parse_days(days)
            for s in spans:
                parse_span(s)
        return v

    def missing(self) -> list[str]:
        """What an operator still has to fill in from the center's own notice."""
        out = [f for f in ("address", "phone", "hours") if getattr(self, f) is None]
        return (["name (unchecked)"] if not self.name_checked else []) + out


class OfficesFile(Strict):
    offices: list[Office]

    @model_validator(mode="after")
    def unique(self) -> "OfficesFile":
        seen: set[str] = set()
        for i, o in enumerate(self.offices):
            if o.code in seen:
                raise ValueError(f"offices[{i}].code: {o.code} is listed twice")
            seen.add(o.code)
        return self

    @property
    def by_code(self) -> dict[str, Office]:
        return {o.code: o for o in self.offices}


# ---- config/keywords.yaml: keyword alert topics and terms per language

class Topic(Strict):
    names: dict[str, str]
    severity: str = Field("normal", pattern="^(normal|high)$")
    category: str


class KeywordsFile(Strict):
    topics: dict[str, Topic]
    terms: dict[str, dict[str, list[str]]] = {}


# ---- config/partners.yaml: partner hotlines (12345, 12333, 12338)

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
