"""The pre-screen against the law, one case per article it applies: the expected answer, the rule that
decides it and the source and article that rule cites (config/legal_aid.yaml, docs/legal-aid.md).
Legal Aid Law (法律援助法, in force 2022-01-01) arts. 24, 25, 28, 30, 31, 32, 38, 39, 42, 44; Sichuan's
Legal Aid Regulation (2025-01-01, known from a news report: unverified); the seeds' local standards."""
from pathlib import Path

import pytest

from backoffice.legal_aid import Facts, Places, StandardsMissing, hardship_threshold, jurisdiction, screen
from core.config import load_config

ROOT = Path(__file__).resolve().parents[2]
RULES = load_config(ROOT).legal_aid
LAW = "中华人民共和国法律援助法"
SC = "四川省法律援助条例"
YEAR = 2026
RICH = dict(household_size=1, household_monthly_income=20000)     # far above any hardship line


def g(*ids):
    return frozenset(ids)


# (facts, eligibility, rule, source title, article, verified)
CASES = [
    # art. 25 para. 1: mandatory defenders, each item
    (Facts("leshan", "criminal_defence", age=16), "likely", "art25_mandatory", LAW, "第25条第1款", False),
    (Facts("leshan", "criminal_defence", blind_deaf_mute=True), "likely", "art25_mandatory", LAW, "第25条第1款", False),
    (Facts("leshan", "criminal_defence", mental_illness_limited_control=True), "likely", "art25_mandatory", LAW,
     "第25条第1款", False),
    (Facts("leshan", "criminal_defence", facing_life_or_death=True, **RICH), "likely", "art25_mandatory", LAW,
     "第25条第1款", False),
    (Facts("leshan", "criminal_defence", death_penalty_review=True), "likely", "art25_mandatory", LAW,
     "第25条第1款", False),
    (Facts("leshan", "criminal_defence", tried_in_absentia=True), "likely", "art25_mandatory", LAW,
     "第25条第1款", False),
    # art. 25 para. 2 (full coverage): an adult without a lawyer is never simply "not eligible"
    (Facts("leshan", "criminal_defence", age=40, **RICH), "needs_review", "art25_full_coverage", LAW,
     "第25条第2款", False),
    # summary procedure (简易程序), above the line: art. 25 para. 2 covers ordinary procedure only; the answer
    # rests on art. 30, the duty lawyer (值班律师)
    (Facts("leshan", "criminal_defence", age=40, ordinary_procedure=False, **RICH), "needs_review",
     "art30_duty_lawyer", LAW, "第30条", False),
    # Sichuan: the court SHALL notify in ordinary procedure (news report only)
    (Facts("leshan", "criminal_defence", age=40, ordinary_procedure=True, **RICH), "likely",
     "sc_court_shall_notify", SC, "条号待核", False),
    # art. 28: compulsory medical treatment
    (Facts("chengdu", "criminal_defence", compulsory_medical=True, **RICH), "likely", "art28_compulsory_medical",
     LAW, "第28条", False),
    # art. 24: a defendant in hardship applies
    (Facts("leshan", "criminal_defence", age=40, household_size=4, household_monthly_income=2000), "likely",
     "art24_criminal_hardship", LAW, "第24条", False),
    # art. 32: never means-tested, items 1-4 (and a domestic-violence matter is item 4 by itself)
    (Facts("leshan", "civil_litigation", groups=g("hero_martyr_relative"), **RICH), "likely", "art32_hero_martyr",
     LAW, "第32条第1项", True),
    (Facts("leshan", "civil_litigation", groups=g("good_samaritan"), **RICH), "likely", "art32_good_samaritan", LAW,
     "第32条第2项", True),
    (Facts("leshan", "state_compensation", groups=g("retrial_acquitted"), **RICH), "likely",
     "art32_retrial_compensation", LAW, "第32条第3项", True),
    (Facts("leshan", "maintenance", groups=g("abuse_victim"), **RICH), "likely", "art32_abuse_victim", LAW,
     "第32条第4项", True),
    (Facts("leshan", "domestic_violence", **RICH), "likely", "art32_abuse_victim", LAW, "第32条第4项", True),
    # art. 42: exempt from checking, items 1-3
    (Facts("leshan", "maintenance", groups=g("elderly_no_income")), "likely",
     "art42_no_income_minor_elderly_disabled", LAW, "第42条第1项", True),
    (Facts("leshan", "maintenance", groups=g("minor_no_income")), "likely",
     "art42_no_income_minor_elderly_disabled", LAW, "第42条第1项", True),
    (Facts("leshan", "traffic", groups=g("severe_disability_no_income")), "likely",
     "art42_no_income_minor_elderly_disabled", LAW, "第42条第1项", True),
    (Facts("leshan", "social_insurance", groups=g("social_assistance")), "likely", "art42_assistance_recipient",
     LAW, "第42条第2项", True),
    (Facts("leshan", "civil_litigation", groups=g("judicial_assistance")), "likely", "art42_assistance_recipient",
     LAW, "第42条第2项", True),
    (Facts("leshan", "pension_relief", groups=g("special_care")), "likely", "art42_assistance_recipient", LAW,
     "第42条第2项", True),
    (Facts("chengdu", "wage_arrears", groups=g("migrant_worker")), "likely", "art42_migrant_worker", LAW,
     "第42条第3项", True),
    (Facts("chengdu", "work_injury", groups=g("migrant_worker")), "likely", "art42_migrant_worker", LAW,
     "第42条第3项", True),
    # Sichuan's regulation: the groups the news report names, split from the old `military`
    (Facts("leshan", "civil_litigation", groups=g("military_family"), **RICH), "likely", "sc_no_means_test_groups",
     SC, "条号待核", False),
    (Facts("leshan", "civil_litigation", groups=g("martyr_survivor"), **RICH), "likely", "sc_no_means_test_groups",
     SC, "条号待核", False),
    (Facts("leshan", "civil_litigation", groups=g("police_fire_survivor"), **RICH), "likely",
     "sc_no_means_test_groups", SC, "条号待核", False),
    (Facts("leshan", "civil_litigation", groups=g("special_minor"), **RICH), "likely", "sc_no_means_test_groups",
     SC, "条号待核", False),
    # Sichuan's 2016 opinion (seed 000): no proof of low income
    (Facts("leshan", "maintenance", groups=g("five_guarantees")), "likely", "sc2016_no_income_proof",
     "四川省《关于完善法律援助制度的实施意见》", "条号待核", False),
    # art. 31 + Sichuan: a matter outside the list goes to the means test (no scope limit)
    (Facts("leshan", "other", household_size=1, household_monthly_income=100), "likely", "sc2016_dibao_double",
     "四川省《关于完善法律援助制度的实施意见》", "条号待核", False),
    # the means test: Sichuan 2x 低保, Chengdu the minimum wage (seed 003, a draft: unverified)
    (Facts("leshan", "maintenance", household_size=2, household_monthly_income=4000), "not", "sc2016_dibao_double",
     "四川省《关于完善法律援助制度的实施意见》", "条号待核", False),
    (Facts("chengdu", "maintenance", household_size=3, household_monthly_income=5400), "likely",
     "cd2017_minimum_wage", "成都市关于完善法律援助制度的实施意见", "第1条", False),
]


