"""The routing workflow engine as pure functions: every rule, no Asterisk."""
from datetime import datetime, timezone

import pytest

from core.config import load_config
from core.schedule import is_open, parse_dates, parse_days, parse_span
from core.workflow import (CallFacts, QueueLive, Step, all_queues, choose_workflow, first_target,
                                 memberships, plan, plan_variants, priority, router_dialplan, skip_reason,
                                 variant_context)

CFG = load_config()


def test_mandarin_goes_city_then_neighbours_then_province():
    wf, steps = plan(CallFacts("chengdu", "zh", "consultation"), CFG)
    assert wf == "standard"
    assert steps == [Step("city", "chengdu", 60), Step("neighbours", "chengdu-near", 45), Step("province", "province", 90)]


def test_city_without_neighbours_skips_that_target():
    _, steps = plan(CallFacts("panzhihua", "zh"), CFG)
    assert [s.queue for s in steps] == ["panzhihua", "province"]


def test_tibetan_caller_reaches_tibetan_speakers_anywhere():
    wf, steps = plan(CallFacts("ganzi", "bo", "consultation"), CFG)
    assert wf == "language"
    assert [s.queue for s in steps] == ["ganzi-bo", "lang-bo", "ganzi", "province"]
    # only when no Tibetan speaker answered in time: any agent, with an interpreter conferenced in
    assert [s.interpreter for s in steps] == [False, False, True, True]
    # nobody in Garzê speaks Tibetan right now: straight to the province-wide Tibetan pool
    step, skipped = first_target(CallFacts("ganzi", "bo"), CFG, {"lang-bo": QueueLive(1, 0)})
    assert step.queue == "lang-bo" and skipped == [("ganzi-bo", "EMPTY")]


def test_green_channel_priority_and_shorter_path():
    f = CallFacts("leshan", "zh", "consultation", green="migrant_worker")
    wf, steps = plan(f, CFG)
    assert wf == "green" and priority(f, CFG) == 10
    assert sum(s.wait for s in steps) < sum(s.wait for s in plan(CallFacts("leshan", "zh"), CFG)[1])
    assert priority(CallFacts("leshan", "zh"), CFG) == 0


def test_domestic_violence_prefers_a_female_lawyer():
    wf, steps = plan(CallFacts("leshan", "zh", green="domestic_violence"), CFG)
    assert wf == "domestic_violence" and steps[0].queue == "leshan-female" and steps[1].queue == "leshan"


def test_green_and_language_combine_and_closed_wins_over_all():
    # a Tibetan-speaking 80-year-old keeps priority and gets a Tibetan speaker, else an interpreter
    f = CallFacts("ganzi", "bo", green="elderly")
    wf, steps = plan(f, CFG)
    assert wf == "green_language" and priority(f, CFG) == 10
    assert [(s.queue, s.interpreter) for s in steps] == [("ganzi-bo", False), ("lang-bo", False),
                                                         ("ganzi", True), ("province", True)]
    assert choose_workflow(CallFacts("ganzi", "bo", green="elderly", open=False), CFG) == "night"
    assert plan(CallFacts("leshan", "zh", open=False), CFG)[1] == [Step("province", "province", 120, True)]
    # at night a Tibetan caller still tries Tibetan speakers first, then the pool with an interpreter
    assert [(s.queue, s.interpreter) for s in plan(CallFacts("ganzi", "bo", open=False), CFG)[1]] == [
        ("lang-bo", False), ("province", True)]


def test_domestic_violence_at_night_prefers_the_night_pools_female_lawyers():
    wf, steps = plan(CallFacts("leshan", "zh", green="domestic_violence", open=False), CFG)
    assert wf == "night_female" and [s.queue for s in steps] == ["province-female", "province"]
    assert "province-female" in memberships("agent1006", CFG)     # 陈律师, night pool, female
    assert "province-female" not in all_queues_of_men()


def all_queues_of_men():
    return {q for a in CFG.agents if a.gender == "m" for q in memberships(a.id, CFG)}


def test_minor_prefers_lawyers_experienced_with_minors():
    wf, steps = plan(CallFacts("leshan", "zh", green="minor"), CFG)
    assert wf == "minor" and [s.queue for s in steps] == ["leshan-minors", "leshan", "province"]
    assert memberships("agent1008", CFG)["leshan-minors"] == 1     # proficiency 4
    assert "leshan-minors" not in memberships("agent1001", CFG)


def test_unspecified_green_takes_the_green_workflow():
    assert choose_workflow(CallFacts("leshan", "zh", green="unspecified"), CFG) == "green"


def test_service_specialty_prefers_specialists():
    wf, steps = plan(CallFacts("ziyang", "zh", "notary_forensics"), CFG)
    assert wf == "specialist" and steps[0].queue == "ziyang-notary" and steps[1].queue == "ziyang"


@pytest.mark.parametrize("live,reason", [(QueueLive(0, 0), "EMPTY"), (QueueLive(2, 6), "BUSY"),
                                         (QueueLive(2, 5), None), (QueueLive(1, 0), None)])
def test_skip_rules(live, reason):
    assert skip_reason(live, CFG) == reason


def test_nobody_anywhere_means_voicemail():
    step, skipped = first_target(CallFacts("leshan", "zh"), CFG, {})
    assert step is None and [q for q, _ in skipped] == ["leshan", "leshan-near", "province"]


