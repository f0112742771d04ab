"""The legal-aid pre-screen, table-driven: every eligibility and jurisdiction rule of DESIGN §5 has a
case that hits it, and two cities answer differently for the same household. One case per article of
the law: tests/unit/test_legal_aid_law.py."""
from pathlib import Path

import pytest

from core.config import ConfigError
from backoffice.legal_aid import Facts, FactsError, Places, StandardsMissing, hardship_threshold
from backoffice.legal_aid import jurisdiction as _jurisdiction, screen as _screen
from core.config import load_config
from tests.config_tree import copy_tree

ROOT = Path(__file__).resolve().parents[2]
RULES = load_config(ROOT).legal_aid


def screen(facts, rules, current_year=2026):
    return _screen(facts, rules, current_year=current_year)


def jurisdiction(matter, places):
    return _jurisdiction(matter, places, RULES)


@pytest.mark.parametrize("facts, eligibility, rule", [
    # criminal: appointed defence, no application, no means test
    (Facts("leshan", "criminal_defence", facing_life_or_death=True), "likely", "art25_mandatory"),
    (Facts("leshan", "criminal_defence", age=16), "likely", "art25_mandatory"),
    (Facts("leshan", "criminal_defence", blind_deaf_mute=True), "likely", "art25_mandatory"),
    (Facts("leshan", "criminal_defence", mental_illness_limited_control=True), "likely", "art25_mandatory"),
    # an adult above the hardship line without a lawyer: the court-notified route and the duty lawyer,
    # never "not eligible"
    (Facts("leshan", "criminal_defence", age=40, household_size=1, household_monthly_income=5000), "needs_review",
     "art25_full_coverage"),
    # groups with no means test, whatever the income
    (Facts("leshan", "maintenance", groups=frozenset({"five_guarantees"}), household_size=1,
           household_monthly_income=9000), "likely", "sc2016_no_income_proof"),
    (Facts("leshan", "labour_dispute", groups=frozenset({"unemployment_benefit"})), "likely",
     "sc2016_no_income_proof"),
    (Facts("leshan", "social_insurance", groups=frozenset({"minimum_pension"})), "likely", "sc2016_no_income_proof"),
    (Facts("leshan", "civil_litigation", groups=frozenset({"disaster"})), "likely", "sc2016_no_income_proof"),
    (Facts("leshan", "traffic", groups=frozenset({"severe_disability_no_income"})), "likely",
     "art42_no_income_minor_elderly_disabled"),
    # migrant workers: wages and work injury only
    (Facts("chengdu", "wage_arrears", groups=frozenset({"migrant_worker"})), "likely", "art42_migrant_worker"),
    (Facts("chengdu", "work_injury", groups=frozenset({"migrant_worker"})), "likely", "art42_migrant_worker"),
    (Facts("chengdu", "traffic", groups=frozenset({"migrant_worker"})), "needs_review", "cd2017_minimum_wage"),
    # the means test
    (Facts("leshan", "maintenance", household_size=4, household_monthly_income=4000), "likely", "sc2016_dibao_double"),
    (Facts("leshan", "maintenance", household_size=2, household_monthly_income=4000), "not", "sc2016_dibao_double"),
    (Facts("leshan", "maintenance"), "needs_review", "sc2016_dibao_double"),
    # outside the listed matters: Sichuan lifted the scope limit, so the means test decides
    (Facts("leshan", "other", household_size=1, household_monthly_income=100), "likely", "sc2016_dibao_double"),
])
def test_eligibility_rules(facts, eligibility, rule):
    r = screen(facts, RULES)
    assert (r.eligibility, r.rule) == (eligibility, rule)
    assert r.source and r.documents[0].startswith("身份证明")


def test_two_cities_answer_differently_for_the_same_household():
    """3 people on 5,400 yuan a month = 1,800 each: under Chengdu's minimum wage (2,100), over twice
    Leshan's minimum living allowance (2 x 780 = 1,560)."""
    household = dict(matter="maintenance", household_size=3, household_monthly_income=5400)
    chengdu, leshan = screen(Facts("chengdu", **household), RULES), screen(Facts("leshan", **household), RULES)
    assert (chengdu.eligibility, chengdu.threshold, chengdu.per_capita_income) == ("likely", 2100, 1800)
    assert (leshan.eligibility, leshan.threshold) == ("not", 1560)
    assert "最低工资" in chengdu.explanation and "2倍" in leshan.explanation
    # a city without its own figures uses the province default
    assert hardship_threshold("meishan", 2026, RULES)[0] == 1600


