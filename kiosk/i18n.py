"""Translations: gettext catalogs (``assets/locales/*/LC_MESSAGES/kiosk.po``) managed with Babel.

Message ids are keys (``home.title``, ``error.print_failed``): what a resident sees or hears is
always looked up, never English text from code. Chinese is the first language; English is
complete too. A missing translation is an error in tests (``strict=True``) and falls back to the
other language, never to the raw key, on a station.
"""

from __future__ import annotations

import logging
from pathlib import Path

from babel.messages.pofile import read_po

from assets import ASSETS_DIR

log = logging.getLogger("kiosk.i18n")

LOCALES = {"zh": "zh_CN", "en": "en"}


class MissingTranslation(KeyError):
    pass


class Translator:
    def __init__(self, locales_dir: Path = ASSETS_DIR / "locales", *, strict: bool = False) -> None:
        self.strict = strict
        self._texts: dict[str, dict[str, str]] = {}
        for lang, folder in LOCALES.items():
            with (locales_dir / folder / "LC_MESSAGES" / "kiosk.po").open("rb") as f:
                catalog = read_po(f, locale=folder)
            self._texts[lang] = {
                str(m.id): str(m.string) for m in catalog if m.id and isinstance(m.string, str)
            }
        self._missing_logged: set[tuple[str, str]] = set()

    def keys(self, lang: str) -> set[str]:
        return {k for k, v in self._texts[lang].items() if v}

    def has(self, key: str, lang: str) -> bool:
        return bool(self._texts[lang].get(key))

    def __call__(self, key: str, lang: str, **params: object) -> str:
        text = self._texts.get(lang, {}).get(key, "")
        if not text:
            if self.strict:
                raise MissingTranslation(f"{key!r} has no {lang} translation")
            if (key, lang) not in self._missing_logged:
                self._missing_logged.add((key, lang))
                log.error("missing translation %s for %s", key, lang)
            other = "en" if lang == "zh" else "zh"
            text = self._texts.get(other, {}).get(key, "") or self._texts[lang].get(
                "error.generic", key
            )
        return text.format(**params) if params else text
