"""config/cities.yaml and config/agents.yaml: the cities and their area codes, agents, interpreters,
supervisors and wall displays."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from core.config.base import PROVINCE, AreaCode, Ident, Strict


class Names(Strict):
    zh: str
    en: str
    bo: str


class City(Strict):
    id: Ident
    area_code: AreaCode
    names: Names
    default: bool = False

    @property
    def did(self) -> str:
        return f"{self.area_code}12348"


class ProvincePool(Strict):
    id: Ident = PROVINCE
    names: Names


class CitiesFile(Strict):
    cities: list[City] = Field(min_length=1)
    province_pool: ProvincePool

    @model_validator(mode="after")
    def check(self) -> "CitiesFile":
        ids = [c.id for c in self.cities]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate city ids: {dup}")
        if self.province_pool.id in ids:
            raise ValueError(f"province_pool.id {self.province_pool.id!r} clashes with a city id")
        by_code: dict[str, list[City]] = {}
        for c in self.cities:
            by_code.setdefault(c.area_code, []).append(c)
        for code, group in by_code.items():
            defaults = [c.id for c in group if c.default]
            if len(group) > 1 and len(defaults) != 1:
                raise ValueError(
                    f"area code {code} is shared by {[c.id for c in group]}: exactly one needs "
                    f"'default: true' (the city used when the caller chooses nothing), found {defaults}")
            if len(group) > 9:
                raise ValueError(f"area code {code}: at most 9 cities can share a code (one DTMF digit each)")
        return self


class Agent(Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{2,31}$")]
    name: str
    queues: list[str] = Field(min_length=1)      # home cities and/or `province`
    languages: list[str] = Field(min_length=1)
    gender: Literal["f", "m"] | None = None      # domestic-violence callers prefer a female lawyer
    specialties: dict[str, Annotated[int, Field(ge=1, le=5)]] = Field(default_factory=dict)  # proficiency 1-5


class Interpreter(Strict):
    """Conferenced in when no agent speaks the caller's language: a SIP account of ours, or a phone
    number reached through the carrier trunk."""
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{2,31}$")]
    name: str
    languages: list[str] = Field(min_length=1)
    number: Annotated[str, Field(pattern=r"^\+?[0-9]{3,20}$")] | None = None


class Supervisor(Strict):
    """A city supervisor (coaches agents of their cities: listen, whisper, barge) or a command-center
    operator (all cities). Gets a desk login and a SIP account for listening in."""
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{2,31}$")]
    name: str
    role: Literal["supervisor", "command"]
    cities: list[str] = Field(default_factory=list)   # a supervisor's cities (`province` for the pool)

    @model_validator(mode="after")
    def scoped(self) -> "Supervisor":
        if self.role == "supervisor" and not self.cities:
            raise ValueError(f"supervisor {self.id} needs at least one city")
        return self


class Wallboard(Strict):
    """A wall display's login: sees the wallboard of its cities (none listed: every city) with numbers
    masked, and nothing else — no calls, recordings, transcripts or actions; no SIP account."""
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{2,31}$")]
    name: str
    cities: list[str] = Field(default_factory=list)


class AgentsFile(Strict):
    agents: list[Agent]
    interpreters: list[Interpreter] = Field(default_factory=list)
    supervisors: list[Supervisor] = Field(default_factory=list)
    wallboards: list[Wallboard] = Field(default_factory=list)

    @model_validator(mode="after")
    def unique(self) -> "AgentsFile":
        ids = [a.id for a in self.agents] + [i.id for i in self.interpreters] + [s.id for s in self.supervisors] \
            + [w.id for w in self.wallboards]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate agent ids: {dup}")
        return self


