"""config/models.yaml: the Vosk models `hotline models install <lang>` knows, per language."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from core.config.base import Strict

LangCode = Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]
# a model's directory name under the models directory: never a path
ModelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class CatalogueModel(Strict):
    name: ModelName
    url: str
    sha256: Sha256 | None = None        # None: not pinned, the install prints what it computed
    size: int | None = Field(None, ge=1)

    @field_validator("url")
    @classmethod
    def http(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return v


class ModelCatalogue(Strict):
    models: dict[LangCode, list[CatalogueModel]] = {}

    def choose(self, lang: str, name: str | None = None) -> CatalogueModel | None:
        """The language's default model (its first), or the one named."""
        for m in self.models.get(lang, []):
            if name is None or m.name == name:
                return m
        return None

    def named(self, name: str) -> CatalogueModel | None:
        """The model of that name, whatever its language."""
        return next((m for models in self.models.values() for m in models if m.name == name), None)
