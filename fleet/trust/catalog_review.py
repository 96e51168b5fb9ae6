"""Reviewing a catalog before it is signed: the terminals' own validation, said plainly, and what
it changes against the catalog that is live.

- :func:`check_catalog` validates an uploaded catalog exactly as a terminal does (the size limit
  :data:`flows.catalog.MAX_CATALOG_BYTES`, then :func:`flows.catalog.catalog_table`: UTF-8, TOML,
  nesting; then :func:`flows.catalog.parse_catalog`)
  and turns each problem into a :class:`Problem`: the line of the file where possible, where in
  the catalog ("service #3 (residence_certificate) › name › en") and what is wrong, in plain words.
- :func:`diff_catalogs` compares two catalogs by meaning: services, bundles and categories by
  their code (added, removed, changed, with each changed field before and after), the station's
  own fields, the order of services; and gives a unified text diff as well.

Pure functions over bytes: no web, no database, no repository.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from flows.catalog import (
    Catalog,
    CatalogError,
    catalog_table,
    parse_catalog,
    size_problem,
)

UNIFIED_LINES = 400  # the text diff is cut after this many lines
KINDS = ("categories", "services", "bundles")  # lists of items with a unique ``code``
_SINGULAR = {"categories": "category", "services": "service", "bundles": "bundle"}
_HEADER = re.compile(r"^\s*\[(\[)?\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")
_PATTERNS = {
    "^[a-z][a-z0-9_]{1,40}$": (
        "must be a code: 2 to 41 small letters (a-z), digits or _, starting with a letter"
    ),
    "^[0-9+\\- ]{3,20}$": "must be a phone number: 3 to 20 digits, '+', '-' or spaces",
    "^([01]\\d|2[0-4]):[0-5]\\d-([01]\\d|2[0-4]):[0-5]\\d$": (
        "must be a daily time window such as 08:30-17:30 (00:00-24:00 is the whole day)"
    ),
}
_PHRASES = {
    "Field required": "is missing",
    "Extra inputs are not permitted": "is not a field a catalog has (misspelt?)",
    "Input should be a valid string": "must be text (in quotes)",
    "Input should be a valid integer": "must be a whole number",
    "Input should be a valid boolean": "must be true or false",
    "Input should be a valid list": "must be a list: [ ... ]",
    "Input should be a valid dictionary or instance of Text": (
        'must be a text in both languages: { zh = "…", en = "…" }'
    ),
}


class InvalidCatalog(Exception):
    """An uploaded catalog that a terminal would refuse; ``problems`` says why."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.text for p in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Problem:
    line: int | None  # in the uploaded file, 1-based, when it can be told
    where: str  # e.g. "service #3 (residence_certificate) › name › en"
    message: str  # plain words: "is missing"

    @property
    def text(self) -> str:
        at = f"line {self.line}: " if self.line else ""
        return f"{at}{self.where} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"text": self.text}


# --- validation ----------------------------------------------------------------------------------


def check_catalog(data: bytes, *, source: str = "upload") -> Catalog:
    """The catalog in ``data`` if a terminal would accept it, else :class:`InvalidCatalog`."""
    too_large = size_problem(len(data))
    if too_large:
        raise InvalidCatalog([Problem(None, "the file", too_large)])
    if not data.strip():
        raise InvalidCatalog([Problem(None, "the file", "is empty")])
    try:
        text = data.decode()
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InvalidCatalog(
            [Problem(line, "the file", "is not UTF-8 text: save it with the UTF-8 encoding")]
        ) from err
    try:
        raw = catalog_table(data, source=source)
    except CatalogError as err:  # not TOML, nested too deeply, not a table
        raise InvalidCatalog([_file_problem(rule) for _, rule in err.problems]) from err
    try:
        return parse_catalog(raw, source=source)
    except CatalogError as err:
        lines = text.splitlines()
        raise InvalidCatalog(
            [explain(path, rule, raw, lines) for path, rule in err.problems]
        ) from err


def _file_problem(rule: str) -> Problem:
    """A problem with the file as a whole; a TOML syntax error with its line."""
    syntax = rule.removeprefix("is not valid toml: ")
    if syntax == rule:
        return Problem(None, "the file", rule)
    found = _TOML_LINE.search(syntax)
    reason = _TOML_LINE.sub("", syntax).strip()
    return Problem(
        int(found.group(1)) if found else None, "the file", f"is not valid TOML here: {reason}"
    )


