"""Legal-aid pre-screen: who is likely eligible, on which rule, what to bring, and which office has
jurisdiction. Pure, typed functions over the rule data in config/legal_aid.yaml (DESIGN §5).

The agent runs it with the caller; the answer is advice for the caller, never a decision: the
legal-aid office decides. So "needs_review" is an honest outcome when the facts do not settle it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from core.config import LegalAidRules, Matter

Eligibility = Literal["likely", "not", "needs_review"]


# ---- the caller's facts


@dataclass(frozen=True)
class Places:
    """Where things are, as city ids; what jurisdiction needs depends on the matter."""
    act: str = ""                      # where the harm or act happened
    respondent_domicile: str = ""
    respondent_residence: str = ""
    applicant_residence: str = ""
    obligated_authority: str = ""      # the authority that owes the benefit
    compensating_authority: str = ""   # state compensation
    contract_performance: str = ""     # labour contracts
    court: str = ""                    # the court hearing the case
    detention: str = ""                # where a suspect is held


@dataclass(frozen=True)
class Facts:
    city: str                          # the caller's city (whose standards apply)
    matter: Matter
    household_size: int | None = None
    household_monthly_income: float | None = None   # yuan
    groups: frozenset[str] = frozenset()            # ids from no_means_test, plus "migrant_worker"
    age: int | None = None
    facing_life_or_death: bool = False
    blind_deaf_mute: bool = False
    mental_illness_limited_control: bool = False
    places: Places = field(default_factory=Places)
    year: int = 2026


@dataclass(frozen=True)
class Jurisdiction:
    cities: tuple[str, ...]            # candidate cities' legal-aid offices, in order
    basis: str


@dataclass(frozen=True)
class PreScreen:
    eligibility: Eligibility
    rule: str                          # which rule decided it
    source: str                        # and where that rule comes from
    documents: tuple[str, ...]
    jurisdiction: Jurisdiction
    threshold: float | None = None     # yuan per person per month, when the means test applied
    per_capita_income: float | None = None


class FactsError(ValueError):
    """Facts that cannot be screened (negative income, household of zero, ...): a 400, not a guess."""


# ---- the rules, in the order they decide


def _validate_facts(f: Facts, rules: LegalAidRules) -> None:
    if f.household_size is not None and f.household_size < 1:
        raise FactsError("household_size must be at least 1")
    if f.household_monthly_income is not None and f.household_monthly_income < 0:
        raise FactsError("household_monthly_income cannot be negative")
    if f.age is not None and not 0 <= f.age <= 130:
        raise FactsError("age must be between 0 and 130")
    unknown = set(f.groups) - set(rules.no_means_test) - {"migrant_worker"}
    if unknown:
        raise FactsError(f"unknown groups {sorted(unknown)}; known: {sorted(rules.no_means_test) + ['migrant_worker']}")


def hardship_threshold(city: str, year: int, rules: LegalAidRules) -> tuple[float, str]:
    """Monthly income per household member under which a household counts as in hardship."""
    rule = rules.hardship.cities.get(city, rules.hardship.default)
    figures = rules.standards.get(str(year))
    if figures is None:
        raise FactsError(f"no hardship standards for {year} (have {sorted(rules.standards)})")
    table = figures.dibao if rule.basis == "dibao_multiple" else figures.minimum_wage
    return round(table.get(city, table["default"]) * rule.multiple, 2), rule.source


def screen(f: Facts, rules: LegalAidRules) -> PreScreen:
    _validate_facts(f, rules)
    where = jurisdiction(f.matter, f.places)

    def result(elig: Eligibility, rule: str, source: str, means_test: bool, **kw) -> PreScreen:
        docs = list(rules.documents.always)
        docs += rules.documents.hardship if means_test else rules.documents.group if rule != "criminal_appointed" else []
        docs += rules.documents.matters.get(f.matter, [])
        return PreScreen(elig, rule, source, tuple(docs), where, **kw)

    # 1. criminal cases: defence is appointed, without application or means test
    if f.matter == "criminal_defence":
        if f.facing_life_or_death or (f.age is not None and f.age < 18) or f.blind_deaf_mute \
                or f.mental_illness_limited_control:
            return result("likely", "criminal_appointed", "法律援助法 第25条：可能被判处无期徒刑、死刑的人，未成年人，"
                          "视力、听力、言语残疾人，不能完全辨认自己行为的成年人，应当指派律师辩护", False)
    # 2. groups with no means test
    exempt = sorted(set(f.groups) & set(rules.no_means_test))
    if exempt:
        g = exempt[0]
        return result("likely", f"no_means_test:{g}", f"法律援助法 第32条 / 四川省规定：{rules.no_means_test[g]}免予核查经济困难状况", False)
    if "migrant_worker" in f.groups and f.matter in rules.migrant_worker_matters:
        return result("likely", "migrant_worker_wages_injury", "农民工请求支付劳动报酬或者工伤赔偿的，不受经济困难条件限制", False)
    # 3. the matter must be one legal aid covers (civil and administrative matters, art. 31)
    if f.matter == "other":
        return result("needs_review", "matter_not_listed", "法律援助法 第31条所列事项之外：由法律援助机构审查", True)
    # 4. the means test, by the caller's city and year
    threshold, source = hardship_threshold(f.city, f.year, rules)
    if f.household_size is None or f.household_monthly_income is None:
        return result("needs_review", "means_unknown", source, True, threshold=threshold)
    per_capita = round(f.household_monthly_income / f.household_size, 2)
    if per_capita < threshold:
        return result("likely", "economic_hardship", source, True, threshold=threshold, per_capita_income=per_capita)
    return result("not", "above_hardship_standard", source, True, threshold=threshold, per_capita_income=per_capita)


# matter -> (which places, in order; the legal basis)
JURISDICTION: dict[str, tuple[tuple[str, ...], str]] = {
    "maintenance": (("respondent_domicile",), "请求给付赡养费、抚养费、扶养费：被请求人住所地"),
    "social_insurance": (("obligated_authority",), "请求社会保险待遇、最低生活保障：义务机关所在地"),
    "pension_relief": (("obligated_authority",), "请求发给抚恤金、救济金：义务机关所在地"),
    "state_compensation": (("compensating_authority",), "请求国家赔偿：赔偿义务机关所在地"),
    "domestic_violence": (("act", "respondent_residence"), "家庭暴力、虐待、遗弃：侵权行为地或被请求人住所地"),
    "traffic": (("act", "respondent_domicile"), "交通事故：侵权行为地或被请求人住所地"),
    "medical": (("act", "respondent_domicile"), "医疗损害：侵权行为地或被请求人住所地"),
    "work_injury": (("act", "respondent_domicile"), "工伤事故：侵权行为地或被请求人住所地"),
    "food_drug": (("act", "respondent_domicile"), "食品药品安全事故：侵权行为地或被请求人住所地"),
    "pollution": (("act", "respondent_domicile"), "环境污染：侵权行为地或被请求人住所地"),
    "fake_agri_inputs": (("act", "applicant_residence"), "假冒伪劣农药、化肥、种子：侵权行为地或申请人住所地"),
    "labour_dispute": (("respondent_residence", "contract_performance"), "劳动争议：被请求人住所地或劳动合同履行地"),
    "wage_arrears": (("respondent_residence", "contract_performance"), "请求支付劳动报酬：被请求人住所地或劳动合同履行地"),
    "civil_litigation": (("court",), "民事诉讼：审理案件的人民法院所在地"),
    "criminal_defence": (("detention", "court"), "刑事案件：羁押的通过看守所转交，否则办案机关所在地"),
}


def jurisdiction(matter: str, places: Places) -> Jurisdiction:
    """Which legal-aid office(s) the caller applies to (法律援助法 第42条 and Sichuan practice).
    Places not known are left out; none known gives an empty list and the basis to ask about."""
    keys, basis = JURISDICTION.get(matter, ((), "由法律援助机构审查确定"))
    seen: list[str] = []
    for k in keys:
        c = getattr(places, k)
        if c and c not in seen:
            seen.append(c)
    return Jurisdiction(tuple(seen), basis)
