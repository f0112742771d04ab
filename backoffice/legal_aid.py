"""Legal-aid pre-screen: who is likely eligible, on which rule (article and source, verified or not),
what to bring, and which office has jurisdiction. Pure, typed functions over the rule data in
config/legal_aid.yaml (docs/legal-aid.md).

The agent runs it with the caller; the answer is advice for the caller, never a decision: the
legal-aid office decides. So "needs_review" is an honest outcome when the facts do not settle it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from core.config import HotlineConfig, LegalAidRules, Matter, OfficesFile
from core.places import CHONGQING, city_codes, division

Eligibility = Literal["likely", "not", "needs_review"]
Residence = Literal["urban", "rural"]


# ---- the caller's facts


@dataclass(frozen=True)
class Places:
    """Where things are (city ids); what jurisdiction needs depends on the matter and the stage."""
    court: str = ""                    # the court (or other case-handling organ) of a litigation matter
    handling_organ: str = ""           # the organ handling a non-litigation dispute (arbitration, mediation)
    act: str = ""                      # where the matter arose (harm, act)
    detention: str = ""                # where a suspect is held
    respondent_domicile: str = ""
    respondent_residence: str = ""
    applicant_residence: str = ""
    obligated_authority: str = ""      # the authority that owes the benefit
    compensating_authority: str = ""   # state compensation
    contract_performance: str = ""     # labour contracts


@dataclass(frozen=True)
class Facts:
    city: str                          # the caller's city (whose standards apply)
    matter: Matter
    household_size: int | None = None
    household_monthly_income: float | None = None   # yuan
    groups: frozenset[str] = frozenset()            # ids from the rules' `groups`
    residence: Residence | None = None              # household registration / residence: urban or rural 低保 line
    age: int | None = None
    # criminal cases
    has_lawyer: bool = False
    facing_life_or_death: bool = False
    blind_deaf_mute: bool = False
    mental_illness_limited_control: bool = False
    death_penalty_review: bool = False
    tried_in_absentia: bool = False
    compulsory_medical: bool = False
    ordinary_procedure: bool | None = None          # tried under ordinary (not summary/fast-track) procedure
    # urgency (art. 44)
    limitation_days_left: int | None = None
    urgent_preservation: bool = False
    places: Places = field(default_factory=Places)
    year: int | None = None            # standards year; None: the current year the caller passes


@dataclass(frozen=True)
class Citation:
    rule: str
    source: str                        # e.g. "中华人民共和国法律援助法 第32条第4项"
    article: str
    verified: bool
    text: str                          # what the article says, and only that
    note: str = ""                     # our explanation of it (not the article's words)


@dataclass(frozen=True)
class Office:
    """A legal-aid center the caller may apply to, as far as the data knows it."""
    code: str                          # division code (Ministry of Civil Affairs)
    division: str                      # e.g. 四川省乐山市犍为县
    level: str                         # county | city | province (Chongqing's municipal center)
    province: str                      # sichuan | chongqing
    name: str | None                   # None: the county's center is not in the data yet
    address: str | None = None
    phone: str | None = None
    hours: dict | None = None
    appointment_center: str | None = None
    partner: str | None = None         # hand the ticket to this partner (Chongqing 12348: POST .../handoff)
    missing: tuple[str, ...] = ()      # what operators still have to fill in (hotline centers check)


@dataclass(frozen=True)
class Jurisdiction:
    cities: tuple[str, ...]            # candidate places (city ids or division codes), in order
    basis: str                         # the deciding place rule, with its source and article
    rule: str = ""
    offices: tuple[Office, ...] = ()   # their centers, county level first where known
    verified: bool = True              # false: the place rule rests on a seed or report only


@dataclass(frozen=True)
class Directory:
    """The centers by division code and the cities' codes: what turns places into offices."""
    offices: OfficesFile
    city_codes: dict[str, str]

    @classmethod
    def of(cls, cfg: HotlineConfig) -> "Directory":
        return cls(cfg.legal_aid_offices, city_codes({c.id: c.names.zh for c in cfg.cities}))

    def known(self, place: str) -> bool:
        return place in self.city_codes or division(place) is not None

    def _office(self, code: str) -> Office | None:
        d = division(code)
        if d is None:
            return None
        o = self.offices.by_code.get(code)
        prov = "chongqing" if d.province == CHONGQING else "sichuan"
        if o is None:
            return Office(code, d.full_name, d.level, prov, None, missing=("center not in legal_aid_offices.yaml",))
        return Office(code, d.full_name, d.level, prov, o.name, o.address, o.phone, o.hours, o.appointment_center,
                      o.partner, tuple(o.missing()))

    def locate(self, places: tuple[str, ...]) -> tuple[Office, ...]:
        """Each place's own center (a county's, or a city's), then the level above when the county's center
        is not in the data: the caller always gets somewhere to go."""
        out: list[Office] = []
        for p in places:
            code = self.city_codes.get(p, p)
            d = division(code)
            if d is None:
                continue
            chain = [code]
            if d.level == "county":
                chain.append(d.parent)
            for c in chain:
                o = self._office(c)
                if o and o.code not in {x.code for x in out}:
                    out.append(o)
                if o and o.name:
                    break
        return tuple(out)


