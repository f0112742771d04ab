"""What a provincial report adds to the per-city statistics (pure): calls by green-channel category and
by language, tickets by county, handoffs by referral partner, and the year's progress against the
民生实事 targets configured in config/legal_aid.yaml (docs/legal-aid.md).

Definitions: a call is every call record into the hotline (core/kpi.py is_call); answered = it has an
answer time. Consultations toward the target = answered calls; cases = tickets whose outcome is one of
the rules' `case_outcomes`."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date

from core import kpi
from core.config import LegalAidRules
from core.places import division

NONE = "none"           # calls outside the green channel, tickets without a county, calls without a language


def breakdown(calls: list[dict], tickets: list[dict], handoffs: list[dict]) -> dict:
    by_green: dict[str, Counter] = defaultdict(Counter)
    by_language: dict[str, Counter] = defaultdict(Counter)
    for c in calls:
        if not kpi.is_call(c):
            continue
        answered = c.get("answered_at") is not None
        for table, key in ((by_green, c.get("green") or NONE), (by_language, c.get("language") or NONE)):
            table[key]["calls"] += 1
            table[key]["answered"] += answered
    by_county: dict[str, Counter] = defaultdict(Counter)
    for t in tickets:
        by_county[t.get("county") or NONE]["tickets"] += 1
    by_partner: dict[str, Counter] = defaultdict(Counter)
    for h in handoffs:
        by_partner[h["partner"]]["handoffs"] += 1
        by_partner[h["partner"]][h["status"]] += 1

    def plain(table: dict[str, Counter]) -> dict[str, dict]:
        return {k: dict(v) for k, v in sorted(table.items())}
    counties = plain(by_county)
    for code, row in counties.items():
        d = division(code)
        row["name"] = d.full_name if d else ""
    return {"by_green": plain(by_green), "by_language": plain(by_language), "by_county": counties,
            "by_partner": plain(by_partner)}


@dataclass(frozen=True)
class Progress:
    measure: str                # consultations | cases
    target: int
    achieved: int
    share: float                # achieved / target


class TargetsMissing(LookupError):
    pass


def targets_progress(rules: LegalAidRules, year: int, today: date, calls: list[dict],
                     tickets: list[dict]) -> dict:
    """The year's targets, what the hotline achieved toward them so far, and how much of the year is gone
    (to read the share against). Raises TargetsMissing when the year has none configured."""
    t = rules.targets.get(str(year))
    if t is None:
        raise TargetsMissing(f"no 民生实事 targets for {year} in config/legal_aid.yaml (have "
                             f"{', '.join(sorted(rules.targets)) or 'none'}); see docs/legal-aid.md")
    consultations = sum(1 for c in calls if kpi.is_call(c) and c.get("answered_at") is not None)
    cases = sum(1 for x in tickets if x.get("outcome") in rules.case_outcomes)
    first, last = date(year, 1, 1), date(year, 12, 31)
    elapsed = 0.0 if today < first else 1.0 if today > last else ((today - first).days + 1) / ((last - first).days + 1)
    measures = [Progress("consultations", t.consultations, consultations, round(consultations / t.consultations, 6)),
                Progress("cases", t.cases, cases, round(cases / t.cases, 6))]
    return {"year": year, "source": t.source, "verified": t.verified, "as_of": today.isoformat(),
            "year_elapsed": round(elapsed, 4), "measures": [m.__dict__ for m in measures]}
