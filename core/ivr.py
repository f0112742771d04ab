"""Typed model of an IVR flow file (ivr_flows/*.yaml)."""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Digit = Annotated[str, Field(pattern=r"^[0-9]$")]
LangCode = Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]
# Prompt ids become file names and dialplan tokens.
PROMPT_ID = re.compile(r"^[a-z][a-z0-9_]*$")
SERVICES = ("consultation", "legal_aid", "mediation", "notary_forensics", "complaint")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tts(Strict):
    voice: str
    speed: int = Field(150, ge=80, le=400)


class Language(Strict):
    code: LangCode
    digit: Digit
    name: str
    tts: Tts | None = None
    # offered only to calls for these cities (e.g. Yi in Liangshan); empty: offered everywhere
    cities: list[str] = []
    # the prompt texts still need a native speaker's review (shown on the prompts page)
    review_note: str | None = None


class Menu(Strict):
    timeout_seconds: int = Field(5, ge=1, le=30)
    attempts: int = Field(2, ge=1, le=5)


class ServiceOption(Strict):
    digit: Digit
    service: str

    @field_validator("service")
    @classmethod
    def known_service(cls, v: str) -> str:
        if v not in SERVICES:
            raise ValueError(f"unknown service {v!r}; known: {', '.join(SERVICES)}")
        return v


class ServiceMenu(Menu):
    default: str
    options: list[ServiceOption] = Field(min_length=1)

    @model_validator(mode="after")
    def check(self) -> "ServiceMenu":
        digits = [o.digit for o in self.options]
        if len(set(digits)) != len(digits):
            raise ValueError(f"duplicate digits in options: {digits}")
        if self.default not in {o.service for o in self.options}:
            raise ValueError(f"default {self.default!r} is not one of the options")
        return self


class Menus(Strict):
    language: Menu
    city: Menu
    service: ServiceMenu


REQUIRED_PROMPTS = ("greeting", "lang_offer", "city_intro", "city_option", "service_menu", "green_menu",
                    "callback_offer", "callback_confirm", "callback_agent_intro", "callback_unreachable",
                    "position_next", "position", "wait_minutes",
                    "invalid", "please_hold", "voicemail", "unknown_number")


class IvrFlow(Strict):
    version: int = Field(ge=1)
    default_language: LangCode
    languages: list[Language] = Field(min_length=1)
    menus: Menus
    prompts: dict[str, dict[str, str]]

    @model_validator(mode="after")
    def check(self) -> "IvrFlow":
        codes = [l.code for l in self.languages]
        digits = [l.digit for l in self.languages]
        if len(set(codes)) != len(codes):
            raise ValueError(f"duplicate language codes: {codes}")
        if len(set(digits)) != len(digits):
            raise ValueError(f"duplicate language digits: {digits}")
        if self.default_language not in codes:
            raise ValueError(f"default_language {self.default_language!r} is not in languages {codes}")
        for pid in REQUIRED_PROMPTS:
            if pid not in self.prompts:
                raise ValueError(f"prompts.{pid} is missing")
        for pid, texts in self.prompts.items():
            if not PROMPT_ID.match(pid):
                raise ValueError(f"prompts.{pid}: prompt ids are lower-case letters, digits and _")
            missing = [c for c in codes if not texts.get(c, "").strip()]
            if missing:
                raise ValueError(f"prompts.{pid}: no text for language(s) {', '.join(missing)}")
        return self

    def language(self, code: str) -> Language:
        return next(l for l in self.languages if l.code == code)
