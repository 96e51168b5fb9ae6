"""The catalog's limits: text lengths that fit the screen in elder mode, how many entries a catalog
lists, and how deep it nests. Each refusal names the path and the rule, never a parser's crash."""

from __future__ import annotations

import copy
import json
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from flows.catalog import (
    LINE_EN,
    LINE_ZH,
    MAX_DEPTH,
    MAX_SERVICES,
    NAME_EN,
    NAME_ZH,
    PARAGRAPH_EN,
    PARAGRAPH_ZH,
    CatalogError,
    catalog_table,
    load_catalog,
    parse_catalog,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "catalog" / "demo.toml"

# realistic long matter names and their English, 2-3 times longer
LONG_NAMES = [
    (
        "城乡居民基本养老保险待遇领取资格认证",
        "Rural and urban residents' basic pension: entitlement check",
    ),
    (
        "老年人、残疾人、孕妇绿色通道优先取号",
        "Priority ticket: green lane for elders, disabled people and pregnant women",
    ),
]


def demo() -> dict[str, Any]:
    return tomllib.loads(DEMO.read_text(encoding="utf-8"))


def test_every_catalog_under_assets_validates() -> None:
    catalogs = sorted((ROOT / "assets").rglob("*.toml"))
    catalogs = [p for p in catalogs if "services" in tomllib.loads(p.read_text(encoding="utf-8"))]
    assert catalogs, "the demo catalog"
    for path in catalogs:
        load_catalog(path)


@pytest.mark.parametrize(("zh", "en"), LONG_NAMES)
def test_realistic_long_names_fit(zh: str, en: str) -> None:
    data = demo()
    data["services"][0]["name"] = {"zh": zh, "en": en}
    data["services"][8]["notice"]["materials"][0]["name"] = {"zh": zh, "en": en}
    assert parse_catalog(data).services[0].name.zh == zh


# (path of a Text, Chinese limit, English limit)
FIELDS = [
    ("station.name", NAME_ZH, NAME_EN),
    ("categories.0.name", NAME_ZH, NAME_EN),
    ("services.0.name", NAME_ZH, NAME_EN),
    ("services.0.description", PARAGRAPH_ZH, PARAGRAPH_EN),
    ("services.0.spoken", PARAGRAPH_ZH, PARAGRAPH_EN),
    ("services.8.notice.materials.0.name", NAME_ZH, NAME_EN),
    ("services.8.notice.materials.1.note", LINE_ZH, LINE_EN),
    ("services.8.notice.legal_basis", LINE_ZH, LINE_EN),
    ("services.8.notice.time_limit", LINE_ZH, LINE_EN),
    ("services.8.notice.fees", LINE_ZH, LINE_EN),
    ("services.8.notice.place", LINE_ZH, LINE_EN),
    ("bundles.0.name", NAME_ZH, NAME_EN),
    ("bundles.0.description", PARAGRAPH_ZH, PARAGRAPH_EN),
    ("bundles.0.spoken", PARAGRAPH_ZH, PARAGRAPH_EN),
]


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    node: Any = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    node[keys[-1]] = value


@pytest.mark.parametrize(("path", "zh_max", "en_max"), FIELDS)
def test_every_human_text_is_bounded(path: str, zh_max: int, en_max: int) -> None:
    data = demo()
    _set(data, path, {"zh": "证" * zh_max, "en": "e" * en_max})  # at the limit: accepted
    parse_catalog(data)
    for lang, limit in (("zh", zh_max), ("en", en_max)):
        over = {"zh": "证", "en": "e"} | {lang: ("证" if lang == "zh" else "e") * (limit + 1)}
        broken = copy.deepcopy(data)
        _set(broken, path, over)
        with pytest.raises(CatalogError) as refused:
            parse_catalog(broken, source="long.toml")
        [(where, rule)] = refused.value.problems
        assert where == f"{path}.{lang}"
        assert f"is {limit + 1} characters long" in rule and f"at most {limit}" in rule
        assert "elder mode" in rule


def test_ten_thousand_services_are_refused_at_once() -> None:
    data = demo()
    one = data["services"][0]
    data["services"] = [dict(one, code=f"service_{i}") for i in range(10_000)]
    started = time.monotonic()
    with pytest.raises(CatalogError) as refused:
        parse_catalog(data)
    assert time.monotonic() - started < 1.0
    assert refused.value.problems == [
        ("services", f"List should have at most {MAX_SERVICES} items after validation, not 10000")
    ]


def test_as_many_services_as_allowed_validate_quickly() -> None:
    data = demo()
    one = data["services"][0]
    data["services"] = [dict(one, code=f"service_{i}") for i in range(MAX_SERVICES)]
    data["bundles"] = []
    started = time.monotonic()
    assert len(parse_catalog(data).services) == MAX_SERVICES
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 900, 5_000])
@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_a_catalog_nested_too_deeply_is_refused_as_such(
    tmp_path: Path, depth: int, fmt: str
) -> None:
    nested = "[" * depth + "]" * depth
    text = f"version = 1\nx = {nested}\n" if fmt == "toml" else f'{{"version": 1, "x": {nested}}}'
    path = tmp_path / f"deep.{fmt}"
    path.write_text(text)
    with pytest.raises(CatalogError) as refused:
        load_catalog(path)
    assert refused.value.problems == [
        ("(file)", f"is nested too deeply (at most {MAX_DEPTH} levels)")
    ]
    with pytest.raises(CatalogError, match="nested too deeply"):
        catalog_table(text.encode(), source="upload", fmt=fmt)


def test_a_deep_table_of_dotted_keys_is_refused_too() -> None:
    text = "version = 1\n[" + ".".join(["a"] * 5_000) + "]\nx = 1\n"
    with pytest.raises(CatalogError, match="nested too deeply"):
        catalog_table(text.encode(), source="upload")


def test_the_demo_is_well_within_the_nesting_limit() -> None:
    data = catalog_table(DEMO.read_bytes(), source=str(DEMO))
    assert data == demo()
    as_json = json.dumps(data).encode()
    assert catalog_table(as_json, source="demo.json", fmt="json") == data