@dataclass(frozen=True)
class PreScreen:
    eligibility: Eligibility
    rule: str                          # which rule decided it
    source: str                        # and where that rule comes from (title and article)
    article: str
    verified: bool                     # false: only a secondary report supports the deciding rule
    explanation: str
    documents: tuple[str, ...]
    jurisdiction: Jurisdiction
    notes: tuple[Citation, ...] = ()   # further rules the caller should hear (duty lawyer, provide-first, ...)
    provide_first: bool = False        # art. 44: the center may act before the papers are complete
    threshold: float | None = None     # yuan per person per month, when the means test applied
    per_capita_income: float | None = None
    standards_year: int | None = None
    note: str = ""                     # our explanation of the deciding rule (not the article's words)


class FactsError(ValueError):
    """Facts that cannot be screened (negative income, household of zero, ...): a 400, not a guess."""


class StandardsMissing(LookupError):
    """The year's hardship figures are not in config/legal_aid.yaml: operators must add them."""

    def __init__(self, year: int, have: list[str]):
        self.year = year
        super().__init__(f"no hardship standards for {year} in config/legal_aid.yaml (have {', '.join(have)}): "
                         f"the means test cannot be run until an operator adds {year}'s 低保 and minimum-wage "
                         f"figures (docs/legal-aid.md)")


def standards_due(rules: LegalAidRules, today) -> list[tuple[int, str, str]]:
    """Years whose hardship figures operators must add now, as (year, "missing" | "due", why): the current
    year when missing (means tests are refused), and from 1 December next year's (due on 1 January)."""
    out = []
    if str(today.year) not in rules.standards:
        out.append((today.year, "missing", f"no hardship standards for {today.year} in config/legal_aid.yaml: means tests "
                                f"are refused until an operator adds them (docs/legal-aid.md)"))
    if today.month == 12 and str(today.year + 1) not in rules.standards:
        out.append((today.year + 1, "due", f"no hardship standards for {today.year + 1} in config/legal_aid.yaml: add "
                                    f"them before 1 January (docs/legal-aid.md)"))
    return out


def cite(rules: LegalAidRules, rule_id: str) -> Citation:
    r = rules.rules[rule_id]
    return Citation(rule_id, rules.cite(rule_id), r.article, r.verified, r.text, r.note)


# ---- the rules, in the order they decide


def _validate_facts(f: Facts, rules: LegalAidRules) -> None:
    if f.household_size is not None and f.household_size < 1:
        raise FactsError("household_size must be at least 1")
    if f.household_monthly_income is not None and f.household_monthly_income < 0:
        raise FactsError("household_monthly_income cannot be negative")
    if f.age is not None and not 0 <= f.age <= 130:
        raise FactsError("age must be between 0 and 130")
    if f.limitation_days_left is not None and f.limitation_days_left < 0:
        raise FactsError("limitation_days_left cannot be negative (the period has run out: say so to the caller)")
    if f.residence not in (None, "urban", "rural"):
        raise FactsError("residence must be urban or rural")
    unknown = set(f.groups) - set(rules.groups)
    if unknown:
        raise FactsError(f"unknown groups {sorted(unknown)}; known: {sorted(rules.groups)}")


