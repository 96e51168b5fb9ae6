"""What the kiosk can draw and print, by name: the icons of services, bundles and categories, and
the templates of A4 documents. The catalog's schema refuses a name outside these sets, so that
``fleet catalog validate`` (and the terminal) catch an icon or template the kiosk would fail on.

An icon is drawn as one character in a coloured disc (the seal-like glyph icons of Chinese
government service halls), so it needs no image file and is legible in both languages.
"""

from __future__ import annotations

ICONS: dict[str, str] = {
    "document": "证",
    "bundle": "套",
    "shield": "保",
    "heart": "医",
    "person": "人",
    "home": "房",
    "receipt": "票",
    "building": "企",
    "shop": "商",
    "list": "单",
    "ticket": "号",
    "folder": "类",
    "star": "常",
    "family": "家",
    "baby": "育",
    "elder": "老",
    "fund": "金",
    "farm": "农",
    "work": "业",
    "car": "车",
    "scales": "法",
    "help": "助",
    "tax": "税",
    "school": "学",
    "house": "住",
    "search": "查",
    "event": "事",
    "mobile": "掌",  # 掌上办: a matter done on a phone
}
"""Icon name → the character drawn for it."""

TEMPLATES: frozenset[str] = frozenset({"record_certificate"})
"""The A4 templates the kiosk can build (``flows.documents``)."""
