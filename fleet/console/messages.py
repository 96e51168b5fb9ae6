"""Keeps the console's catalogs in step with what it says (the tooling behind ``make messages``).

``python -m fleet.console.messages update`` extracts every key the console uses, with Babel and
the mapping in ``fleet/console/babel.cfg`` (``_()``/``ngettext()`` in the Jinja2 templates,
``gettext()``/``ngettext()`` in Python, and the key a ``RequestError`` of the rollouts is raised
with) plus every code of :func:`fleet.console.words.vocabulary`,
and merges them into ``assets/locales/{zh_CN,en}/LC_MESSAGES/console.po``: new keys arrive with
an empty translation to fill in, keys no longer used are dropped. ``check`` says what is missing,
untranslated or stale without writing (exit status 1), which is what the catalogs' test asks.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from fleet.console import i18n, words

HERE = Path(__file__).resolve().parent
MAPPING = HERE / "babel.cfg"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "RequestError": None}
PROJECT = "station-kiosk console"


def _ids(message: object) -> tuple[str, ...]:
    return tuple(message) if isinstance(message, tuple | list) else (str(message),)


def extract() -> Catalog:
    """Every message the console uses (keys; plural ones as ``(singular, plural)``)."""
    with MAPPING.open() as f:
        method_map, options_map = parse_mapping_cfg(f, str(MAPPING))  # type: ignore[no-untyped-call]
    template = Catalog(domain=i18n.DOMAIN, project=PROJECT, fuzzy=False)
    found = extract_from_dir(HERE, method_map, options_map, keywords=KEYWORDS)
    for filename, lineno, message, _comments, context in found:
        template.add(message, None, [(filename, lineno)], context=context)
    for key in sorted(words.keys()):
        if key not in template:
            template.add(key, None, [("words.py", 0)])
    return template


def _read(lang: str) -> Catalog:
    with i18n.po_path(lang).open("rb") as f:
        return read_po(f, locale=i18n.LOCALES[lang], domain=i18n.DOMAIN)


def problems(template: Catalog | None = None) -> list[str]:
    """What keeps the catalogs from matching the console: keys used but missing, keys with an
    empty translation, keys in a catalog no longer used."""
    template = template or extract()
    used = {m.id if isinstance(m.id, str) else m.id[0] for m in template if m.id}
    found: list[str] = []
    for lang in i18n.LANGS:
        catalog = _read(lang)
        held = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalog if m.id}
        found += [f"{lang}: missing {k}" for k in sorted(used - set(held))]
        found += [f"{lang}: stale {k}" for k in sorted(set(held) - used)]
        for key, message in sorted(held.items()):
            strings = _ids(message.string)
            if key in used and (not all(strings) or message.fuzzy):
                found.append(f"{lang}: untranslated {key}")
    return found


def update() -> None:
    template = extract()
    for lang in i18n.LANGS:
        path = i18n.po_path(lang)
        if path.exists():
            catalog = _read(lang)
        else:
            catalog = Catalog(locale=i18n.LOCALES[lang], domain=i18n.DOMAIN, project=PROJECT)
        catalog.update(template, no_fuzzy_matching=True, update_creation_date=False)
        catalog.obsolete.clear()
        catalog.fuzzy = False
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            write_po(f, catalog, width=100, no_location=True, sort_output=True)


def main(argv: list[str] | None = None) -> int:
    command = (argv if argv is not None else sys.argv[1:] or ["check"])[0]
    if command == "update":
        update()
    left = problems()
    for line in left:
        print(line)
    return 1 if left and command == "check" else 0


if __name__ == "__main__":
    raise SystemExit(main())
