"""The numbering plan (security review 16 §4a, toll fraud): callbacks and follow-up surveys dial only
Chinese mobiles and fixed lines of the configured area codes; everything else is refused, with why."""
import pytest
from pydantic import ValidationError

from core.config import load_config
from core.config.system import NumberingPlan
from core.numbering import plan_area_codes, refusal

CFG = load_config()
CODES = plan_area_codes(CFG)      # the configured cities' area codes by default


def ok(number: str, plan: NumberingPlan = CFG.system.numbering_plan, codes=CODES) -> bool:
    return refusal(number, plan, codes) == ""


def test_default_plan_is_the_cities_area_codes():
    assert CFG.system.numbering_plan == NumberingPlan()
    assert CODES == {c.area_code for c in CFG.cities} and {"028", "0833"} <= CODES


@pytest.mark.parametrize("number", [
    "13800000000", "13955550001", "19912345678", "14712345678",    # mobiles 1[3-9] + 9 digits
    "+8613800000000", "008613800000000",                          # the same, international form
    "02887654321", "0288765432", "08332123456", "083321234567",  # fixed lines: area code + 7-8 digits
    "+862887654321", "+868332123456", "00862887654321",            # +86 drops the trunk 0
])
def test_allowed(number):
    assert ok(number), refusal(number, CFG.system.numbering_plan, CODES)


@pytest.mark.parametrize("number,why", [
    ("+88212345678", "international"),         # international premium (+882 networks)
    ("+8821234567890", "international"),
    ("+12025550123", "international"),
    ("0088212345678", "international"),         # 00 prefix: international
    ("0012025550123", "international"),
    ("+8608332123456", "area code"),            # +86 then the trunk 0: not a Chinese number
    ("12348", "short"),                         # service / short numbers
    ("95555", "short"),
    ("10086", "short"),
    ("110", "short"),
    ("12345678901", "mobile"),                  # 12x is not a mobile range
    ("1380000000", "mobile"),                   # 10 digits
    ("138000000001", "mobile"),                 # 12 digits
    ("01012345678", "area code"),               # Beijing: not a configured area code
    ("07551234567", "area code"),
    ("0833212345678", "area code"),             # too long for 0833
    ("083321234", "area code"),                 # too short
    ("08331234567", "area code"),               # local numbers start 2-8 (1xx are service numbers)
    ("08339123456", "area code"),
    ("", "not a phone number"),
    ("138 0000 0000", "not a phone number"),
    ("13800000000&PJSIP/x", "not a phone number"),
    ("+", "not a phone number"),
    ("１３８００００００００", "not a phone number"),   # full-width digits
    ("abc", "not a phone number"),
])
def test_refused_with_a_reason(number, why):
    reason = refusal(number, CFG.system.numbering_plan, CODES)
    assert reason and why in reason, (number, reason)


def test_plan_is_data():
    no_mobiles = NumberingPlan(mobile=False, area_codes=["010"])
    assert not ok("13800000000", no_mobiles, plan_area_codes(CFG, no_mobiles))
    assert "mobile" in refusal("13800000000", no_mobiles, plan_area_codes(CFG, no_mobiles))
    assert ok("01062345678", no_mobiles, plan_area_codes(CFG, no_mobiles))
    assert not ok("02887654321", no_mobiles, plan_area_codes(CFG, no_mobiles))
    no_fixed = NumberingPlan(fixed_lines=False)
    assert "fixed line" in refusal("02887654321", no_fixed, plan_area_codes(CFG, no_fixed))
    seven = NumberingPlan(subscriber_digits_max=7)
    assert not ok("02887654321", seven) and ok("0288765432", seven)


@pytest.mark.parametrize("bad,field", [
    ({"area_codes": ["833"]}, "area_codes.0"),
    ({"area_codes": ["0833", "0833"]}, "area_codes"),
    ({"subscriber_digits_min": 9}, "subscriber_digits_min"),
    ({"subscriber_digits_min": 8, "subscriber_digits_max": 7}, "subscriber_digits"),
    ({"mobiles": True}, "mobiles"),
])
def test_plan_errors_are_precise(bad, field):
    with pytest.raises(ValidationError) as e:
        NumberingPlan(**bad)
    assert field in str(e.value)


