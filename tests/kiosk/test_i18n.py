"""Translations: every key exists in both languages; every prompt the flow speaks is translated."""

from __future__ import annotations

import re
from pathlib import Path

from kiosk.i18n import Translator

ROOT = Path(__file__).resolve().parents[2]


def test_both_languages_have_the_same_complete_keys() -> None:
    tr = Translator(strict=True)
    assert tr.keys("zh") == tr.keys("en")
    assert len(tr.keys("zh")) > 40


def test_every_key_used_in_code_and_kv_is_translated() -> None:
    tr = Translator(strict=True)
    used: set[str] = set()
    pattern = re.compile(
        r"""['"]((?:home|bar|identify|choose|preview|printing|rate|warning|help|prompt|error|sim|unavailable|take_card|thanks)\.[a-z0-9_.]+)['"]"""
    )
    for path in [
        *ROOT.glob("kiosk/**/*.py"),
        *ROOT.glob("kiosk/**/*.kv"),
        *ROOT.glob("flows/*.py"),
        *ROOT.glob("drivers/**/*.py"),
    ]:
        used |= set(pattern.findall(path.read_text(encoding="utf-8")))
    used = {k for k in used if not k.endswith(".")}
    assert used, "no keys found: the pattern is broken"
    missing = sorted(k for k in used if not (tr.has(k, "zh") and tr.has(k, "en")))
    assert not missing, missing


def test_chinese_is_chinese() -> None:
    tr = Translator(strict=True)
    for key in ("home.title", "prompt.identify", "rate.5"):
        assert re.search(r"[\u4e00-\u9fff]", tr(key, "zh"))
        assert not re.search(r"[\u4e00-\u9fff]", tr(key, "en"))
