"""The console's two languages, through gettext catalogs managed with Babel.

The catalogs are ``assets/locales/{zh_CN,en}/LC_MESSAGES/console.po`` (the ``console`` domain,
beside the kiosk's ``kiosk.po``). Message ids are keys (``nav.fleet``, ``status.out_of_order``),
as the kiosk's are: neither language is the source text, a page that shows a key shows a
missing translation, and :mod:`fleet.console.messages` keeps the catalogs in step with the
templates and the vocabularies of :mod:`fleet.console.words` (a test checks they are).

Each user chooses a language (Chinese first): the :data:`COOKIE` set by ``GET /lang``, else the
browser's ``Accept-Language``, else Chinese. :class:`LanguageMiddleware` puts the request's
language in a context variable, and the gettext callables installed once in the one, shared
Jinja2 environment read it, so two requests rendering on two threads never see each other's
language. Python code that words something for a page calls :func:`gettext` the same way.

A key with no translation in the chosen language falls back to the other language, never to
the raw key, as on the kiosk; :func:`word` words a code (a command name, a state), falling back
to the code itself when the catalogs do not know it.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from assets import ASSETS_DIR

__all__ = [
    "COOKIE",
    "LANGS",
    "LanguageMiddleware",
    "both",
    "current",
    "gettext",
    "install",
    "negotiate",
    "ngettext",
    "switch",
    "translate",
    "use",
    "word",
]

DOMAIN = "console"
LOCALES_DIR = ASSETS_DIR / "locales"
LANGS = ("zh", "en")  # the first is the default
LOCALES = {"zh": "zh_CN", "en": "en"}
HTML_LANG = {"zh": "zh-CN", "en": "en"}
COOKIE = "console_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600

_current: ContextVar[str] = ContextVar("console_lang", default=LANGS[0])


def po_path(lang: str, locales_dir: Path = LOCALES_DIR) -> Path:
    return locales_dir / LOCALES[lang] / "LC_MESSAGES" / f"{DOMAIN}.po"


def _compiled(lang: str, locales_dir: Path) -> Translations:
    """The .po file compiled in memory (no .mo file to build or to forget)."""
    with po_path(lang, locales_dir).open("rb") as f:
        catalog = read_po(f, locale=LOCALES[lang], domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)  # leaves out empty translations, so the fallback answers
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


@cache
def translations(locales_dir: Path = LOCALES_DIR) -> dict[str, Translations]:
    """Each language's catalog, falling back to the other one's."""
    loaded = {lang: _compiled(lang, locales_dir) for lang in LANGS}
    for lang, catalog in loaded.items():
        other = next(o for o in LANGS if o != lang)
        catalog.add_fallback(_compiled(other, locales_dir))
    return loaded


def current() -> str:
    """The language of the request being answered (Chinese outside one)."""
    return _current.get()


def use(lang: str) -> None:
    """Word what follows in ``lang`` (in this context: a request, a test)."""
    _current.set(lang if lang in LANGS else LANGS[0])


def gettext(key: str, **params: Any) -> str:
    return translate(current(), key, **params)


def translate(lang: str, key: str, **params: Any) -> str:
    """``key`` in ``lang`` whatever the request's language (the CLI's English, the audit's)."""
    text = str(translations()[lang].gettext(key))
    return text % params if params else text


def ngettext(singular: str, plural: str, n: int, **params: Any) -> str:
    text = str(translations()[current()].ngettext(singular, plural, n))
    return text % {"num": n, **params}


def has(key: str) -> bool:
    return translations()[current()].gettext(key) != key


def word(kind: str, code: object) -> str:
    """A code in words (``word("command", "rebirth")`` is 重新上报 or "Re-send birth"); the code
    itself when the catalogs have no word for it (a station's own name for something)."""
    text = str(code)
    key = f"{kind}.{text.replace(':', '.')}"
    return gettext(key) if has(key) else text


def both(kind: str, code: str) -> dict[str, str]:
    """A code in both languages (the API's and the CLI's ``{"zh": ..., "en": ...}``)."""
    key = f"{kind}.{code.replace(':', '.')}"
    found = {lang: str(translations()[lang].gettext(key)) for lang in LANGS}
    return {lang: code if text == key else text for lang, text in found.items()}


def html_lang() -> str:
    return HTML_LANG[current()]


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's language, else the browser's first we have (by q), else Chinese."""
    if cookie in LANGS:
        return str(cookie)
    best, best_q = LANGS[0], 0.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        if lang not in LANGS:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > best_q or (q == best_q and lang == LANGS[0]):
            best, best_q = lang, q
    return best


Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Any]


class LanguageMiddleware:
    """Sets the request's language (a pure ASGI middleware: the context variable it sets is
    the one the handler, its worker threads and its templates see)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Any]], send: Any
    ) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            use(negotiate(request.cookies.get(COOKIE), request.headers.get("accept-language")))
        await self.app(scope, receive, send)


def switch_url(lang: str, back: str) -> str:
    return f"/lang?to={lang}&next={quote(back, safe='/')}"


def switch(secure_cookies: bool) -> Callable[[Request], Awaitable[Response]]:
    """``GET /lang?to=en&next=/alerts``: remember the choice in a cookie and go back. No login
    needed (the login page has the toggle too); a preference, so no CSRF token either."""

    async def endpoint(request: Request) -> Response:
        lang = request.query_params.get("to", "")
        target = request.query_params.get("next") or "/"
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        response = RedirectResponse(target, 303)
        if lang in LANGS:
            response.set_cookie(
                COOKIE,
                lang,
                max_age=COOKIE_MAX_AGE,
                httponly=True,
                samesite="lax",
                secure=secure_cookies,
            )
        return response

    return endpoint


def install(env: Environment) -> None:
    """Jinja2's i18n extension with callables that read the request's language, once for the
    shared environment (``_()``, ``ngettext()`` new-style: ``_("key", n=3)`` formats ``%(n)s``
    with the value escaped), plus ``word()``, ``lang()``, ``html_lang()`` and ``lang_url()``."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda key: translations()[current()].gettext(key),
        lambda s, p, n: translations()[current()].ngettext(s, p, n),
        newstyle=True,
    )
    env.globals["word"] = word
    env.globals["lang"] = current
    env.globals["html_lang"] = html_lang
    env.globals["langs"] = LANGS
    env.globals["lang_url"] = switch_url
