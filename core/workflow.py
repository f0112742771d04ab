"""The routing workflow engine: pure functions from (call facts, config, live queue state) to targets.

Asterisk runs the result: confgen turns ``ROUTER_RULES`` into the dialplan's router and each
(workflow, city, skill) plan into a context of queue steps, and the runtime guards in
``skip_reason`` become GotoIf lines. These functions are the specification the tests check.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from core.config import HotlineConfig

NEIGHBOURS_SUFFIX = "-near"
LANG_POOL_PREFIX = "lang-"
FEMALE = "female"
SUPERVISOR_SUFFIX = "-supervisor"


@dataclass(frozen=True)
class CallFacts:
    city: str
    language: str
    service: str = ""
    green: str = ""          # green-channel category id, "" for none
    open: bool = True        # is the city open now (schedule)


@dataclass(frozen=True)
class Step:
    target: str
    queue: str
    wait: int
    interpreter: bool = False


@dataclass(frozen=True)
class QueueLive:
    logged_in: int
    waiting: int


# ---- which workflow: first matching rule wins (the dialplan router is generated from this list)
@dataclass(frozen=True)
class Rule:
    name: str
    test: Callable[[CallFacts, HotlineConfig], bool]
    workflow: Callable[[CallFacts, HotlineConfig], str]


def _category(f: CallFacts, cfg: HotlineConfig):
    """The caller's green-channel category (None for none, or for "unspecified")."""
    return next((c for c in cfg.routing.green_channel.categories if c.id == f.green), None)


def _green_workflow(f: CallFacts, cfg: HotlineConfig) -> str:
    cat = _category(f, cfg)
    return cat.workflow if cat else "green"


def _night_workflow(f: CallFacts, cfg: HotlineConfig) -> str | None:
    cat = _category(f, cfg)
    return cat.night_workflow if cat else None


def _pool_language(f: CallFacts, cfg: HotlineConfig) -> bool:
    return cfg.routing.languages[f.language].served_by == "province"


ROUTER_RULES = (
    # a category with its own night workflow keeps its preference after hours (domestic violence:
    # the night pool's female lawyers first)
    Rule("closed_green", lambda f, c: not f.open and bool(_night_workflow(f, c)), _night_workflow),
    Rule("closed", lambda f, c: not f.open, lambda f, c: "night"),
    # green and a province-served language combine: priority and a speaker of it (or an interpreter)
    Rule("green_language", lambda f, c: bool(f.green) and _pool_language(f, c), lambda f, c: "green_language"),
    Rule("green", lambda f, c: bool(f.green), _green_workflow),
    Rule("language", lambda f, c: _pool_language(f, c), lambda f, c: "language"),
    Rule("service", lambda f, c: f.service in c.routing.service_workflows,
         lambda f, c: c.routing.service_workflows[f.service]),
    Rule("specialist", lambda f, c: f.service in c.routing.services, lambda f, c: "specialist"),
    Rule("standard", lambda f, c: True, lambda f, c: "standard"),
)


def router_dialplan(cfg: HotlineConfig) -> list[str]:
    """ROUTER_RULES as dialplan lines, in the same order (city in ${HOTLINE_CITY})."""
    city = "${HOTLINE_CITY}"
    lines = []
    cats = cfg.routing.green_channel.categories
    pool_langs = [lang for lang, r in cfg.routing.languages.items() if r.served_by == "province"]
    for cat in cats:
        if cat.night_workflow:
            lines.append('GotoIf($[${HOTLINE_OPEN} = 0 & "${HOTLINE_GREEN}" = "%s"]?%s,s,1)'
                         % (cat.id, variant_context(cat.night_workflow, city, cat.skill)))
    for lang in pool_langs:
        lines.append('GotoIf($[${HOTLINE_OPEN} = 0 & "${HOTLINE_LANG}" = "%s"]?%s,s,1)'
                     % (lang, variant_context("night", city, lang)))
    lines.append("GotoIf($[${HOTLINE_OPEN} = 0]?%s,s,1)" % variant_context("night", city, None))
    for lang in pool_langs:
        lines.append('GotoIf($["${HOTLINE_GREEN}" != "" & "${HOTLINE_LANG}" = "%s"]?%s,s,1)'
                     % (lang, variant_context("green_language", city, lang)))
    for cat in cats:
        if cat.workflow != "green":
            lines.append('GotoIf($["${HOTLINE_GREEN}" = "%s"]?%s,s,1)' % (cat.id, variant_context(cat.workflow, city, cat.skill)))
    lines.append('GotoIf($["${HOTLINE_GREEN}" != ""]?%s,s,1)' % variant_context("green", city, None))
    for lang in pool_langs:
        lines.append('GotoIf($["${HOTLINE_LANG}" = "%s"]?%s,s,1)' % (lang, variant_context("language", city, lang)))
    for svc, wf in cfg.routing.service_workflows.items():
        lines.append('GotoIf($["${HOTLINE_SERVICE}" = "%s"]?%s,s,1)' % (svc, variant_context(wf, city, None)))
    for svc, spec in cfg.routing.services.items():
        lines.append('GotoIf($["${HOTLINE_SERVICE}" = "%s"]?%s,s,1)' % (svc, variant_context("specialist", city, spec)))
    lines.append("Goto(%s,s,1)" % variant_context("standard", city, None))
    return lines