@pytest.mark.parametrize("facts, eligibility, rule, title, article, verified", CASES,
                         ids=[f"{c[2]}-{i}" for i, c in enumerate(CASES)])
def test_every_article(facts, eligibility, rule, title, article, verified):
    r = screen(facts, RULES, current_year=YEAR)
    assert (r.eligibility, r.rule, r.article, r.verified) == (eligibility, rule, article, verified)
    assert r.source.startswith(title) and r.explanation
    assert r.source.endswith("（未核实）") == (not verified)     # the answer says it when unverified


def test_every_rule_cites_a_source_and_an_article():
    for rid, rule in RULES.rules.items():
        assert rule.source in RULES.sources and rule.article and rule.text, rid
        # verified only against a verified source; the law's rules not compared say why
        assert not rule.verified or RULES.sources[rule.source].verified, rid
        assert rule.verified or not RULES.sources[rule.source].verified or rule.reason, rid
    # only the national law's text is checked; the Sichuan regulation rests on a news report
    assert RULES.sources["law"].verified and not RULES.sources["sc_regulation"].verified
    assert all(not r.verified for r in RULES.rules.values() if r.source == "sc_regulation")
    assert "military" not in RULES.groups      # 军人军属 and 英烈近亲属 are separate now
    # the per-matter place rules (seed 000's older practice) cite it like the rules do: unverified
    j = RULES.jurisdiction
    for kind in ("litigation", "non_litigation", "detained"):
        assert getattr(j, kind).rule in RULES.rules, kind
    assert j.matters
    for matter, place in j.matters.items():
        assert not place.rule and place.source == "seed_000" and place.article and place.basis, matter
        assert place.verified is False and not RULES.sources[place.source].verified, matter
    # every source is cited by something (an unused one only looks like support)
    used = {r.source for r in RULES.rules.values()} | {p.source for p in j.matters.values()}
    assert used == set(RULES.sources)
    assert "migrant_opinion_2006" not in RULES.sources    # quoted in seed 000, never applied: art. 42(3) is