def explain(path: str, rule: str, raw: dict[str, Any], lines: list[str]) -> Problem:
    """One of :class:`flows.catalog.CatalogError`'s (path, rule) pairs in plain words."""
    if path in ("", "(root)"):
        return Problem(None, "the catalog:", _plain(rule, ""))
    parts = path.split(".")
    words: list[str] = []
    node: Any = raw
    for part in parts:
        if part.isdigit() and isinstance(node, list):
            index = int(part)
            node = node[index] if index < len(node) else None
            owner = words.pop() if words else "entry"
            label = f"{_SINGULAR.get(owner, owner.rstrip('s'))} #{index + 1}"
            code = node.get("code") if isinstance(node, dict) else None
            words.append(f"{label} ({code})" if isinstance(code, str) and code else label)
        else:
            node = node.get(part) if isinstance(node, dict) else None
            words.append(part)
    last = next((p for p in reversed(parts) if not p.isdigit()), "")
    return Problem(locate(lines, parts), " › ".join(words), _plain(rule, last))


def _plain(rule: str, name: str) -> str:
    rule = rule.removeprefix("Value error, ")
    if rule in _PHRASES:
        return _PHRASES[rule]
    pattern = re.fullmatch(r"String should match pattern '(.*)'", rule)
    if pattern:
        return _PATTERNS.get(pattern.group(1), f"does not have the expected form ({rule})")
    most = re.match(r"List should have at most (\d+) items?(?: after validation)?, not (\d+)", rule)
    if most:
        return f"has {most[2]} entries; a catalog may list at most {most[1]}"
    if rule.startswith("List should have at least"):
        least = re.search(r"at least (\d+) item", rule)
        return f"needs at least {least.group(1) if least else 1} entries"
    bound = re.fullmatch(r"Input should be (greater|less) than or equal to (\S+)", rule)
    if bound:
        return f"must be {'at least' if bound.group(1) == 'greater' else 'at most'} {bound[2]}"
    if rule.startswith("Input should be "):
        return "must be " + rule.removeprefix("Input should be ")
    return rule if name else f"is not consistent: {rule}"


def _blocks(lines: list[str]) -> list[tuple[tuple[str, ...], int]]:
    """Each table header of a TOML text as (path with array indices, line index)."""
    counters: dict[tuple[str, ...], int] = {}
    blocks: list[tuple[tuple[str, ...], int]] = [((), -1)]
    for number, line in enumerate(lines):
        match = _HEADER.match(line)
        if match is None:
            continue
        array = match.group(1) is not None
        names = [p.strip().strip("\"'") for p in match.group(2).split(".")]
        path: list[str] = []
        for i, name in enumerate(names):
            path.append(name)
            last = i == len(names) - 1
            if tuple(path) in counters and not (last and array):
                path.append(str(counters[tuple(path)]))
        if array:
            key = tuple(path)
            counters[key] = counters.get(key, -1) + 1
            path.append(str(counters[key]))
        blocks.append((tuple(path), number))
    return blocks


def locate(lines: list[str], parts: list[str]) -> int | None:
    """The line (1-based) of the catalog value at ``parts``, or of its table, when found."""
    path = tuple(parts)
    block, start = max(
        ((b, n) for b, n in _blocks(lines) if path[: len(b)] == b), key=lambda bn: len(bn[0])
    )
    rest = [p for p in path[len(block) :] if not p.isdigit()]
    if rest:
        key = re.compile(rf"^\s*[\"']?{re.escape(rest[0])}[\"']?\s*[=.]")
        for number in range(start + 1, len(lines)):
            if _HEADER.match(lines[number]):
                break
            if key.match(lines[number]):
                return number + 1
    return start + 1 if start >= 0 else None


# --- differences ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str  # e.g. "name.en", "notice.materials[2].copies"
    before: str  # "" when it was not set
    after: str  # "" when it is no longer set


@dataclass(frozen=True, slots=True)
class ItemChange:
    kind: str  # service, bundle, category
    code: str
    name: str  # its English name, for the reader
    state: str  # added, removed, changed
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class CatalogDiff:
    live_version: int | None  # None: nothing is live yet
    draft_version: int | None
    station: tuple[FieldChange, ...] = ()
    items: tuple[ItemChange, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. "the order of services changed"
    unified: str = ""
    counts: dict[str, int] = field(default_factory=dict)  # "services added": 1, ...

    @property
    def same(self) -> bool:
        return not (self.station or self.items or self.notes or self.unified)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"same": self.same}