def _asterisk_match(pattern: str, number: str) -> bool:
    """Asterisk's extension pattern syntax, as far as dialplan_patterns uses it."""
    import re
    rx = re.sub(r"X", "[0-9]", re.escape(pattern[1:]).replace(r"\[", "[").replace(r"\]", "]").replace(r"\-", "-"))
    return re.fullmatch(rx.replace(r"\+", r"\+"), number) is not None


def test_dialplan_patterns_allow_exactly_what_the_plan_allows():
    """The queue callback is dialled by Asterisk itself: its patterns and refusal() must agree."""
    from core.numbering import dialplan_patterns
    patterns = dialplan_patterns(CFG.system.numbering_plan, CODES)
    samples = (
        "13800000000", "+8613800000000", "008613800000000", "02887654321", "0288765432", "08332123456",
        "083321234567", "+862887654321", "+868332123456", "00862887654321", "+88212345678", "0088212345678",
        "+8608332123456", "12348", "95555", "12345678901", "1380000000", "01012345678", "0833212345678",
        "083321234", "08331234567", "08339123456", "+12025550123", "19912345678", "0833912345")
    for n in samples:
        assert any(_asterisk_match(p, n) for p in patterns) == (refusal(n, CFG.system.numbering_plan, CODES) == ""), n
    assert dialplan_patterns(NumberingPlan(mobile=False, fixed_lines=False), CODES) == []


def test_caller_numbers_have_one_form():
    from core.numbering import to_e164
    same = ["13800000000", "+8613800000000", "008613800000000", "138 0000 0000", "8613800000000"]
    assert {to_e164(n) for n in same} == {"+8613800000000"}
    assert to_e164("02887654321") == to_e164("+862887654321") == to_e164("028-8765-4321") == "+862887654321"
    assert to_e164("+88212345678") == "+88212345678"        # international stays itself
    assert to_e164("1001") == "1001" and to_e164("12348") == "12348"   # extensions and service numbers: digits
    for withheld in ("", None, "anonymous", "<unknown>", "Restricted", "13800000000;x"):
        assert to_e164(withheld) == ""


def test_every_form_of_a_caller_number_is_one_caller():
    """Issue 16, finding 4: what lookups by caller match: every form to_e164 reads as the same number,
    and nothing it reads as another."""
    from core.numbering import caller_forms, to_e164
    forms = caller_forms("13800000000")
    assert forms[0] == "+8613800000000"
    assert {"13800000000", "+8613800000000", "008613800000000", "8613800000000"} <= set(forms)
    assert {"08332123456", "+868332123456", "00868332123456"} <= set(caller_forms("+868332123456"))
    assert caller_forms("+88212345678") == ["+88212345678", "0088212345678"]   # no national form abroad
    assert caller_forms("12348") == ["12348"] and caller_forms("anonymous") == caller_forms("") == []
    for odd in ("+999", "+1", "+86", "+8612", "+" + "9" * 40):     # a caller ID is anyone's to set
        assert caller_forms(odd) == [odd]
    for n in ("13800000000", "08332123456", "02887654321", "+12025550123", "12348", "083312345678"):
        assert {to_e164(f) for f in caller_forms(n)} == {to_e164(n)}, n
        assert n in caller_forms(n) or to_e164(n) in caller_forms(n), n


def test_a_caller_id_is_digits_with_one_leading_plus_or_nothing():
    from core.numbering import caller_id
    assert caller_id("+8613800000000") == "+8613800000000" and caller_id("13800000000") == "13800000000"
    for bad in (None, "", "anonymous", "1380000\n0000", "138,0000", "+", "1+38", "138 0000 0000", "1" * 33):
        assert caller_id(bad) == "", bad