def test_place_rule_without_a_citation_is_refused():
    from pydantic import ValidationError
    data = RULES.model_dump()
    data["jurisdiction"]["matters"]["traffic"] = {"places": ["act"], "basis": "交通事故：侵权行为地"}
    with pytest.raises(ValidationError, match="jurisdiction.matters.traffic"):
        type(RULES).model_validate(data)
    data["jurisdiction"]["matters"]["traffic"] = {"places": ["act"], "basis": "交通事故：侵权行为地",
                                                  "source": "seed_000", "article": "访谈", "verified": True}
    with pytest.raises(ValidationError, match="verified, but its source 'seed_000' is not"):
        type(RULES).model_validate(data)
    data = RULES.model_dump()
    data["rules"]["art24_criminal_hardship"]["reason"] = ""
    with pytest.raises(ValidationError, match="art24_criminal_hardship.*reason"):
        type(RULES).model_validate(data)


def test_per_matter_places_are_answered_with_their_seed_citation():
    j = jurisdiction("maintenance", Places(respondent_domicile="leshan"), RULES)
    assert j.cities == ("leshan",) and not j.verified and j.rule == ""
    assert j.basis.startswith("四川省司法厅2017年12月7日") and "（未核实）：" in j.basis and "被请求人住所地" in j.basis
    assert not jurisdiction("maintenance", Places(), RULES).verified       # nothing known yet: the same rule
    assert jurisdiction("traffic", Places(act="leshan"), RULES).verified is RULES.rules["art38_non_litigation"].verified


def test_rule_texts_say_only_what_the_article_says():
    """Art. 25 para. 2 and art. 30: the statute's words in `text`, our explanation (全覆盖, where the duty
    lawyer sits) in `note`; neither compared word for word with the statute, so neither is verified."""
    full, duty = RULES.rules["art25_full_coverage"], RULES.rules["art30_duty_lawyer"]
    assert full.text.startswith("其他适用普通程序审理的刑事案件") and "全覆盖" not in full.text
    assert "全覆盖" in full.note and "值班律师" in duty.text and "派驻" not in duty.text and "随时" not in duty.text
    assert "派驻" in duty.note
    for rid in ("art24_criminal_hardship", "art25_mandatory", "art25_full_coverage", "art28_compulsory_medical",
                "art30_duty_lawyer", "art41_declaration"):
        assert not RULES.rules[rid].verified and "未与" in RULES.rules[rid].reason, rid
    r = screen(Facts("leshan", "criminal_defence", age=40, **RICH), RULES, current_year=YEAR)
    assert r.rule == "art25_full_coverage" and r.explanation == full.text and r.note == full.note
    assert r.source.endswith("（未核实）")