def test_memberships_follow_skills():
    m = memberships("agent1007", CFG)  # Tibetan-speaking lawyer in Chengdu, family law level 3
    assert m["chengdu"] == 0 and m["chengdu-bo"] == 0 and m["lang-bo"] == 0
    assert m["chengdu-family"] == 2 and m["deyang-near"] == 1 and "chengdu-female" not in m
    f = memberships("agent1008", CFG)   # female lawyer in Leshan
    assert f["leshan-female"] == 0 and f["meishan-near"] == 1
    # provincial pool, speaks English; a female criminal lawyer: the pool's own skill queues
    assert memberships("agent1006", CFG) == {"province": 0, "lang-en": 0, "province-female": 0, "province-criminal": 1}


def test_every_plan_queue_exists_and_router_covers_every_variant():
    queues = set(all_queues(CFG))
    contexts = set()
    for wf, city, skill, lang in plan_variants(CFG):
        contexts.add(variant_context(wf, city, skill))
        for s in plan_for_variant(wf, city, skill, lang):
            assert s.queue in queues
    router = "\n".join(router_dialplan(CFG))
    for wf in ("night", "green", "language", "specialist", "standard", "domestic_violence"):
        assert f"hotline-wf-{wf}-" in router
    # the router's order is the rule order
    assert router.index("wf-night_female") < router.index("wf-night-") < router.index("wf-green_language") \
        < router.index("wf-domestic_violence") < router.index("wf-green-") < router.index("wf-language") < router.index("wf-specialist") < router.index("wf-standard")


def plan_for_variant(wf, city, skill, lang):
    from core.workflow import plan_for
    return plan_for(wf, city, skill, lang, CFG)


# ---- schedules
SH = "Asia/Shanghai"


def at(s: str) -> datetime:  # a Shanghai local time as an aware datetime
    from zoneinfo import ZoneInfo
    return datetime.fromisoformat(s).replace(tzinfo=ZoneInfo(SH))


def test_weekday_hours():
    s = CFG.schedules["leshan"]
    assert is_open(s, at("2026-11-25T09:00"), SH)          # Wednesday
    assert not is_open(s, at("2026-11-25T08:29"), SH)
    assert not is_open(s, at("2026-11-25T21:00"), SH)      # end is exclusive
    assert is_open(s, at("2026-11-28T10:00"), SH)          # Saturday 09-17
    assert not is_open(s, at("2026-11-28T18:00"), SH)


def test_holidays_and_make_up_days():
    s = CFG.schedules["leshan"]
    assert not is_open(s, at("2026-10-02T10:00"), SH)      # National Day holiday, a Friday
    assert is_open(s, at("2026-10-10T20:00"), SH)          # make-up Saturday: weekday hours
    assert not is_open(s, at("2026-02-17T10:00"), SH)      # Spring Festival


def test_chengdu_is_always_open_and_timezones_convert():
    assert is_open(CFG.schedules["chengdu"], at("2026-02-17T03:00"), SH)
    utc = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)  # 09:00 in Shanghai
    assert is_open(CFG.schedules["leshan"], utc, SH)


@pytest.mark.parametrize("bad", ["8:30-21:00", "21:00-08:30", "25:00-26:00", "08:30"])
def test_bad_spans_rejected(bad):
    with pytest.raises(ValueError):
        parse_span(bad)


def test_day_ranges_and_date_ranges():
    assert parse_days("mon-fri") == [0, 1, 2, 3, 4] and parse_days("sun") == [6]
    with pytest.raises(ValueError):
        parse_days("fri-mon")
    assert len(parse_dates(["2026-10-01..2026-10-07"])) == 7


# ---- shift rotas
def test_rota_logs_in_on_shift_and_out_after_the_call():
    from agents.rota import RotaAction, rota_actions
    rotas = CFG.rotas
    wed_10 = at("2026-11-25T10:00")
    acts = rota_actions(wed_10, SH, rotas, logged_in=set(), in_call=set(), by_rota=set())
    assert RotaAction("agent1001", "login") in acts and RotaAction("agent1006", "login") in acts
    assert RotaAction("agent1008", "login") not in acts            # afternoon shift
    wed_18 = at("2026-11-25T18:00")
    # agent1001's shift is over, but they are on a call: finish it first
    assert rota_actions(wed_18, SH, rotas, {"agent1001", "agent1006", "agent1008"}, {"agent1001"},
                        {"agent1001", "agent1006", "agent1008"}) == []
    assert rota_actions(wed_18, SH, rotas, {"agent1001", "agent1006", "agent1008"}, set(),
                        {"agent1001", "agent1006", "agent1008"}) == [RotaAction("agent1001", "logout")]
    # a manual login outside the rota is left alone
    assert rota_actions(wed_18, SH, rotas, {"agent1001", "agent1006", "agent1008"}, set(), {"agent1006"}) == []
    # the provincial pool is on all night
    assert rota_actions(at("2026-11-26T03:00"), SH, rotas, set(), set(), set()) == [RotaAction("agent1006", "login")]


# ---- position and expected-wait announcement
def test_wait_announcement():
    from core.workflow import wait_announcement
    assert wait_announcement(ahead=3, logged_in=2, free=1, aht_seconds=420) is None   # connect now
    assert wait_announcement(ahead=0, logged_in=0, free=0, aht_seconds=420) is None   # skipped anyway
    assert wait_announcement(ahead=0, logged_in=1, free=0, aht_seconds=420) == (0, 4)  # "you are next", ~half a call
    assert wait_announcement(ahead=3, logged_in=2, free=0, aht_seconds=420) == (3, 13)
    assert wait_announcement(ahead=99, logged_in=1, free=0, aht_seconds=420) == (20, 30)  # capped
    # a quiet night: one busy lawyer, nobody ahead -> minutes, not the afternoon's half hour
    assert wait_announcement(ahead=0, logged_in=1, free=0, aht_seconds=60)[1] == 1
