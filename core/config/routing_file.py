"""config/routing.yaml: workflows per language, green channel, overflow, opening hours."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from core.config.base import Ident, Strict


class LanguageRouting(Strict):
    served_by: Literal["city", "province"]


class WorkflowStep(Strict):
    target: Literal["city", "city_skill", "neighbours", "language_pool", "province", "province_skill",
                    "supervisor"]   # supervisor: the city supervisors' own queue (complaints)
    wait: int = Field(ge=5, le=3600)
    interpreter: bool = False   # conference in an interpreter of the caller's language on answer


class GreenCategory(Strict):
    digit: Annotated[str, Field(pattern=r"^[0-9]$")]
    id: Ident
    workflow: Ident = "green"
    # the skill its workflow's city_skill / province_skill targets ask for: `female` or a specialty
    skill: Ident | None = None
    # when the city is closed: this workflow instead of the night one (e.g. female lawyers of the night pool)
    night_workflow: Ident | None = None


class GreenChannel(Strict):
    priority: int = Field(10, ge=1, le=100)
    digit: Annotated[str, Field(pattern=r"^[0-9]$")]
    categories: list[GreenCategory] = Field(min_length=1)


class Overflow(Strict):
    waiting_per_agent: int = Field(3, ge=1, le=100)


class CitySchedule(Strict):
    always_open: bool = False
    weekly: dict[str, list[str]] | None = None


class Schedules(Strict):
    default: CitySchedule
    cities: dict[str, CitySchedule] = Field(default_factory=dict)
    holidays: str | None = None
    local_holidays: str | None = None     # per-city holidays on top of the national ones


class LocalHoliday(Strict):
    """A city's or prefecture's own holiday (民族节日): closed on these days, on top of the national list."""
    year: int = Field(ge=2000, le=2100)
    name: str = Field(min_length=1)
    days: str                              # YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD
    verified: bool = False                 # checked against the published notice
    source: str = ""


class LocalHolidaysFile(Strict):
    cities: dict[str, list[LocalHoliday]] = Field(default_factory=dict)


class RoutingFile(Strict):
    timezone: str
    languages: dict[str, LanguageRouting]
    specialties: list[Ident]
    services: dict[str, Ident] = Field(default_factory=dict)
    # a service chosen in the IVR that has its own workflow (complaint: the city supervisor first)
    service_workflows: dict[str, Ident] = Field(default_factory=dict)
    neighbours: dict[str, list[str]] = Field(default_factory=dict)
    overflow: Overflow
    green_channel: GreenChannel
    workflows: dict[Ident, list[WorkflowStep]]
    schedules: Schedules
    # outside numbers the desk may transfer callers to (and nothing else: no toll fraud by desk)
    transfer_numbers: dict[Annotated[str, Field(pattern=r"^[0-9]{3,20}$")], str] = Field(default_factory=dict)
    # emergency services (110 police, 120 ambulance) an agent may conference in for a caller in danger,
    # through the carrier trunk: number -> label
    emergency_numbers: dict[Annotated[str, Field(pattern=r"^[0-9]{3,20}$")], str] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r}") from None
        return v

    @model_validator(mode="after")
    def check(self) -> "RoutingFile":
        cats = self.green_channel.categories
        needed = ({"standard", "specialist", "language", "green", "night", "green_language"}
                  | {c.workflow for c in cats} | {c.night_workflow for c in cats if c.night_workflow}
                  | set(self.service_workflows.values()))
        missing = sorted(needed - set(self.workflows))
        if missing:
            raise ValueError(f"workflows: missing {missing}")
        for name, steps in self.workflows.items():
            if not steps:
                raise ValueError(f"workflows.{name}: needs at least one step")
        for c in cats:
            if c.skill is not None and c.skill != "female" and c.skill not in self.specialties:
                raise ValueError(f"green_channel.categories ({c.id}).skill: {c.skill!r} is neither 'female' "
                                 f"nor in specialties")
        for svc, spec in self.services.items():
            if spec not in self.specialties:
                raise ValueError(f"services.{svc}: {spec!r} is not in specialties")
        return self


