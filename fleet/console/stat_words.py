"""The words of the Statistics charts: every label goes through :func:`say`.

The console's templates are bilingual inline ("统计 Statistics") until they move to Babel
catalogs; the charts are drawn in Python, so their words are here, under keys, and :func:`say`
is the one place that turns a key into text. The translator's change is to make ``say`` look
the key up in the catalog of the page's language (``gettext``) instead of joining both words.

Codes that stations send (screens, reasons) are named in words; a code the console does not know
is shown as itself and called unknown, and a missing one says it was not recorded — never a bare
"unknown" that looks like a value.
"""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    # chart titles and the words inside them
    "chart.ratings": ("评分分布", "Ratings"),
    "chart.tags": ("居民希望改进", "What residents would improve"),
    "chart.funnel": ("放弃办理（按界面）", "Where residents give up, by screen"),
    "chart.volume": ("每日业务量（按事项）", "Daily volume by service"),
    "chart.uptime": ("终端在线率", "Uptime per station"),
    "stars": ("{n} 星", "{n} stars"),
    "funnel.none": ("本期无人中途放弃", "nobody gave up in this period"),
    "other_services": ("其他事项", "other services"),
    "no_service": ("未选事项", "no service chosen"),
    "uptime.shown": (
        "在线率最低的 {shown} 台（共 {total} 台）",
        "the {shown} lowest of {total} stations",
    ),
    # the kiosk's session screens (flows/session.py), where a resident may give up or ask help
    "screen.idle": ("首页", "Home"),
    "screen.home": ("首页", "Home"),
    "screen.identify": ("读取身份证", "ID card"),
    "screen.choose": ("选择事项", "Choose a service"),
    "screen.notice": ("材料告知", "Materials notice"),
    "screen.preview": ("预览", "Preview"),
    "screen.printing": ("打印", "Printing"),
    "screen.interrupted": ("打印中断", "Printing interrupted"),
    "screen.rate": ("评价", "Rating"),
    "screen.none": ("未记录界面", "screen not recorded"),
    "screen.unknown": ("未知界面 {code}", "unknown screen {code}"),
    # why a session was abandoned (flows/session.py, kiosk/shell/printing.py)
    "reason.timeout": ("超时无操作", "timed out"),
    "reason.cancel": ("居民取消", "cancelled"),
    "reason.card_removed": ("取走身份证", "card removed"),
    "reason.restart": ("终端重启", "station restarted"),
    "reason.none": ("未记录原因", "reason not recorded"),
    "reason.unknown": ("其他原因 {code}", "other reason {code}"),
    "mode.elder": ("长辈模式", "elder mode"),
    "mode.standard": ("标准模式", "standard mode"),
}

# The session's screens in the order a resident meets them (notice and preview are two ways on
# from choose); the funnel is drawn in this order.
SCREENS = ("identify", "choose", "notice", "preview", "printing", "interrupted")
STEP = {"identify": 0, "choose": 1, "notice": 2, "preview": 2, "printing": 3, "interrupted": 3}
REASONS = ("timeout", "cancel", "card_removed", "restart")


def say(key: str, **params: object) -> str:
    """The words for ``key`` in both languages ("评分分布 Ratings"); the key itself when there
    are none (a missing word shows, it does not break a page)."""
    zh, en = WORDS.get(key, (key, key))
    return f"{zh.format(**params)} {en.format(**params)}"


def screen(code: str | None) -> str:
    if not code or code == "unknown":  # stations before this change sent None as "unknown"
        return say("screen.none")
    if f"screen.{code}" in WORDS:
        return say(f"screen.{code}")
    return say("screen.unknown", code=code)


def reason(code: str | None) -> str:
    if not code or code == "unknown":
        return say("reason.none")
    if f"reason.{code}" in WORDS:
        return say(f"reason.{code}")
    return say("reason.unknown", code=code)