def choose_workflow(f: CallFacts, cfg: HotlineConfig) -> str:
    for rule in ROUTER_RULES:
        if rule.test(f, cfg):
            return rule.workflow(f, cfg)
    raise AssertionError("the standard rule always matches")


def skill_for(workflow: str, f: CallFacts, cfg: HotlineConfig) -> str | None:
    """The skill a `city_skill` / `province_skill` target asks for in this workflow."""
    if workflow in ("language", "green_language") or (workflow == "night" and _pool_language(f, cfg)):
        return f.language
    if workflow == "specialist":
        return cfg.routing.services.get(f.service)
    cat = _category(f, cfg)
    if cat is not None and workflow in (cat.workflow, cat.night_workflow):
        return cat.skill
    return None


def queue_for(target: str, city: str, skill: str | None, language: str, cfg: HotlineConfig) -> str | None:
    """The app_queue queue a target means for this call; None when it means nothing here."""
    if target == "city":
        return city
    if target == "city_skill":
        return f"{city}-{skill}" if skill else None
    if target == "neighbours":
        return f"{city}{NEIGHBOURS_SUFFIX}" if cfg.routing.neighbours.get(city) else None
    if target == "language_pool":
        return f"{LANG_POOL_PREFIX}{language}" if cfg.routing.languages[language].served_by == "province" else None
    if target == "province":
        return cfg.province.id
    if target == "province_skill":
        return f"{cfg.province.id}-{skill}" if skill else None
    if target == "supervisor":
        return f"{city}{SUPERVISOR_SUFFIX}" if supervisors_of(city, cfg) else None
    raise ValueError(f"unknown target {target!r}")


def plan_for(workflow: str, city: str, skill: str | None, language: str, cfg: HotlineConfig) -> list[Step]:
    steps = []
    for s in cfg.routing.workflows[workflow]:
        q = queue_for(s.target, city, skill, language, cfg)
        if q is not None and all(q != x.queue for x in steps):
            steps.append(Step(s.target, q, s.wait, s.interpreter))
    return steps


def plan(f: CallFacts, cfg: HotlineConfig) -> tuple[str, list[Step]]:
    wf = choose_workflow(f, cfg)
    return wf, plan_for(wf, f.city, skill_for(wf, f, cfg), f.language, cfg)


def priority(f: CallFacts, cfg: HotlineConfig) -> int:
    return cfg.routing.green_channel.priority if f.green else 0


def skip_reason(live: QueueLive, cfg: HotlineConfig) -> str | None:
    """Runtime guard at a step's entry: skip a queue nobody can answer, or one that is swamped."""
    if live.logged_in == 0:
        return "EMPTY"
    if live.waiting >= live.logged_in * cfg.routing.overflow.waiting_per_agent:
        return "BUSY"
    return None


def first_target(f: CallFacts, cfg: HotlineConfig, live: dict[str, QueueLive]) -> tuple[Step | None, list[tuple[str, str]]]:
    """Where the call waits first given live state; plus the skipped queues with reasons."""
    skipped = []
    for step in plan(f, cfg)[1]:
        reason = skip_reason(live.get(step.queue, QueueLive(0, 0)), cfg)
        if reason is None:
            return step, skipped
        skipped.append((step.queue, reason))
    return None, skipped  # voicemail and a callback task