def test_summary_procedure_rests_on_the_duty_lawyer():
    r = screen(Facts("leshan", "criminal_defence", age=40, ordinary_procedure=False, **RICH), RULES,
               current_year=YEAR)
    assert (r.eligibility, r.rule, r.article) == ("needs_review", "art30_duty_lawyer", "第30条")
    assert "值班律师" in r.explanation and "art25_full_coverage" not in [n.rule for n in r.notes]
    assert "art30_duty_lawyer" not in [n.rule for n in r.notes]     # the answer itself, not repeated as a note
    # means unknown, summary procedure: the same; in hardship: art. 24 as before; ordinary: Sichuan's "shall"
    r = screen(Facts("leshan", "criminal_defence", age=40, ordinary_procedure=False), RULES, current_year=YEAR)
    assert (r.eligibility, r.rule) == ("needs_review", "art30_duty_lawyer")
    r = screen(Facts("leshan", "criminal_defence", age=40, ordinary_procedure=False, household_size=4,
                     household_monthly_income=2000), RULES, current_year=YEAR)
    assert (r.eligibility, r.rule) == ("likely", "art24_criminal_hardship")
    # a mandatory defender (art. 25 para. 1) does not depend on the procedure
    r = screen(Facts("leshan", "criminal_defence", age=16, ordinary_procedure=False), RULES, current_year=YEAR)
    assert r.rule == "art25_mandatory"


def test_hardship_answers_tell_art41_declaration_and_sichuan_online_check():
    r = screen(Facts("leshan", "maintenance", household_size=2, household_monthly_income=1000), RULES,
               current_year=YEAR)
    by_rule = {n.rule: n for n in r.notes}
    art41, online = by_rule["art41_declaration"], by_rule["sc_online_check"]
    assert art41.source.startswith(LAW) and art41.article == "第41条第1款" and "如实说明" in art41.text
    assert "核查" in art41.text and "书面" in art41.note
    assert online.source.startswith(SC) and online.source.endswith("（未核实）") and not online.verified
    assert "民政" in online.text and "人社" in online.text and "线上核查" in online.text
    # a means test not yet done (income unknown) tells them too; a defendant's art. 24 hardship route as well
    r = screen(Facts("leshan", "maintenance"), RULES, current_year=YEAR)
    assert {"art41_declaration", "sc_online_check"} <= {n.rule for n in r.notes}
    r = screen(Facts("leshan", "criminal_defence", age=40, household_size=4, household_monthly_income=2000), RULES,
               current_year=YEAR)
    assert {"art41_declaration", "sc_online_check"} <= {n.rule for n in r.notes}
    # no hardship to show (art. 32, art. 42 groups, a rich defendant): not told
    for facts in (Facts("leshan", "domestic_violence"), Facts("leshan", "maintenance", groups=g("elderly_no_income")),
                  Facts("leshan", "criminal_defence", age=40, **RICH)):
        rules = {n.rule for n in screen(facts, RULES, current_year=YEAR).notes}
        assert not rules & {"art41_declaration", "sc_online_check"}, facts


def test_unverified_figures_are_labelled():
    """The year's 低保 and minimum-wage figures are typed in, not checked: the answer says （数额未核实）."""
    facts = Facts("leshan", "maintenance", household_size=1, household_monthly_income=100)
    assert not RULES.standards[str(YEAR)].verified
    note = next(n for n in screen(facts, RULES, current_year=YEAR).notes if n.rule == "sc2016_dibao_double")
    assert "（数额未核实）" in note.text and "（数额未核实）" in hardship_threshold("leshan", YEAR, RULES)[2]
    checked = RULES.standards[str(YEAR)].model_copy(update={"verified": True})
    rules = RULES.model_copy(update={"standards": {**RULES.standards, str(YEAR): checked}})
    note = next(n for n in screen(facts, rules, current_year=YEAR).notes if n.rule == "sc2016_dibao_double")
    assert "数额未核实" not in note.text


