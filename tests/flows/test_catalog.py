"""The catalog schema: the demo catalog validates; broken catalogs name the path and the rule."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from flows.catalog import CatalogError, load_catalog, parse_catalog

DEMO = Path(__file__).resolve().parents[2] / "assets" / "catalog" / "demo.toml"


def demo() -> dict[str, Any]:
    return tomllib.loads(DEMO.read_text(encoding="utf-8"))


def test_demo_catalog_validates() -> None:
    catalog = load_catalog(DEMO)
    assert catalog.service("social_insurance_certificate").template
    assert len(catalog.enabled_services()) >= 12
    assert catalog.bundle("retirement_bundle").services[0] == "social_insurance_certificate"
    notices = [s for s in catalog.services if s.notice is not None]
    assert len(notices) >= 3 and all(s.notice and s.notice.legal_basis for s in notices)


def test_hours_windows() -> None:
    from flows.catalog import within

    assert within("06:00-23:00", 6 * 60) and not within("06:00-23:00", 23 * 60)
    assert within("22:00-06:00", 23 * 60) and within("22:00-06:00", 60)
    assert not within("22:00-06:00", 12 * 60) and within("00:00-24:00", 0)


def _break(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(demo())
    node: Any = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    last = keys[-1]
    if value is _DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


_DELETE = object()

BROKEN = [
    ("version", 0, "version", "greater than or equal to 1"),
    ("station.help_phone", "call us", "station.help_phone", "should match pattern"),
    ("station.name", _DELETE, "station.name", "Field required"),
    ("services.0.code", "Bad Code", "services.0.code", "should match pattern"),
    ("services.0.outputs", [], "services.0.outputs", "at least 1 item"),
    ("services.0.outputs", ["fax"], "services.0.outputs.0", "'a4' or 'thermal'"),
    ("services.0.template", _DELETE, "services.0", "needs a template"),
    ("services.0.name.en", "", "services.0.name.en", "at least 1 character"),
    ("services.0.colour", "red", "services.0.colour", "Extra inputs are not permitted"),
    ("services.1.code", "social_insurance_certificate", "(root)", "unique"),
    ("services.2.category", "nowhere", "(root)", "not defined"),
    (
        "services.7.notice.materials.0.copies",
        0,
        "services.7.notice.materials.0.copies",
        "greater than",
    ),
    ("services.7.notice.materials", [], "services.7.notice.materials", "at least 1 item"),
    ("services.7.notice.fees", _DELETE, "services.7.notice.fees", "Field required"),
    ("services.0.identity", "none", "services.0", "provider needs to know who asks"),
    ("services.4.hours", "6am-11pm", "services.4.hours", "should match pattern"),
    ("station.duty_hours", "25:00-26:00", "station.duty_hours", "should match pattern"),
    ("bundles.0.services", ["queue_ticket"], "bundles.0.services", "at least 2 items"),
    ("bundles.0.services.1", "nope", "(root)", "unknown service"),
    ("bundles.0.code", "queue_ticket", "(root)", "unique"),
]


@pytest.mark.parametrize(("path", "value", "where", "rule"), BROKEN)
def test_broken_catalog_names_path_and_rule(path: str, value: Any, where: str, rule: str) -> None:
    with pytest.raises(CatalogError) as err:
        parse_catalog(_break(path, value), source="broken.toml")
    problems = err.value.problems
    assert any(p == where and rule in r for p, r in problems), problems
    assert "broken.toml" in str(err.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot be read"):
        load_catalog(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("version = = 1")
    with pytest.raises(CatalogError, match="not valid toml"):
        load_catalog(bad)