def catalog_data(data: bytes | None) -> dict[str, Any] | None:
    """A catalog as plain data with every default filled in (so that writing a default out is no
    change), or the TOML as it is when it no longer validates, or None."""
    if data is None:
        return None
    try:
        raw = catalog_table(data, source="diff")
    except CatalogError:  # not TOML, or nested too deeply to be walked
        return None
    try:
        return parse_catalog(raw).model_dump(mode="json")
    except CatalogError:
        return raw


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested tables as dotted fields; lists of tables by position (``materials[2].copies``);
    unset (None) values are left out."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out |= flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for index, item in enumerate(value):
            out |= flatten(item, f"{prefix}[{index + 1}]")
        return out
    return {} if value is None else {prefix: value}


def show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and value and all(isinstance(v, str | int) for v in value):
        return ", ".join(str(v) for v in value)
    return json.dumps(value, ensure_ascii=False)


def field_changes(before: Any, after: Any) -> tuple[FieldChange, ...]:
    old, new = flatten(before), flatten(after)
    return tuple(
        FieldChange(name, show(old.get(name)), show(new.get(name)))
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    )


def _items(data: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    entries = data.get(kind)
    if not isinstance(entries, list):
        return {}
    return {
        str(e["code"]): e for e in entries if isinstance(e, dict) and isinstance(e.get("code"), str)
    }


def _name(item: dict[str, Any]) -> str:
    name = item.get("name")
    if isinstance(name, dict):
        return str(name.get("en") or name.get("zh") or "")
    return str(name or "")


def diff_catalogs(
    live: bytes | None, draft: bytes, labels: tuple[str, str] = ("live", "draft")
) -> CatalogDiff:
    """What signing ``draft`` changes against ``live`` (None: nothing is live yet); ``labels``
    name the two in the text diff."""
    old = catalog_data(live) or {}
    new = catalog_data(draft) or {}
    items: list[ItemChange] = []
    counts: dict[str, int] = {}
    notes: list[str] = []
    for kind in KINDS:
        before, after = _items(old, kind), _items(new, kind)
        singular = _SINGULAR[kind]
        for code in after.keys() - before.keys():
            items.append(ItemChange(singular, code, _name(after[code]), "added"))
        for code in before.keys() - after.keys():
            items.append(ItemChange(singular, code, _name(before[code]), "removed"))
        for code in before.keys() & after.keys():
            changes = field_changes(
                {k: v for k, v in before[code].items() if k != "code"},
                {k: v for k, v in after[code].items() if k != "code"},
            )
            if changes:
                items.append(ItemChange(singular, code, _name(after[code]), "changed", changes))
        kept = [c for c in after if c in before]
        if kept != [c for c in before if c in after]:
            notes.append(f"the order of the {kind} changed (terminals show them in this order)")
    order = {"added": 0, "changed": 1, "removed": 2}
    rank = {"service": 0, "bundle": 1, "category": 2}
    items.sort(key=lambda i: (rank[i.kind], order[i.state], i.code))
    for item in items:
        key = f"{item.kind} {item.state}"
        counts[key] = counts.get(key, 0) + 1
    live_text = live.decode(errors="replace") if live is not None else ""
    unified = list(
        difflib.unified_diff(
            live_text.splitlines(),
            draft.decode(errors="replace").splitlines(),
            labels[0] if live is not None else "(nothing live)",
            labels[1],
            lineterm="",
            n=2,
        )
    )
    if len(unified) > UNIFIED_LINES:
        cut = len(unified) - UNIFIED_LINES
        unified = [*unified[:UNIFIED_LINES], f"… {cut} more lines"]
    return CatalogDiff(
        live_version=_version(old) if live is not None else None,
        draft_version=_version(new),
        station=field_changes(old.get("station"), new.get("station")),
        items=tuple(items),
        notes=tuple(notes),
        unified="\n".join(unified),
        counts=counts,
    )


def _version(data: dict[str, Any]) -> int | None:
    version = data.get("version")
    return version if isinstance(version, int) else None
