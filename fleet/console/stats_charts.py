"""The Statistics page's four charts, from :class:`fleet.console.stats.Stats` (words: stat_words).

- **Ratings**: one bar per number of stars (5 to 1), its count and share of all ratings.
- **Where residents give up**: the session's screens in the order a resident meets them
  (:data:`fleet.console.stat_words.SCREENS`), each with the sessions abandoned there, stacked by
  why (timed out, cancelled, card removed, station restarted), and the share of the sessions that
  reached that screen (every session starts at the ID card; one that was abandoned at an earlier
  step did not reach a later one; notice and preview are alternatives after choose). Screens the
  console does not know, or none recorded, come last and say so.
- **Daily volume by service**: one column per day of the window (days in the console's zone),
  stacked by service under its catalog name (the :data:`TOP_SERVICES` busiest, the rest together).
- **Uptime per station**: :mod:`fleet.console.uptime`, the :data:`UPTIME_SHOWN` lowest first.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from fleet.console import i18n
from fleet.console.charts import Bar, Segment, columns, hbars, no_data
from fleet.console.stat_words import REASONS, SCREENS, STEP, reason, say, screen

if TYPE_CHECKING:
    from fleet.console.stats import Stats

TOP_SERVICES = 6
UPTIME_SHOWN = 20
OTHER = "\x00other"  # a service code no station can send (codes are names)


def service_label(code: str, names: dict[str, tuple[str, str]]) -> str:
    """A service by its catalog name in both languages; one no signed catalog names is shown by
    its code; a transaction that ended before a service was chosen says so."""
    if code in ("", "-"):
        return say("no_service")
    if code == OTHER:
        return say("other_services")
    zh, en = names.get(code, (code, code))
    return zh if i18n.current() == "zh" else en


def named_tags(tags: Counter[str]) -> list[tuple[str, int]]:
    """Rating tags in words (the kiosk's own words for them), most ticked first."""
    out = []
    for code, n in tags.most_common():
        out.append((i18n.word("tag", code), n))
    return out


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "—"


def ratings(stats: Stats) -> str:
    total = sum(stats.ratings.values())
    bars = [
        Bar.one(
            say("stars", n=k),
            stats.ratings.get(k, 0),
            note=f"({_pct(stats.ratings.get(k, 0), total)})",
        )
        for k in range(5, 0, -1)
    ]
    return hbars("ratings", say("chart.ratings"), bars, empty=say("no_data"))


def tags(stats: Stats) -> str:
    """What residents who rated ticked to improve, in the kiosk's words, most ticked first."""
    bars = [Bar.one(words, n) for words, n in named_tags(stats.rating_tags)]
    return hbars("tags", say("chart.tags"), bars, empty=say("no_data"))


def funnel(stats: Stats) -> str:
    title = say("chart.funnel")
    if not stats.transactions:
        return no_data(title, say("no_data"))
    if not stats.abandoned:
        return no_data(title, say("funnel.none"))
    by_screen: dict[str, Counter[str]] = {}
    for (code, why, _mode), n in stats.abandoned.items():
        key = code if code in STEP else ("" if code in ("", "unknown") else code)
        by_screen.setdefault(key, Counter())[why if why in REASONS else ""] += n
    lost_before: Counter[int] = Counter()
    for code, reasons in by_screen.items():
        if code in STEP:
            lost_before[STEP[code]] += sum(reasons.values())
    order = [s for s in SCREENS if s in by_screen or STEP[s] <= 2]
    order += sorted(
        (c for c in by_screen if c not in STEP), key=lambda c: -sum(by_screen[c].values())
    )
    series = [reason(r) for r in (*REASONS, "") if any(r in c for c in by_screen.values())]
    bars = []
    for code in order:
        reasons = by_screen.get(code, Counter())
        n = sum(reasons.values())
        segments = tuple(Segment(reason(r), reasons[r]) for r in (*REASONS, "") if reasons[r])
        if code in STEP:
            reached = stats.transactions - sum(v for k, v in lost_before.items() if k < STEP[code])
            note = f"({_pct(n, reached)} / {reached})"
        else:
            note = ""
        bars.append(Bar(screen(code), segments or (Segment("", 0),), note))
    return hbars("funnel", title, bars, series=series, empty=say("no_data"))


def volume(stats: Stats) -> str:
    names = stats.service_names
    per_day: dict[str, Counter[str]] = {day: Counter() for day in stats.day_list}
    totals: Counter[str] = Counter()
    for (day, _station, service), outcomes in stats.volume.items():
        if day in per_day:
            per_day[day][service] += sum(outcomes.values())
            totals[service] += sum(outcomes.values())
    top = [code for code, _ in totals.most_common(TOP_SERVICES)]
    codes = top + ([OTHER] if len(totals) > len(top) else [])
    labels = {code: service_label(code, names) for code in codes}
    bars = []
    for day, counts in per_day.items():
        folded: Counter[str] = Counter()
        for code, n in counts.items():
            folded[code if code in top else OTHER] += n
        segments = tuple(Segment(labels[c], folded[c]) for c in codes if folded[c])
        bars.append(Bar(day[5:], segments or (Segment("", 0),)))
    series = [labels[c] for c in codes]
    return columns(
        "volume", say("chart.volume"), bars, series=series, width=1100, empty=say("no_data")
    )


def uptime_chart(stats: Stats) -> str:
    shown = stats.uptime[:UPTIME_SHOWN]
    title = say("chart.uptime")
    if len(stats.uptime) > len(shown):
        title += " · " + say("uptime.shown", shown=len(shown), total=len(stats.uptime))
    bars = [Bar.one(u.station, u.percent, text=f"{u.percent:.1f}%") for u in shown]
    # 0 % for every station is a finding (all silent), not an empty period
    return hbars("uptime", title, bars, scale_max=100.0, zeros_are_data=True, empty=say("no_data"))


def charts(stats: Stats) -> dict[str, str]:
    return {
        "ratings": ratings(stats),
        "tags": tags(stats),
        "funnel": funnel(stats),
        "volume": volume(stats),
        "uptime": uptime_chart(stats),
    }
