"""Consultation tickets: taxonomy, outcomes, deadlines and the status workflow (pure rules).

open -> in_progress -> resolved | referred -> closed. A ticket cannot be closed unclassified (category
and outcome), a referral needs a referral outcome, and every ticket has a deadline (限时办结) after
which it is escalated. Storage is store/tickets.py; HTTP is dashboard/routes/tickets.py.
"""
from __future__ import annotations

import re

from core.places import division
from core.config import TicketRules

STATUSES = ("open", "in_progress", "resolved", "referred", "closed")
_PHONE = re.compile(r"\+?[0-9]+")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("in_progress", "resolved", "referred"),
    "in_progress": ("resolved", "referred"),
    "resolved": ("closed", "in_progress"),      # reopened when the caller calls back unsatisfied
    "referred": ("closed", "in_progress"),
    "closed": (),
}
EDITABLE = ("category", "summary", "answer", "outcome", "follow_up", "county")
TEXT_MAX = 20000


class TicketError(ValueError):
    """A change the workflow does not allow; the message says why (HTTP 400/409)."""


def check_edit(changes: dict, rules: TicketRules) -> dict:
    """Validate an edit of a ticket's fields; returns the clean changes."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise TicketError(f"unknown fields {sorted(unknown)}; editable: {', '.join(EDITABLE)}")
    out = {}
    for key, value in changes.items():
        # a list or object is no id either (it was a 500: unhashable in the dict lookup)
        if key == "category" and (not isinstance(value, str) or value not in rules.categories):
            raise TicketError(f"unknown category {value!r}; known: {', '.join(rules.categories)}")
        if key == "outcome" and (not isinstance(value, str) or value not in rules.outcomes):
            raise TicketError(f"unknown outcome {value!r}; known: {', '.join(rules.outcomes)}")
        if key in ("summary", "answer") and (not isinstance(value, str) or len(value) > TEXT_MAX):
            raise TicketError(f"{key} must be text of at most {TEXT_MAX} characters")
        if key == "follow_up" and not isinstance(value, bool):
            raise TicketError("follow_up must be true or false")
        if key == "county" and not (value == "" or (division(value) is not None and division(value).level == "county")):
            raise TicketError(f"county must be a Sichuan or Chongqing county-level division code (e.g. 511123), "
                              f"not {value!r}")
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


# ---- complaints and petitions (服务投诉, 信访)
COMPLAINT_STATUSES = ("received", "assigned", "replied", "closed")
COMPLAINT_TRANSITIONS = {"received": ("assigned",), "assigned": ("replied", "assigned"), "replied": ("closed",),
                         "closed": ()}
COMPLAINT_KINDS = ("service", "petition")
COMPLAINT_SOURCES = ("phone", "api", "letter", "visit")


def check_complaint_intake(body: dict, cities: set[str]) -> dict:
    """A new complaint: what is required and allowed, with messages that say so."""
    allowed = {"kind", "source", "city", "complainant_number", "complainant_name", "language", "call_id",
               "about_agent", "description"}
    unknown = set(body) - allowed
    if unknown:
        raise TicketError(f"unknown fields {sorted(unknown)}; known: {sorted(allowed)}")
    out = {"kind": body.get("kind", "service"), "source": body.get("source", "api"),
           "city": body.get("city"), "complainant_number": body.get("complainant_number", ""),
           "complainant_name": body.get("complainant_name", ""), "language": body.get("language", "zh"),
           "call_id": body.get("call_id") or None, "about_agent": body.get("about_agent", ""),
           "description": body.get("description")}
    if out["kind"] not in COMPLAINT_KINDS:
        raise TicketError(f"kind must be one of {', '.join(COMPLAINT_KINDS)}")
    if out["source"] not in COMPLAINT_SOURCES:
        raise TicketError(f"source must be one of {', '.join(COMPLAINT_SOURCES)}")
    if not isinstance(out["city"], str) or out["city"] not in cities:   # a list was a 500 (unhashable)
        raise TicketError(f"city: unknown city {out['city']!r}")
    if not isinstance(out["description"], str) or not out["description"].strip() or len(out["description"]) > TEXT_MAX:
        raise TicketError(f"description is required (text, at most {TEXT_MAX} characters)")
    call_id = body.get("call_id")
    # stored as is: a number, list or object (or, on PostgreSQL, more than 64 characters) was a 500
    if call_id is not None and (not isinstance(call_id, str) or len(call_id) > 64):
        raise TicketError("call_id must be the id of a call (text, at most 64 characters)")
    number = out["complainant_number"]
    # ASCII digits: str.isdigit() also took "١٣٨…" and "²³", and lstrip("+") any number of pluses
    if not isinstance(number, str) or (number and (not _PHONE.fullmatch(number) or len(number) > 20)):
        raise TicketError("complainant_number must be a phone number (digits)")
    # each at most its column's width (PostgreSQL refuses longer text: it was a 500 there)
    for key, width in (("complainant_name", 64), ("about_agent", 64), ("language", 8)):
        if not isinstance(out[key], str) or len(out[key]) > width:
            raise TicketError(f"{key} must be short text (at most {width} characters)")
    return out


def check_complaint_move(current: str, to: str, reply: str | None = None) -> None:
    if to not in COMPLAINT_STATUSES:
        raise TicketError(f"status must be one of {', '.join(COMPLAINT_STATUSES)}")
    if to not in COMPLAINT_TRANSITIONS[current]:
        allowed = ", ".join(COMPLAINT_TRANSITIONS[current]) or "nothing (closed)"
        raise TicketError(f"a {current} complaint can move to {allowed}, not {to}")
    if to == "replied" and not (isinstance(reply, str) and reply.strip()):
        raise TicketError("a reply to the complainant is required")