# ---- which queues exist, and who is in them
def plan_variants(cfg: HotlineConfig) -> list[tuple[str, str, str | None, str]]:
    """Every (workflow, city, skill, language) the router can pick, for the dialplan generator."""
    out: list[tuple[str, str, str | None, str]] = []
    pool_langs = [l for l, r in cfg.routing.languages.items() if r.served_by == "province"]
    green_wfs: list[tuple[str, str | None]] = [("green", None)]
    for cat in cfg.routing.green_channel.categories:
        for wf in (cat.workflow, cat.night_workflow):
            if wf and (wf, None if wf == "green" else cat.skill) not in green_wfs:
                green_wfs.append((wf, None if wf == "green" else cat.skill))
    default_lang = cfg.ivr.default_language
    for c in cfg.cities:
        out.append(("standard", c.id, None, default_lang))
        out.append(("night", c.id, None, default_lang))
        for spec in sorted(set(cfg.routing.services.values())):
            out.append(("specialist", c.id, spec, default_lang))
        for lang in pool_langs:
            out.append(("language", c.id, lang, lang))
            out.append(("night", c.id, lang, lang))
            out.append(("green_language", c.id, lang, lang))
        for wf, skill in sorted(green_wfs, key=lambda x: (x[0], x[1] or "")):
            out.append((wf, c.id, skill, default_lang))
        for wf in sorted(set(cfg.routing.service_workflows.values())):
            out.append((wf, c.id, None, default_lang))
    return out


def supervisors_of(city: str, cfg: HotlineConfig) -> list[str]:
    """The city supervisors (role supervisor) of a city: the static members of its supervisor queue."""
    return [s.id for s in cfg.supervisors if s.role == "supervisor" and city in s.cities]


def variant_context(workflow: str, city: str, skill: str | None) -> str:
    return f"hotline-wf-{workflow}-{city}" + (f"-{skill}" if skill else "")


def memberships(agent_id: str, cfg: HotlineConfig) -> dict[str, int]:
    """Queue -> penalty for an agent: home city queues, skill queues, neighbours, language pools."""
    a = cfg.agent(agent_id)
    pool_langs = {l for l, r in cfg.routing.languages.items() if r.served_by == "province"}
    out: dict[str, int] = {}
    homes = [q for q in a.queues if q != cfg.province.id]
    for city in homes:
        out[city] = 0
        for lang in a.languages:
            if lang in pool_langs:
                out[f"{city}-{lang}"] = 0
        if a.gender == "f":
            out[f"{city}-{FEMALE}"] = 0
        for spec, level in a.specialties.items():
            out[f"{city}-{spec}"] = 5 - level  # the most proficient are offered first
        if cfg.routing.neighbours.get(city):
            out[f"{city}{NEIGHBOURS_SUFFIX}"] = 0
        for other, near in cfg.routing.neighbours.items():
            if city in near:
                out.setdefault(f"{other}{NEIGHBOURS_SUFFIX}", 1)  # neighbours help after the home agents
    for lang in a.languages:
        if lang in pool_langs:
            out[f"{LANG_POOL_PREFIX}{lang}"] = 0
    if cfg.province.id in a.queues:
        out[cfg.province.id] = 0
        # the provincial (night) pool's own skill queues: a category's preference holds at night
        if a.gender == "f":
            out[f"{cfg.province.id}-{FEMALE}"] = 0
        for spec, level in a.specialties.items():
            out[f"{cfg.province.id}-{spec}"] = 5 - level
    return out


def all_queues(cfg: HotlineConfig) -> list[str]:
    """Every queue a plan can name, so app_queue has them all (even before anyone joins)."""
    names: list[str] = []
    for wf, city, skill, lang in plan_variants(cfg):
        for s in plan_for(wf, city, skill, lang, cfg):
            if s.queue not in names:
                names.append(s.queue)
    for a in cfg.agents:
        for q in memberships(a.id, cfg):
            if q not in names:
                names.append(q)
    return names


def wait_announcement(ahead: int, logged_in: int, free: int, aht_seconds: float,
                      max_ahead: int = 20, max_minutes: int = 30) -> tuple[int, int] | None:
    """(callers ahead, expected minutes) to say on entering a queue, or None to say nothing.

    Nothing is said when an agent is free (the caller is connected at once) or nobody is logged in
    (the step is skipped). The estimate uses a handle time, not app_queue's running average, so a
    quiet night does not inherit the afternoon's queue: half a call for the agent busy now, then a
    whole one per caller ahead, shared among the logged-in agents.
    """
    if free > 0 or logged_in <= 0:
        return None
    seconds = (2 * ahead + 1) * aht_seconds / (2 * logged_in)
    minutes = max(1, min(max_minutes, -(-int(seconds) // 60)))
    return min(ahead, max_ahead), minutes