@pytest.mark.parametrize("matter, places, expected", [
    # art. 38: where the matter arose comes first, then the older per-matter place
    ("maintenance", Places(respondent_domicile="meishan", act="leshan"), ("leshan", "meishan")),
    ("social_insurance", Places(obligated_authority="leshan"), ("leshan",)),
    ("pension_relief", Places(obligated_authority="leshan"), ("leshan",)),
    ("state_compensation", Places(compensating_authority="chengdu"), ("chengdu",)),
    ("domestic_violence", Places(act="leshan", respondent_residence="meishan"), ("leshan", "meishan")),
    ("traffic", Places(act="leshan", respondent_domicile="chengdu"), ("leshan", "chengdu")),
    ("medical", Places(act="chengdu", respondent_domicile="chengdu"), ("chengdu",)),
    ("work_injury", Places(act="leshan"), ("leshan",)),
    ("food_drug", Places(respondent_domicile="meishan"), ("meishan",)),
    ("pollution", Places(act="leshan", respondent_domicile="meishan"), ("leshan", "meishan")),
    ("fake_agri_inputs", Places(act="meishan", applicant_residence="leshan"), ("meishan", "leshan")),
    ("labour_dispute", Places(respondent_residence="chengdu", contract_performance="leshan"), ("chengdu", "leshan")),
    ("wage_arrears", Places(contract_performance="leshan"), ("leshan",)),
    ("civil_litigation", Places(court="chengdu", act="leshan"), ("chengdu",)),
    ("criminal_defence", Places(detention="leshan", court="chengdu"), ("leshan", "chengdu")),
    ("maintenance", Places(applicant_residence="leshan"), ()),   # no deciding place known yet: ask
])
def test_jurisdiction_rules(matter, places, expected):
    j = jurisdiction(matter, places)
    assert j.cities == expected and j.basis


def test_documents_follow_the_rule_and_the_matter():
    r = screen(Facts("leshan", "traffic", household_size=1, household_monthly_income=100), RULES)
    assert "交通事故认定书" in r.documents and any("经济困难" in d for d in r.documents)
    r = screen(Facts("chengdu", "wage_arrears", groups=frozenset({"migrant_worker"})), RULES)
    assert "欠条或工资单" in r.documents and not any("经济困难" in d for d in r.documents)


@pytest.mark.parametrize("facts, message", [
    (Facts("leshan", "maintenance", household_size=2, household_monthly_income=-1), "cannot be negative"),
    (Facts("leshan", "maintenance", household_size=0, household_monthly_income=100), "at least 1"),
    (Facts("leshan", "maintenance", groups=frozenset({"vip"})), "unknown groups"),
])
def test_bad_facts_are_refused_with_a_reason(facts, message):
    with pytest.raises(FactsError, match=message):
        screen(facts, RULES)
    with pytest.raises(StandardsMissing, match="no hardship standards for 1999"):
        screen(Facts("leshan", "maintenance", household_size=1, household_monthly_income=1, year=1999), RULES)


def test_rule_file_errors_name_the_file_and_field(tmp_path):
    tree = copy_tree(tmp_path)
    path = tree / "config" / "legal_aid.yaml"
    text = path.read_text()
    path.write_text(text.replace("multiple: 2\n", "multiple: -2\n", 1))
    with pytest.raises(ConfigError, match=r"legal_aid.yaml: hardship.default.multiple"):
        load_config(tree)
    path.write_text(text.replace("  cities:\n    chengdu:", "  cities:\n    atlantis:", 1))
    with pytest.raises(ConfigError, match="hardship.cities: unknown city 'atlantis'"):
        load_config(tree)


@pytest.mark.parametrize("body, message", [
    ({"city": "leshan", "matter": "divorce"}, "matter must be one of"),
    ({"city": "atlantis", "matter": "traffic"}, "city: unknown city 'atlantis'"),
    ({"city": "leshan", "matter": "traffic", "places": {"act": "nowhere"}}, "places.act: unknown city"),
    ({"city": "leshan", "matter": "traffic", "places": {"moon": "leshan"}}, "places must be an object"),
    ({"city": "leshan", "matter": "traffic", "household_size": "3"}, "household_size must be an integer"),
    ({"city": "leshan", "matter": "traffic", "household_monthly_income": "lots"}, "must be a number"),
    ({"city": "leshan", "matter": "traffic", "salary": 1}, "unknown fields"),
    ({"city": "leshan", "matter": "traffic", "groups": "migrant_worker"}, "groups must be a list"),
])
def test_prescreen_request_validation(body, message):
    from dashboard.routes.legal_aid import prescreen_facts
    with pytest.raises(ValueError, match=message):
        prescreen_facts(body, {"leshan", "chengdu"})


def test_prescreen_request_becomes_facts():
    from dashboard.routes.legal_aid import prescreen_facts
    f = prescreen_facts({"city": "chengdu", "matter": "wage_arrears", "groups": ["migrant_worker"],
                         "places": {"contract_performance": "leshan"}}, {"leshan", "chengdu"})
    r = screen(f, RULES)
    assert r.eligibility == "likely" and r.jurisdiction.cities == ("leshan",)
