"""Pure routing rules: which city a dialed 12348 number belongs to.

No I/O here. The dialplan generator uses the same functions to write Asterisk's extensions, so
what the controller believes and what Asterisk does cannot drift apart.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from core.config import City, HotlineConfig

SERVICE_NUMBER = "12348"
# Carriers deliver the called number in national (083312348), international (+8683312348,
# 008683312348) or bare (8683312348) form. Area codes drop their leading 0 after +86.
_INTL = re.compile(r"^(?:\+86|0086|86)([1-9][0-9]{1,2}12348)$")


@dataclass(frozen=True)
class CityRoute:
    kind: Literal["city"]
    did: str
    city_id: str


@dataclass(frozen=True)
class ChooseCityRoute:
    """Area code shared by several cities: the IVR asks; no input means ``default_city``."""
    kind: Literal["choose_city"]
    did: str
    area_code: str
    choices: tuple[tuple[str, str], ...]  # (digit, city id)
    default_city: str


@dataclass(frozen=True)
class UnknownRoute:
    kind: Literal["unknown"]
    did: str
    reason: str


Route = CityRoute | ChooseCityRoute | UnknownRoute


def normalise_dialed(number: str) -> str:
    """Return the national form of a dialed number (``+8683312348`` -> ``083312348``)."""
    n = re.sub(r"[\s\-()]", "", number or "")
    m = _INTL.match(n)
    return "0" + m.group(1) if m else n


DIALABLE = re.compile(r"\+?[0-9]{3,20}")


def dialable(number: str) -> bool:
    """A number we may dial back through the trunk: digits only (a caller ID is the caller's to set,
    and '&' or ',' in a Dial or Originate string would add targets or options)."""
    return bool(DIALABLE.fullmatch(number or ""))


def identifies_caller(number: str | None) -> bool:
    """Whether a caller number links a call to earlier ones (the screen-pop's history): a number we
    could dial back. Withheld callers arrive as "", "anonymous", "unknown", "<unknown>", ...: they are
    not one person, and their 'history' would be other people's calls and tickets."""
    return dialable(number or "")


def cities_by_area_code(cities: list[City]) -> dict[str, list[City]]:
    groups: dict[str, list[City]] = {}
    for c in cities:
        groups.setdefault(c.area_code, []).append(c)
    return groups


def route_dialed(number: str, cfg: HotlineConfig) -> Route:
    did = normalise_dialed(number)
    if not did.endswith(SERVICE_NUMBER) or not did.startswith("0"):
        return UnknownRoute("unknown", did, f"{did or '(empty)'} is not <area code>12348")
    area = did[: -len(SERVICE_NUMBER)]
    group = cities_by_area_code(cfg.cities).get(area)
    if not group:
        return UnknownRoute("unknown", did, f"no city has area code {area}")
    if len(group) == 1:
        return CityRoute("city", did, group[0].id)
    return ChooseCityRoute("choose_city", did, area, city_choices(group), next(c.id for c in group if c.default))


def city_choices(group: list[City]) -> tuple[tuple[str, str], ...]:
    """Digits for cities sharing an area code, in config order (1, 2, 3, ...)."""
    return tuple((str(i), c.id) for i, c in enumerate(group, start=1))


def parse_ivr_path(path: str) -> list[tuple[str, str]]:
    """``lang=zh/city=chengdu/svc=consultation`` -> [("lang","zh"), ...]; tolerant of junk."""
    steps = []
    for part in (path or "").split("/"):
        key, sep, value = part.partition("=")
        if sep and key and value:
            steps.append((key, value))
    return steps
