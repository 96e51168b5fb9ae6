"""The catalog: which services a station offers, as typed, validated data.

Operators write catalogs (TOML or JSON); the console validates them with this same schema before
signing, and the terminal validates again before use. A validation error names the path of the
offending value and the rule it broke (:class:`CatalogError`).

The limits live here too, because the signer and the terminal must refuse the same catalogs: a
catalog the signer accepts and every terminal then refuses is a rollout that fails everywhere at
once. They bound what an unattended terminal spends on one catalog (bytes to download and parse,
nesting depth, services whose spoken texts it synthesises ahead of need) and what a resident in
elder mode has to read (the length of every human text, :class:`Text` and its kinds).
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import json
import tomllib
import zoneinfo
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from flows.errors import KioskError
from flows.icons import ICONS, TEMPLATES
from flows.tokens import valid_base_url

MAX_CATALOG_BYTES = 256 * 1024
"""The largest catalog file the signer signs and a terminal downloads. The demo's 12 services take
11 KiB; a town's 100 services with their materials notices stay under 150 KiB. A limit the
signer and the terminals share (one object, imported by both): see the module's docstring."""

MAX_DEPTH = 12
"""Tables and lists inside one another. A valid catalog needs 7 (the file › services › a service
› its notice › materials › a material › its name); a file nested deeper is refused as such
("nested too deeply"), also when the TOML or JSON parser runs out of stack on it
(``RecursionError`` at about 1,000 levels), so that no parser's crash reaches the operator or
the terminal's report."""

# How many entries a catalog may list. The kiosk synthesises every service's and bundle's spoken
# text in both languages ahead of need (kiosk.present.spoken_texts: a WAV each, kept on the state
# disk), its attract screen names the services one after another every 4 s, and its choose screen
# shows six to a page (four in elder landscape). 200 services are 400 WAVs (about 80 MB) and 34
# pages; 10,000 would fill the state disk and keep espeak busy for hours at every start.
MAX_SERVICES = 200
MAX_BUNDLES = 50
MAX_CATEGORIES = 30
MAX_BUNDLE_SERVICES = 10  # services in one bundle: one identification, one confirmation
MAX_MATERIALS = 20  # on one materials notice, printed on the thermal slip
MAX_WINDOWS = 26  # staffed windows: one letter prefix each (A-Z) for their queue numbers
MAX_PERIODS = 4  # opening periods of a window in one day (morning, afternoon, an evening)
MAX_CALENDAR_DAYS = 100  # holidays, or make-up working days, in one station's calendar
MAX_GUIDE_STEPS = 8  # steps of a 掌上办 guide, one short line each on the thermal slip
MAX_URL = 300  # a guide's page: its QR code must stay readable on 58 mm paper

Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,40}$")]
Initials = Annotated[str, Field(pattern=r"^[A-Z0-9]{1,40}$")]
"""Pinyin initials of a Chinese name (``GJJ`` for 公积金), for the kiosk's search; given when the
computed ones (``flows.pinyin``) are wrong for a name (polyphones, rare characters)."""
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


# Lengths in characters (code points). Chinese first; English translations run 2-3 times longer,
# so every English limit is three times the Chinese one. A name is one button or heading: the
# longest real matter names run 18-25 characters (城乡居民基本养老保险待遇领取资格认证 is 18,
# 老年人、残疾人、孕妇绿色通道优先取号 is 18), so 32 leaves room. The choose screen's buttons wrap
# their text and set a long one smaller, down to the theme's small size (kiosk/ui/screens/
# choose.py); tests/kiosk/ui/test_long_names.py walks names at both limits in elder mode on a
# 1600x900 screen and checks every one fits its button.
NAME_ZH, NAME_EN = 32, 96  # station, category, service, bundle and material names: one button
LINE_ZH, LINE_EN = 100, 300  # a notice's legal basis, time limit, fees, place; a material's note
PARAGRAPH_ZH, PARAGRAPH_EN = 150, 450  # a description or a spoken text: one screen, ~30 s of voice