def hardship_threshold(city: str, year: int, rules: LegalAidRules,
                       residence: Residence | None = None) -> tuple[float, Citation, str]:
    """Monthly income per household member under which a household counts as in hardship, the rule,
    and how the figure was chosen. Raises StandardsMissing when the year has no figures."""
    rule = rules.hardship.cities.get(city, rules.hardship.default)
    figures = rules.standards.get(str(year))
    if figures is None:
        raise StandardsMissing(year, sorted(rules.standards))
    how = f"{year}年标准" + ("" if figures.verified else "（数额未核实）")
    if rule.basis == "minimum_wage":
        table, how = figures.minimum_wage, how + "，最低工资标准"
    elif residence == "rural":
        table, how = figures.dibao_rural, how + "，农村低保标准"
    else:
        # residence unknown: the urban line, the higher one, so nobody is turned away on a guess
        table = figures.dibao_urban
        how += "，城市低保标准" if residence == "urban" else "，城乡未明按城市低保标准（较高）估算，请问明户籍或居住地"
    return round(table.get(city, table["default"]) * rule.multiple, 2), cite(rules, rule.rule), how


def _criminal_mandatory(f: Facts) -> str | None:
    if f.compulsory_medical:
        return "art28_compulsory_medical"
    if (f.facing_life_or_death or (f.age is not None and f.age < 18) or f.blind_deaf_mute
            or f.mental_illness_limited_control or f.death_penalty_review or f.tried_in_absentia):
        return "art25_mandatory"
    return None


def screen(f: Facts, rules: LegalAidRules, current_year: int | None = None,
           directory: Directory | None = None) -> PreScreen:
    """The pre-screen. `current_year` comes from the clock of the caller (the API); a means test for a
    year without figures raises StandardsMissing. With a directory the jurisdiction names the centers."""
    _validate_facts(f, rules)
    year = f.year or current_year
    where = jurisdiction(f.matter, f.places, rules, directory)
    notes: list[Citation] = []
    if any(o.province == "chongqing" for o in where.offices):
        notes.append(cite(rules, "sc_chuanyu"))
    provide_first = (f.limitation_days_left is not None and f.limitation_days_left < 7) or f.urgent_preservation
    if provide_first:
        notes.append(cite(rules, "art44_provide_first"))
    criminal = f.matter == "criminal_defence"
    if criminal and not f.has_lawyer:
        notes.append(cite(rules, "art30_duty_lawyer"))

    def result(elig: Eligibility, rule: str, docs_kind: str, **kw) -> PreScreen:
        c = cite(rules, rule)
        docs = list(rules.documents.always)
        docs += {"hardship": rules.documents.hardship, "group": rules.documents.group}.get(docs_kind, [])
        docs += rules.documents.matters.get(f.matter, [])
        told = [n for n in notes if n != c]     # the deciding rule is the answer, not repeated as a note
        if docs_kind == "hardship":
            # the caller is to show hardship: how (art. 41: a written statement the center checks) and
            # Sichuan's online check through civil-affairs and human-resources data (unverified)
            told += [cite(rules, "art41_declaration"), cite(rules, "sc_online_check")]
        return PreScreen(elig, rule, c.source, c.article, c.verified, c.text, tuple(docs), where,
                         tuple(told), provide_first, note=c.note, **kw)

    # 1. criminal cases: some defendants must be given a defender, without application or means test
    if criminal and not f.has_lawyer:
        mandatory = _criminal_mandatory(f)
        if mandatory:
            return result("likely", mandatory, "none")
        if f.ordinary_procedure:
            # Sichuan: the court SHALL notify (unverified); elsewhere the national "may" (full coverage)
            return result("likely", "sc_court_shall_notify", "none")
    # 2. not subject to the means test at all (art. 32, Sichuan's list), then not checked (art. 42)
    if f.matter in rules.abuse_matters:   # the matter is the proof: police records, injuries (matter documents)
        return result("likely", "art32_abuse_victim", "none")
    for effect in ("no_means_test", "no_check"):
        for g in sorted(f.groups):
            grp = rules.groups[g]
            if grp.effect == effect and (not grp.matters or f.matter in grp.matters):
                return result("likely", grp.rule, "group")
    # 3. matters outside art. 31's list: Sichuan lifted the limit (or the center reviews)
    if f.matter == "other":
        if rules.unlisted_matters == "review":
            return result("needs_review", "art31_matters", "hardship")
        notes.append(cite(rules, "sc_no_matter_limit"))
    # 4. the means test, by the caller's city, residence and year
    if year is None:
        raise FactsError("year: no standards year given and no current year known")
    threshold, rule, how = hardship_threshold(f.city, year, rules, f.residence)
    notes.append(Citation(rule.rule, rule.source, rule.article, rule.verified, f"{rule.text}（{how}）"))
    decide = "art24_criminal_hardship" if criminal else rule.rule
    # a defendant without a lawyer is never simply "not eligible": art. 25 para. 2 (the court may notify a
    # defender) covers ordinary procedure only; tried otherwise (summary, fast-track), the duty lawyer (art. 30)
    fallback = "art30_duty_lawyer" if f.ordinary_procedure is False else "art25_full_coverage"
    kw = dict(threshold=threshold, standards_year=year)
    if f.household_size is None or f.household_monthly_income is None:
        if criminal:
            return result("needs_review", fallback, "hardship", **kw)
        return result("needs_review", decide, "hardship", **kw)
    per_capita = round(f.household_monthly_income / f.household_size, 2)
    if per_capita < threshold:
        return result("likely", decide, "hardship", per_capita_income=per_capita, **kw)
    if criminal:
        return result("needs_review", fallback, "none", per_capita_income=per_capita, **kw)
    return result("not", decide, "hardship", per_capita_income=per_capita, **kw)


