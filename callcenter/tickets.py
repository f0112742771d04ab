"""Consultation tickets: taxonomy, outcomes, deadlines and the status workflow (pure rules).

open -> in_progress -> resolved | referred -> closed. A ticket cannot be closed unclassified (category
and outcome), a referral needs a referral outcome, and every ticket has a deadline (限时办结) after
which it is escalated. Storage is callcenter/store; HTTP is dashboard/api.py.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from callcenter.config import REPO_ROOT, Strict, _read_yaml, _validate

STATUSES = ("open", "in_progress", "resolved", "referred", "closed")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("in_progress", "resolved", "referred"),
    "in_progress": ("resolved", "referred"),
    "resolved": ("closed", "in_progress"),      # reopened when the caller calls back unsatisfied
    "referred": ("closed", "in_progress"),
    "closed": (),
}
EDITABLE = ("category", "summary", "answer", "outcome", "follow_up")
TEXT_MAX = 20000


class Label(Strict):
    zh: str
    en: str


class TicketRules(Strict):
    categories: dict[str, Label]
    outcomes: dict[str, Label]
    deadline_hours: dict[str, Annotated[float, Field(gt=0, le=24 * 90)]]

    def deadline(self, green: bool) -> float:
        return self.deadline_hours.get("green" if green else "default", self.deadline_hours.get("default", 72))


def load_ticket_rules(root: Path | None = None) -> TicketRules:
    path = (root or REPO_ROOT) / "config" / "tickets.yaml"
    return _validate(TicketRules, _read_yaml(path), path)


class TicketError(ValueError):
    """A change the workflow does not allow; the message says why (HTTP 400/409)."""


def check_edit(changes: dict, rules: TicketRules) -> dict:
    """Validate an edit of a ticket's fields; returns the clean changes."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise TicketError(f"unknown fields {sorted(unknown)}; editable: {', '.join(EDITABLE)}")
    out = {}
    for key, value in changes.items():
        if key == "category" and value not in rules.categories:
            raise TicketError(f"unknown category {value!r}; known: {', '.join(rules.categories)}")
        if key == "outcome" and value not in rules.outcomes:
            raise TicketError(f"unknown outcome {value!r}; known: {', '.join(rules.outcomes)}")
        if key in ("summary", "answer") and (not isinstance(value, str) or len(value) > TEXT_MAX):
            raise TicketError(f"{key} must be text of at most {TEXT_MAX} characters")
        if key == "follow_up" and not isinstance(value, bool):
            raise TicketError("follow_up must be true or false")
        out[key] = value
    return out


def check_transition(ticket: dict, to: str) -> None:
    """May this ticket (as stored) move to status ``to``? Raises TicketError saying why not."""
    if to not in STATUSES:
        raise TicketError(f"status must be one of {', '.join(STATUSES)}")
    now = ticket["status"]
    if to not in TRANSITIONS[now]:
        allowed = ", ".join(TRANSITIONS[now]) or "nothing (closed)"
        raise TicketError(f"a {now} ticket can move to {allowed}, not {to}")
    if to in ("resolved", "referred", "closed") and not (ticket.get("category") and ticket.get("outcome")):
        raise TicketError(f"classify the ticket (category and outcome) before it is {to}")
    if to == "referred" and not str(ticket.get("outcome", "")).startswith("referred_"):
        raise TicketError("a referred ticket needs a referral outcome (referred_legal_aid, referred_12345, referred_other)")
