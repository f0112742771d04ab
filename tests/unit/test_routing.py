import pytest

from core.config import load_config
from core.routing import (ChooseCityRoute, CityRoute, UnknownRoute, identifies_caller, normalise_dialed, parse_ivr_path,
                          route_dialed)

CFG = load_config()


@pytest.mark.parametrize("raw,expected", [
    ("083312348", "083312348"), ("+8683312348", "083312348"), ("008683312348", "083312348"),
    ("8683312348", "083312348"), ("0833-12348", "083312348"), (" +86 28 12348", "02812348"),
    ("12345", "12345"), ("", ""), ("+86", "+86"),
])
def test_normalise(raw, expected):
    assert normalise_dialed(raw) == expected


def test_every_city_is_reachable():
    for city in CFG.cities:
        r = route_dialed(city.did, CFG)
        if city.area_code == "028":
            assert isinstance(r, ChooseCityRoute) and city.id in dict(r.choices).values()
        else:
            assert r == CityRoute("city", city.did, city.id)


def test_028_is_shared_with_default_chengdu():
    r = route_dialed("02812348", CFG)
    assert isinstance(r, ChooseCityRoute)
    assert r.choices == (("1", "chengdu"), ("2", "meishan"), ("3", "ziyang"))
    assert r.default_city == "chengdu"


@pytest.mark.parametrize("n", ["099912348", "12348", "083312345", "0833123480", "abc", "", "023"])
def test_unknown(n):
    assert isinstance(route_dialed(n, CFG), UnknownRoute)


def test_chongqing_is_not_a_sichuan_city_yet():
    r = route_dialed("02312348", CFG)
    assert isinstance(r, UnknownRoute) and "023" in r.reason


def test_parse_ivr_path_tolerates_junk():
    assert parse_ivr_path("lang=zh/city=chengdu~default/svc=legal_aid") == [
        ("lang", "zh"), ("city", "chengdu~default"), ("svc", "legal_aid")]
    assert parse_ivr_path("garbage//=x/y=") == []


@pytest.mark.parametrize("number, known", [
    ("13800001111", True), ("+8613800001111", True), ("083312348", True),
    ("", False), (None, False), ("anonymous", False), ("Anonymous", False), ("unknown", False),
    ("<unknown>", False), ("restricted", False), (" ", False), ("12", False), ("1380000&1111", False)])
def test_a_withheld_number_identifies_no_caller(number, known):
    """Issue 16, finding 8: the screen-pop's history is only for a number that names one line."""
    assert identifies_caller(number) is known