def test_art30_duty_lawyer_and_art44_provide_first_are_told():
    r = screen(Facts("leshan", "criminal_defence", age=40, **RICH), RULES, current_year=YEAR)
    assert r.eligibility != "not" and "art30_duty_lawyer" in [n.rule for n in r.notes]
    assert any("值班律师" in n.text for n in r.notes)
    for urgent in (dict(limitation_days_left=6), dict(urgent_preservation=True)):
        r = screen(Facts("leshan", "labour_dispute", **urgent), RULES, current_year=YEAR)
        assert r.provide_first and [n.article for n in r.notes if n.rule == "art44_provide_first"] == ["第44条"]
    assert not screen(Facts("leshan", "labour_dispute", limitation_days_left=7), RULES, current_year=YEAR).provide_first
    # a defendant with a lawyer of their own: no mandatory defender, no duty-lawyer note
    r = screen(Facts("leshan", "criminal_defence", age=16, has_lawyer=True, **RICH), RULES, current_year=YEAR)
    assert r.rule != "art25_mandatory" and "art30_duty_lawyer" not in [n.rule for n in r.notes]


def test_no_matter_limit_is_noted_and_marked_unverified():
    r = screen(Facts("leshan", "other", household_size=1, household_monthly_income=100), RULES, current_year=YEAR)
    note = next(n for n in r.notes if n.rule == "sc_no_matter_limit")
    assert not note.verified and note.source.startswith(SC)


def test_migrant_worker_exemption_is_for_wages_and_injury_only():
    r = screen(Facts("chengdu", "traffic", groups=g("migrant_worker")), RULES, current_year=YEAR)
    assert (r.eligibility, r.rule) == ("needs_review", "cd2017_minimum_wage")


def test_rural_and_urban_lines_by_residence():
    urban = hardship_threshold("leshan", YEAR, RULES, "urban")
    rural = hardship_threshold("leshan", YEAR, RULES, "rural")
    unknown = hardship_threshold("leshan", YEAR, RULES, None)
    assert urban[0] == 2 * 780 and rural[0] == 2 * 590 and unknown[0] == urban[0]
    assert "农村" in rural[2] and "城乡未明" in unknown[2]
    # 2 people on 2,800: 1,400 each — under the urban line, over the rural one
    household = dict(household_size=2, household_monthly_income=2800)
    assert screen(Facts("leshan", "maintenance", residence="urban", **household), RULES,
                  current_year=YEAR).eligibility == "likely"
    assert screen(Facts("leshan", "maintenance", residence="rural", **household), RULES,
                  current_year=YEAR).eligibility == "not"


def test_the_year_comes_from_the_caller_and_a_missing_year_is_an_error():
    facts = Facts("leshan", "maintenance", household_size=1, household_monthly_income=100)
    assert screen(facts, RULES, current_year=YEAR).standards_year == YEAR
    with pytest.raises(StandardsMissing, match="no hardship standards for 2027.*operator"):
        screen(facts, RULES, current_year=2027)
    # rules that need no figures still answer in a year without them
    assert screen(Facts("leshan", "domestic_violence"), RULES, current_year=2027).eligibility == "likely"


@pytest.mark.parametrize("matter, places, cities, rule", [
    # art. 38: litigation -> the case-handling organ; non-litigation -> the handling organ or where it arose
    ("labour_dispute", Places(court="chengdu", contract_performance="leshan"), ("chengdu", "leshan"),
     "art38_litigation"),
    ("labour_dispute", Places(handling_organ="meishan", act="leshan"), ("meishan", "leshan"), "art38_non_litigation"),
    ("traffic", Places(act="leshan", respondent_domicile="chengdu"), ("leshan", "chengdu"), "art38_non_litigation"),
    # art. 39: the detained apply through the detention center
    ("criminal_defence", Places(detention="leshan", court="chengdu"), ("leshan", "chengdu"), "art39_detained"),
])
def test_jurisdiction_articles(matter, places, cities, rule):
    j = jurisdiction(matter, places, RULES)
    assert (j.cities, j.rule) == (cities, rule)
    assert j.basis.startswith(LAW)


def test_art31_review_when_the_scope_limit_is_kept():
    """`unlisted_matters: review` (a province that keeps art. 31's list): a matter outside it goes to the
    center's review, citing art. 31."""
    rules = RULES.model_copy(update={"unlisted_matters": "review"})
    r = screen(Facts("leshan", "other", household_size=1, household_monthly_income=100), rules, current_year=YEAR)
    assert (r.eligibility, r.rule, r.article, r.verified) == ("needs_review", "art31_matters", "第31条", True)