class Text(_Model):
    """A text in both languages of the station; Chinese first. Bounded as a paragraph; the kinds
    below bound names and notice lines tighter."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)

    limits: ClassVar[tuple[int, int]] = (PARAGRAPH_ZH, PARAGRAPH_EN)
    kind: ClassVar[str] = "a description or spoken text"

    @field_validator("zh", "en")
    @classmethod
    def _fits(cls, value: str, info: ValidationInfo) -> str:
        limit = cls.limits[0] if info.field_name == "zh" else cls.limits[1]
        if len(value) > limit:
            raise ValueError(
                f"is {len(value)} characters long; {cls.kind} may have at most {limit} "
                f"in {info.field_name} to fit the screen in elder mode"
            )
        return value

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


class Name(Text):
    """What a button or a heading says: a station, category, service, bundle or material."""

    limits: ClassVar[tuple[int, int]] = (NAME_ZH, NAME_EN)
    kind: ClassVar[str] = "a name"


class Line(Text):
    """One line of a materials notice (legal basis, time limit, fees, place, a material's note)."""

    limits: ClassVar[tuple[int, int]] = (LINE_ZH, LINE_EN)
    kind: ClassVar[str] = "a line of a notice"


class IdentityKind(enum.StrEnum):
    ID_CARD = "id_card"
    SMART_CARD = "smart_card"
    NONE = "none"


class Output(enum.StrEnum):
    A4 = "a4"
    THERMAL = "thermal"


class Step(Text):
    """One step of a 掌上办 guide: a short line of the thermal slip (two lines of 58 mm paper)."""

    limits: ClassVar[tuple[int, int]] = (24, 72)
    kind: ClassVar[str] = "a step of a guide"


def https_url(value: str) -> str:
    """A page a resident's phone opens from a printed QR code: https only, no spaces, short."""
    if len(value) > MAX_URL:
        raise ValueError(
            f"is {len(value)} characters long; a guide's URL may have at most {MAX_URL}"
        )
    if not value.startswith("https://") or any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("must be an https:// URL without spaces (a phone opens it from paper)")
    return value


HttpsUrl = Annotated[str, AfterValidator(https_url)]


class MobileGuide(_Model):
    """掌上办: how to do a matter on a phone next time, printed as a thermal slip."""

    app: Name  # the app or mini-program, e.g. 爱山东 / the Ai Shandong app
    url: HttpsUrl  # the matter's page in it; printed as a QR code, from the signed catalog only
    steps: list[Step] = Field(min_length=1, max_length=MAX_GUIDE_STEPS)


class ServiceKind(enum.StrEnum):
    STANDARD = "standard"
    MOBILE_GUIDE = "mobile_guide"  # its paper is its 掌上办 guide slip


class Material(_Model):
    name: Name
    copies: int = Field(default=1, ge=1, le=10)
    original: bool = True  # 原件; False: a copy (复印件) will do
    note: Line | None = None


class Notice(_Model):
    """一次性告知: everything a staffed window will need, so that one visit is enough."""

    materials: list[Material] = Field(min_length=1, max_length=MAX_MATERIALS)
    legal_basis: Line
    time_limit: Line  # 办理时限
    fees: Line  # 收费标准
    place: Line  # 办理地点


class Weekday(enum.StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


WEEKDAYS = tuple(Weekday)  # index = date.weekday()


class Station(_Model):
    name: Name
    help_phone: str = Field(pattern=r"^[0-9+\- ]{3,20}$")
    duty_hours: Hours = "00:00-24:00"
    # the station's time zone: every hour in the catalog is in it, never the machine's clock
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    # where a certificate's QR code leads: https://HOST[/path], its page at {verify_url}/v/<token>;
    # None: the QR code holds the bare token (still verifiable offline with ``fleet verify``)
    verify_url: str | None = Field(default=None, max_length=200)
    # answered at any hour (e.g. the 12345 government service hotline): what the help screen
    # offers outside the duty hours, when no one answers help_phone; None: help_phone
    hotline: str | None = Field(default=None, pattern=r"^[0-9+\- ]{3,20}$")

    @property
    def night_phone(self) -> str:
        """The number a resident is given outside the duty hours."""
        return self.hotline or self.help_phone

    def on_duty(self, minute_of_day: int) -> bool:
        """Is staff on duty (help requests answered) at this minute of the day?"""
        return within(self.duty_hours, minute_of_day)

    @field_validator("verify_url")
    @classmethod
    def _verify_url(cls, value: str | None) -> str | None:
        if value is not None and not valid_base_url(value):
            raise ValueError(
                "must be https://HOST, optionally with a path, no trailing slash "
                "(e.g. https://verify.example.gov.cn)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"{value!r} is not a known time zone (e.g. Asia/Shanghai)") from err
        return value

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class Calendar(_Model):
    """The station's own calendar: days its windows are closed (public holidays), and the
    weekend days worked instead (调休 make-up working days), which count as weekdays."""

    holidays: list[dt.date] = Field(default_factory=list, max_length=MAX_CALENDAR_DAYS)
    workdays: list[dt.date] = Field(default_factory=list, max_length=MAX_CALENDAR_DAYS)

    @model_validator(mode="after")
    def _disjoint(self) -> Calendar:
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            raise ValueError(
                f"a day cannot be a holiday and a working day: {', '.join(map(str, both))}"
            )
        return self


class Window(_Model):
    """A staffed window: its own opening periods and days, its own queue-number prefix."""

    code: Code
    name: Name
    prefix: str = Field(pattern=r"^[A-Z]$")  # its tickets: C001, C002, ...
    hours: list[Hours] = Field(min_length=1, max_length=MAX_PERIODS)  # 08:30-12:00, 13:30-17:30
    days: list[Weekday] = Field(
        default_factory=lambda: list(WEEKDAYS[:5]), min_length=1, max_length=7
    )
    holidays: bool = False  # open on the calendar's holidays too

    @field_validator("hours")
    @classmethod
    def _periods(cls, value: list[str]) -> list[str]:
        spans = [tuple(minutes(part) for part in hours.split("-")) for hours in value]
        for start, end in spans:
            if not start < end:
                raise ValueError("a window's period starts before it ends, within one day")
        for (_, end), (start, _) in itertools.pairwise(spans):
            if start < end:
                raise ValueError("a window's periods are in order and do not overlap")
        return value


def known_icon(value: str) -> str:
    if value not in ICONS:
        raise ValueError(
            f"{value!r} is not an icon the kiosk has; known: {', '.join(sorted(ICONS))}"
        )
    return value


Icon = Annotated[str, AfterValidator(known_icon)]


class Category(_Model):
    code: Code
    name: Name
    icon: Icon = "folder"


class Service(_Model):
    code: Code
    category: Code
    name: Name
    description: Text
    icon: Icon = "document"
    initials: Initials | None = None  # of the Chinese name, when flows.pinyin gets them wrong
    identity: IdentityKind = IdentityKind.ID_CARD
    provider: str = "demo"
    template: str | None = None
    outputs: list[Output] = Field(min_length=1)
    spoken: Text
    notice: Notice | None = None
    hours: Hours | None = None  # when its provider answers (platforms have maintenance windows)
    window: Code | None = None  # the staffed window that handles it (its notice and tickets)
    kind: ServiceKind = ServiceKind.STANDARD
    mobile: MobileGuide | None = None  # a mobile guide's app, page and steps
    guides: Code | None = None  # a mobile guide: the matter it shows how to do on a phone
    enabled: bool = True

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None and value not in TEMPLATES:
            raise ValueError(
                f"{value!r} is not a template the kiosk has; known: {', '.join(sorted(TEMPLATES))}"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Service:
        if Output.A4 in self.outputs and not self.template:
            raise ValueError("a service with an A4 output needs a template")
        if self.notice is not None and Output.THERMAL not in self.outputs:
            raise ValueError("a materials notice is printed on the thermal printer")
        if self.identity is IdentityKind.NONE and self.provider != "none":
            raise ValueError("a provider needs to know who asks: identity cannot be none")
        if self.kind is ServiceKind.MOBILE_GUIDE:
            if self.mobile is None:
                raise ValueError("a mobile guide needs its [mobile] section (app, url, steps)")
            if self.outputs != [Output.THERMAL] or self.notice is not None:
                raise ValueError('a mobile guide prints one thermal slip: outputs = ["thermal"]')
            if self.identity is not IdentityKind.NONE:
                raise ValueError('a mobile guide needs no identity: identity = "none"')
        elif self.mobile is not None or self.guides is not None:
            raise ValueError('mobile and guides belong to a service of kind = "mobile_guide"')
        return self


class Bundle(_Model):
    """ "One thing, one visit": several services under one identification, one confirmation."""

    code: Code
    category: Code
    name: Name
    description: Text
    spoken: Text
    services: list[Code] = Field(min_length=2, max_length=MAX_BUNDLE_SERVICES)
    icon: Icon = "bundle"
    initials: Initials | None = None
    enabled: bool = True


class Catalog(_Model):
    version: int = Field(ge=1)
    station: Station
    categories: list[Category] = Field(min_length=1, max_length=MAX_CATEGORIES)
    services: list[Service] = Field(min_length=1, max_length=MAX_SERVICES)
    bundles: list[Bundle] = Field(default_factory=list, max_length=MAX_BUNDLES)
    windows: list[Window] = Field(default_factory=list, max_length=MAX_WINDOWS)
    calendar: Calendar = Field(default_factory=Calendar)

    @model_validator(mode="after")
    def _windows(self) -> Catalog:
        for what, values in (
            ("window codes", [w.code for w in self.windows]),
            ("window prefixes", [w.prefix for w in self.windows]),
        ):
            dupes = sorted(c for c, n in Counter(values).items() if n > 1)
            if dupes:
                raise ValueError(f"{what} must be unique; repeated: {', '.join(dupes)}")
        codes = {w.code for w in self.windows}
        for service in self.services:
            if service.window is not None and service.window not in codes:
                raise ValueError(
                    f"{service.code!r} names window {service.window!r}, which is not defined"
                )
        return self

    @model_validator(mode="after")
    def _references(self) -> Catalog:
        codes = Counter([s.code for s in self.services] + [b.code for b in self.bundles])
        dupes = sorted(c for c, n in codes.items() if n > 1)
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
        for service in self.services:
            guided = services.get(service.guides or "")
            if service.guides is not None and (
                guided is None or guided.kind is not ServiceKind.STANDARD
            ):
                raise ValueError(
                    f"{service.code!r} guides {service.guides!r}, which is not a matter "
                    "of this catalog"
                )
            if guided is not None and guided.category != service.category:
                raise ValueError(
                    f"{service.code!r} guides {service.guides!r}: put it in that matter's "
                    f"category ({guided.category!r}), where it is offered beside it"
                )
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

    def guide_for(self, code: str) -> Service | None:
        """The enabled 掌上办 guide of the matter ``code``, if it is doable on a phone."""
        return next((s for s in self.enabled_services() if s.guides == code), None)

    def enabled_bundles(self) -> list[Bundle]:
        return [b for b in self.bundles if b.enabled]

    def bundle(self, code: str) -> Bundle:
        for b in self.bundles:
            if b.code == code:
                return b
        raise KeyError(code)

    def window(self, code: str | None) -> Window | None:
        return next((w for w in self.windows if w.code == code), None)


def parse_catalog(data: dict[str, Any], *, source: str = "<catalog>") -> Catalog:
    try:
        return Catalog.model_validate(data)
    except ValidationError as err:
        problems = [
            (".".join(str(p) for p in e["loc"]) or "(root)", e["msg"]) for e in err.errors()
        ]
        raise CatalogError(source, problems) from err


def size_problem(length: int, limit: int = MAX_CATALOG_BYTES) -> str | None:
    """What is wrong with a catalog file of ``length`` bytes, in the words the signer uses."""
    if length <= limit:
        return None
    return f"is {length / 1024:.0f} KiB; a catalog may be at most {limit // 1024} KiB"


def too_deep(data: Any, limit: int = MAX_DEPTH) -> bool:
    """Does ``data`` (parsed TOML or JSON) nest tables and lists more than ``limit`` deep?
    Walked without recursion, so that any depth can be asked about."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= limit:
                return True
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
    return False


def catalog_table(raw: bytes, *, source: str, fmt: str = "toml") -> dict[str, Any]:
    """The table a catalog file holds (``fmt`` is ``toml`` or ``json``), before the schema: UTF-8,
    the format's syntax, a table at the top, at most :data:`MAX_DEPTH` deep. The signer and the
    terminal both read catalogs through here, so they refuse the same files in the same words."""
    nested = CatalogError(
        source, [("(file)", f"is nested too deeply (at most {MAX_DEPTH} levels)")]
    )
    try:
        text = raw.decode()
        data = json.loads(text) if fmt == "json" else tomllib.loads(text)
    except RecursionError:  # tables or lists inside one another thousands of times
        raise nested from None
    except (ValueError, UnicodeDecodeError) as err:  # TOMLDecodeError is a ValueError
        raise CatalogError(source, [("(file)", f"is not valid {fmt}: {err}")]) from err
    if not isinstance(data, dict):
        raise CatalogError(source, [("(root)", "must be a table/object")])
    if too_deep(data):
        raise nested
    return data


def load_catalog(path: Path) -> Catalog:
    """Load a catalog from a ``.toml`` or ``.json`` file, validating it."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise CatalogError(str(path), [("(file)", f"cannot be read: {err.strerror}")]) from err
    fmt = "json" if path.suffix == ".json" else "toml"
    return parse_catalog(catalog_table(raw, source=str(path), fmt=fmt), source=str(path))
