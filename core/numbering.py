"""Which numbers the platform may dial itself (voicemail callbacks, partner referrals, follow-up
surveys): the numbering plan of config/hotline.yaml ``numbering_plan``. A toll-fraud guard: a
caller ID or a partner's referral is someone else's to set, so +882…, 00…, premium and service
numbers must never be called back. Pure; callcenter/originate.py applies it to every call we place.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Collection

import phonenumbers

if TYPE_CHECKING:   # the config loader normalises the green registry with to_e164: no import cycle
    from core.config import HotlineConfig
    from core.config.system import NumberingPlan

_DIGITS = re.compile(r"\+?[0-9]+")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
LOCAL_FIRST_DIGITS = "2345678"    # a local number starts 2-8 (0 is the trunk prefix, 1 and 9 service numbers)


_SEPARATORS = re.compile(r"[\s\-().]")


def to_e164(number: str | None) -> str:
    """The one form a caller number is stored and compared in (green registry, caller history,
    opt-outs, complaints): E.164, so 13800000000, +8613800000000 and 008613800000000 are one caller.
    A number phonenumbers cannot read as a valid Chinese or international number (an extension, a
    service number, garbage) is kept as its digits: it still equals itself and nothing else. A
    withheld or empty number is ''."""
    n = _SEPARATORS.sub("", number or "")
    if not (n.isascii() and _DIGITS.fullmatch(n)):
        return ""
    try:
        parsed = phonenumbers.parse(n, "CN")
    except phonenumbers.NumberParseException:
        return n
    if phonenumbers.is_valid_number(parsed) or (n[0] == "+" or n.startswith("00")) and \
            phonenumbers.is_possible_number(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return n


_CALLER_ID = re.compile(r"\+?[0-9]{1,32}")
# how a carrier or a person may write a Chinese number besides its E.164 form (after the national
# significant number: +86 138…, 0086 138…, 86 138…, and with the area code's 0 kept after the country code)
_CN_PREFIXES = ("0086", "86", "+860", "00860", "860")


def caller_id(raw: str | None) -> str:
    """The caller ID as it may be stored, looked up and logged: digits with at most one leading +, else ''
    (withheld, or not a number). A caller ID is the caller's or carrier's to set: control characters,
    separators or dialplan syntax in it must reach no log line and no lookup."""
    return raw if raw and _CALLER_ID.fullmatch(raw) else ""


def caller_forms(number: str | None) -> list[str]:
    """Every form of ``number`` that ``to_e164`` reads as the same caller, E.164 first: what a lookup by
    caller (history, tickets, opt-outs, complaints, appointments) matches, so rows stored as the carrier
    or an agent wrote the number compare as one caller, and the green registry's dialplan context
    lists every form a caller ID may arrive in. [] for a withheld or empty number."""
    e = to_e164(number)
    try:
        parsed = phonenumbers.parse(e) if e.startswith("+") else None
    except phonenumbers.NumberParseException:   # "+999", "+1": kept as written by to_e164, one form only
        parsed = None
    if parsed is None:
        return [e] if e else []
    nsn = phonenumbers.national_significant_number(parsed)
    forms = [e, f"00{parsed.country_code}{nsn}"]
    if parsed.country_code == 86:
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        forms += [re.sub(r"[^0-9]", "", national)] + [p + nsn for p in _CN_PREFIXES]
    # only true preimages: a form that to_e164 reads as another number would join two callers
    return list(dict.fromkeys(f for f in forms if to_e164(f) == e))


def plan_area_codes(cfg: HotlineConfig, plan: NumberingPlan | None = None) -> set[str]:
    """The area codes whose fixed lines may be dialled: the plan's, else the configured cities'."""
    plan = plan or cfg.system.numbering_plan
    return set(plan.area_codes) if plan.area_codes is not None else {c.area_code for c in cfg.cities}


def refusal(number: str, plan: NumberingPlan, area_codes: Collection[str]) -> str:
    """'' when ``number`` may be dialled under ``plan``, else why not (for the log and the audit)."""
    n = number or ""
    if not (n.isascii() and _DIGITS.fullmatch(n)):
        return "not a phone number (ASCII digits, optionally one leading +)"
    if n.startswith("+") or n.startswith("00"):
        rest = n[1:] if n.startswith("+") else n[2:]
        if not rest.startswith("86"):
            return f"international number (country code {rest[:3]}…): only Chinese numbers are called"
        rest = rest[2:]
        if rest.startswith("0"):
            return "+86 followed by 0: after +86 an area code drops its 0 (not a Chinese number)"
        national = rest if rest.startswith("1") else "0" + rest
    else:
        national = n
    if national.startswith("1"):
        if not plan.mobile:
            return "mobile numbers are not in the numbering plan"
        if _MOBILE.fullmatch(national):
            return ""
        if len(national) < 7:
            return "short or service number"
        return "not a Chinese mobile number (1[3-9] and 11 digits)"
    if national.startswith("0"):
        if not plan.fixed_lines:
            return "fixed line numbers are not in the numbering plan"
        lo, hi = plan.subscriber_digits_min, plan.subscriber_digits_max
        for code in area_codes:
            local = national[len(code):]
            if national.startswith(code) and lo <= len(local) <= hi and local[0] in LOCAL_FIRST_DIGITS:
                return ""
        return (f"not a fixed line of the plan's area codes ({', '.join(sorted(area_codes)) or 'none'}) "
                f"with a local number of {lo}-{hi} digits starting {LOCAL_FIRST_DIGITS[0]}-{LOCAL_FIRST_DIGITS[-1]}")
    return "short or service number"


def may_dial(number: str, cfg: HotlineConfig) -> str:
    """``refusal`` under this node's plan: '' when the number may be dialled."""
    return refusal(number, cfg.system.numbering_plan, plan_area_codes(cfg))


def may_text(number: str, cfg: HotlineConfig) -> str:
    """'' when an SMS may be queued to ``number`` (appointment texts, complaint replies), else why not:
    a text reaches only a mobile, and only one of the numbering plan (the toll-fraud guard of
    ``refusal``, for premium-rate and international SMS)."""
    plan = cfg.system.numbering_plan
    why = refusal(number, plan.model_copy(update={"fixed_lines": False}), ())
    return "an SMS reaches only a mobile number" if why.startswith("fixed line") else why


def dialplan_patterns(plan: NumberingPlan, area_codes: Collection[str]) -> list[str]:
    """The same plan as Asterisk extension patterns, for the numbers the dialplan dials by itself (the
    queue callback a caller asks for with a key): exactly the numbers ``refusal`` allows."""
    out = []
    if plan.mobile:
        out += [f"_{prefix}1[3-9]XXXXXXXXX" for prefix in ("", "+86", "0086")]
    if plan.fixed_lines:
        first = f"[{LOCAL_FIRST_DIGITS[0]}-{LOCAL_FIRST_DIGITS[-1]}]"
        for code in sorted(area_codes):
            for n in range(plan.subscriber_digits_min, plan.subscriber_digits_max + 1):
                local = first + "X" * (n - 1)
                out += [f"_{code}{local}", f"_+86{code[1:]}{local}", f"_0086{code[1:]}{local}"]
    return out