def jurisdiction(matter: str, places: Places, rules: LegalAidRules, directory: Directory | None = None) -> Jurisdiction:
    """Which legal-aid office(s) the caller applies to (art. 38; art. 39 for the detained): the
    case-handling organ for litigation, else the dispute-handling organ or where the matter arose, then
    the matter's older per-matter places. Places not known are left out; none known gives an empty
    list and the basis to ask about."""
    j = rules.jurisdiction
    steps = []
    if matter == "criminal_defence" and places.detention:
        steps.append(j.detained)
    if places.court:
        steps.append(j.litigation)
    elif places.handling_organ or places.act:
        steps.append(j.non_litigation)
    if matter in j.matters:
        steps.append(j.matters[matter])
    seen: list[str] = []
    for step in steps:
        for k in step.places:
            c = getattr(places, k)
            if c and c not in seen:
                seen.append(c)
    first = next((s for s in steps if any(getattr(places, k) for k in s.places)), None)
    offices = directory.locate(tuple(seen)) if directory else ()
    if first is None:
        if matter in j.matters:
            m = j.matters[matter]
            return Jurisdiction((), _place_basis(m, rules), verified=bool(m.verified))
        return Jurisdiction((), rules.rules["art38_non_litigation"].text + "；诉讼事项：" + rules.rules["art38_litigation"].text,
                            verified=rules.rules["art38_non_litigation"].verified and rules.rules["art38_litigation"].verified)
    if first.rule:
        return Jurisdiction(tuple(seen), f"{rules.cite(first.rule)}：{rules.rules[first.rule].text}", first.rule,
                            offices, rules.rules[first.rule].verified)
    return Jurisdiction(tuple(seen), _place_basis(first, rules), "", offices, bool(first.verified))


def _place_basis(p, rules: LegalAidRules) -> str:
    """A per-matter place rule as the answer shows it: source and article (unverified said so), then the text."""
    return f"{rules.cite_source(p.source, p.article, bool(p.verified))}：{p.basis}"
