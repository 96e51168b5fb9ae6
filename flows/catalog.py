"""The catalog: which services a station offers, as typed, validated data.

Operators write catalogs (TOML or JSON); the console validates them with this same schema before
signing, and the terminal validates again before use. A validation error names the path of the
offending value and the rule it broke (:class:`CatalogError`).
"""

from __future__ import annotations

import enum
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flows.errors import KioskError

Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,40}$")]
Hours = Annotated[str, Field(pattern=r"^([01]\d|2[0-4]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")]
"""A daily window such as ``08:30-17:30``; ``00:00-24:00`` is the whole day."""


def minutes(hhmm: str) -> int:
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


def within(hours: str, minute_of_day: int) -> bool:
    """Is ``minute_of_day`` inside the window? Windows may pass midnight (``22:00-06:00``)."""
    start, end = (minutes(part) for part in hours.split("-"))
    if start <= end:
        return start <= minute_of_day < end
    return minute_of_day >= start or minute_of_day < end


class CatalogError(KioskError):
    """A catalog does not validate; ``problems`` lists (path, rule) pairs."""

    translation_key = "error.catalog_invalid"

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s)"]
        lines += [f"  {path}: {rule}" for path, rule in problems]
        super().__init__("\n".join(lines))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Model):
    """A text in both languages of the station; Chinese first."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


class IdentityKind(enum.StrEnum):
    ID_CARD = "id_card"
    SMART_CARD = "smart_card"
    NONE = "none"


class Output(enum.StrEnum):
    A4 = "a4"
    THERMAL = "thermal"


class Material(_Model):
    name: Text
    copies: int = Field(default=1, ge=1, le=10)
    original: bool = True  # 原件; False: a copy (复印件) will do
    note: Text | None = None


class Notice(_Model):
    """一次性告知: everything a staffed window will need, so that one visit is enough."""

    materials: list[Material] = Field(min_length=1)
    legal_basis: Text
    time_limit: Text  # 办理时限
    fees: Text  # 收费标准
    place: Text  # 办理地点


class Station(_Model):
    name: Text
    help_phone: str = Field(pattern=r"^[0-9+\- ]{3,20}$")
    duty_hours: Hours = "00:00-24:00"


class Category(_Model):
    code: Code
    name: Text


class Service(_Model):
    code: Code
    category: Code
    name: Text
    description: Text
    icon: str = "document"
    identity: IdentityKind = IdentityKind.ID_CARD
    provider: str = "demo"
    template: str | None = None
    outputs: list[Output] = Field(min_length=1)
    spoken: Text
    notice: Notice | None = None
    hours: Hours | None = None  # when its provider answers (platforms have maintenance windows)
    enabled: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Service:
        if Output.A4 in self.outputs and not self.template:
            raise ValueError("a service with an A4 output needs a template")
        if self.notice is not None and Output.THERMAL not in self.outputs:
            raise ValueError("a materials notice is printed on the thermal printer")
        if self.identity is IdentityKind.NONE and self.provider != "none":
            raise ValueError("a provider needs to know who asks: identity cannot be none")
        return self


class Bundle(_Model):
    """ "One thing, one visit": several services under one identification, one confirmation."""

    code: Code
    category: Code
    name: Text
    description: Text
    spoken: Text
    services: list[Code] = Field(min_length=2)
    icon: str = "bundle"
    enabled: bool = True


class Catalog(_Model):
    version: int = Field(ge=1)
    station: Station
    categories: list[Category] = Field(min_length=1)
    services: list[Service] = Field(min_length=1)
    bundles: list[Bundle] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Catalog:
        codes = [s.code for s in self.services] + [b.code for b in self.bundles]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"service codes must be unique; repeated: {', '.join(dupes)}")
        categories = {c.code for c in self.categories}
        items: list[Service | Bundle] = [*self.services, *self.bundles]
        for item in items:
            if item.category not in categories:
                raise ValueError(
                    f"{item.code!r} names category {item.category!r}, which is not defined"
                )
        services = {s.code: s for s in self.services}
        for bundle in self.bundles:
            for code in bundle.services:
                if code not in services:
                    raise ValueError(f"bundle {bundle.code!r} names unknown service {code!r}")
                if bundle.enabled and not services[code].enabled:
                    raise ValueError(f"bundle {bundle.code!r} includes disabled service {code!r}")
        return self

    def service(self, code: str) -> Service:
        for s in self.services:
            if s.code == code:
                return s
        raise KeyError(code)

    def enabled_services(self) -> list[Service]:
        return [s for s in self.services if s.enabled]

    def enabled_bundles(self) -> list[Bundle]:
        return [b for b in self.bundles if b.enabled]

    def bundle(self, code: str) -> Bundle:
        for b in self.bundles:
            if b.code == code:
                return b
        raise KeyError(code)


def parse_catalog(data: dict[str, Any], *, source: str = "<catalog>") -> Catalog:
    try:
        return Catalog.model_validate(data)
    except ValidationError as err:
        problems = [
            (".".join(str(p) for p in e["loc"]) or "(root)", e["msg"]) for e in err.errors()
        ]
        raise CatalogError(source, problems) from err


def load_catalog(path: Path) -> Catalog:
    """Load a catalog from a ``.toml`` or ``.json`` file, validating it."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise CatalogError(str(path), [("(file)", f"cannot be read: {err.strerror}")]) from err
    try:
        data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode())
    except (ValueError, UnicodeDecodeError) as err:
        raise CatalogError(
            str(path), [("(file)", f"is not valid {path.suffix[1:]}: {err}")]
        ) from err
    if not isinstance(data, dict):
        raise CatalogError(str(path), [("(root)", "must be a table/object")])
    return parse_catalog(data, source=str(path))
