"""The console in two languages through its catalogs (issue 18, "translations through catalogs"):
every key used has words in Chinese and English and no catalog is stale; each user's choice of
language holds across pages; codes (commands, states, results) and command results are shown in
words, a collected log as text with its line breaks."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest

from fleet.agent.catalog_update import Reason
from fleet.console import Console, i18n, messages, words
from fleet.console.rollout_pages import reason_words
from fleet.console.rollout_service import RequestError, desired_from
from fleet.console.store import CommandRow, Station
from tests.fleet.console.test_console import client, login, make_console

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_key_used_has_words_in_both_languages_and_no_catalog_is_stale() -> None:
    template = messages.extract()
    used = {m.id if isinstance(m.id, str) else m.id[0] for m in template if m.id}
    assert {"nav.fleet", "command.rebirth", "status.out_of_order", "field.reason"} <= used
    assert words.keys() <= used  # every command, state, alert kind ... of the code
    assert messages.problems(template) == [], "run `make messages` and fill in the words"


def test_chinese_is_chinese_and_english_is_not() -> None:
    catalogs = i18n.translations()
    for key in ("nav.fleet", "command.rebirth", "status.out_of_order", "alert.help_request"):
        assert CJK.search(catalogs["zh"].gettext(key)), key
        assert not CJK.search(catalogs["en"].gettext(key)), key


@pytest.mark.parametrize(
    ("cookie", "accept", "lang"),
    [
        (None, None, "zh"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "en;q=0.5,zh-CN;q=0.8", "zh"),
        (None, "fr, en;q=0.3", "en"),
        (None, "fr", "zh"),
        ("en", "zh-CN", "en"),
        ("zh", "en", "zh"),
        ("xx", "en", "en"),
    ],
)
def test_the_language_is_the_cookie_else_the_browser_else_chinese(
    cookie: str | None, accept: str | None, lang: str
) -> None:
    assert i18n.negotiate(cookie, accept) == lang


def test_words_for_codes_and_threads_do_not_share_a_language() -> None:
    seen: dict[str, list[str]] = {}

    def worker(lang: str) -> None:
        i18n.use(lang)
        for _ in range(200):
            seen.setdefault(lang, []).append(i18n.word("command", "rebirth"))
            time.sleep(0)

    threads = [threading.Thread(target=worker, args=(lang,)) for lang in ("zh", "en")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(seen["zh"]) == {"重新上报"} and set(seen["en"]) == {"Re-send birth"}
    assert i18n.word("command", "no_such_command") == "no_such_command"  # a code as it is


@pytest.fixture
def console(db_url: str) -> Iterator[Console]:
    console = make_console(None, db_url)
    now = time.time()
    with console.store.session() as db:
        station = Station(site="zibo", station="st-0001", online=False, last_seen=now - 30)
        db.add(station)
        db.flush()
        log = "2026-12-05 03:00:01 kiosk started\n2026-12-05 03:00:02 <printer> ready"
        for n, (name, status, detail) in enumerate(
            [
                ("rebirth", "succeeded", {"birth": "published"}),
                ("collect_logs", "succeeded", {"files": ["kiosk.log"], "lines": 2, "text": log}),
                ("test_print", "failed", {"reason": "not_printed", "printer": "a4"}),
            ]
        ):
            db.add(
                CommandRow(
                    id=f"c-{n}",
                    station_id=station.id,
                    name=name,
                    args={},
                    timeout_s=30.0,
                    status=status,
                    detail=detail,
                    actor="tech",
                    created_at=now - n,
                    updated_at=now - n,
                )
            )
    try:
        yield console
    finally:
        console.stop()


def test_the_fleet_page_speaks_the_language_asked_for(console: Console) -> None:
    tech, _ = login(console, "tech")
    zh = tech.get("/").text
    assert '<html lang="zh-CN">' in zh
    assert "<h1>终端总览</h1>" in zh and ">总览</a>" in zh and ">Fleet<" not in zh
    assert "暂停服务" in zh and "out_of_order</option>" not in zh  # the state filter in words
    en = tech.get("/", headers={"Accept-Language": "en-GB,en;q=0.8"}).text
    assert '<html lang="en">' in en
    assert "<h1>Fleet</h1>" in en and "总览" not in en and "Out of order" in en
    for page in (zh, en):
        assert 'id="lang-' in page  # the toggle: the other language is a link


def test_the_switch_persists_across_pages_and_logging_in_again(console: Console) -> None:
    anonymous = client(console)
    assert '<html lang="zh-CN">' in anonymous.get("/login").text
    switched = anonymous.get("/lang", params={"to": "en", "next": "/login"})
    assert switched.status_code == 303 and switched.headers["location"] == "/login"
    assert anonymous.cookies.get(i18n.COOKIE) == "en"
    login_page = anonymous.get("/login").text
    assert '<html lang="en">' in login_page and "Log in" in login_page and "登录" not in login_page

    tech, _ = login(console, "tech")
    tech.get("/lang", params={"to": "en", "next": "/alerts"})
    for path in ("/", "/alerts", "/followups", "/stations/zibo/st-0001", "/enrolment"):
        page = tech.get(path, headers={"Accept-Language": "zh-CN"}).text  # the cookie wins
        assert '<html lang="en">' in page and "Log out" in page and "退出" not in page, path
    tech.get("/lang", params={"to": "zh", "next": "/"})
    assert "退出" in tech.get("/alerts").text
    # only paths of this console are followed back
    assert tech.get("/lang?to=en&next=//evil.example/").headers["location"] == "/"


def test_commands_states_and_results_in_words_not_codes_or_dicts(console: Console) -> None:
    tech, _ = login(console, "tech")
    zh = tech.get("/stations/zibo/st-0001").text
    assert 'id="cmd-rebirth"' in zh and ">重新上报</button>" in zh and ">收集日志</button>" in zh
    assert ">rebirth</button>" not in zh and ">collect_logs</button>" not in zh
    assert "{'" not in zh and "&#39;birth&#39;" not in zh  # no Python dict anywhere
    assert '<dl class="result">' in zh
    assert re.search(r'<dt data-field="birth">上线信息</dt>\s*<dd>已发出</dd>', zh)
    assert re.search(r'<dt data-field="reason">原因</dt>\s*<dd>未打印</dd>', zh)
    assert re.search(r'<dt data-field="printer">打印机</dt>\s*<dd>A4 打印机</dd>', zh)
    assert "成功" in zh and "失败" in zh  # the commands' states
    # the log as text: real line breaks, escaped, never a repr with a literal \n
    log = re.search(r'<pre class="log">(.*?)</pre>', zh, re.S)
    assert log is not None
    assert log.group(1) == (
        "2026-12-05 03:00:01 kiosk started\n2026-12-05 03:00:02 &lt;printer&gt; ready"
    )
    assert "\\n" not in zh
    en = tech.get("/stations/zibo/st-0001", headers={"Accept-Language": "en"}).text
    assert ">Re-send birth</button>" in en and ">Collect logs</button>" in en
    assert re.search(r'<dt data-field="reason">Reason</dt>\s*<dd>not printed</dd>', en)
    assert re.search(r'<dt data-field="files">Log files</dt>\s*<dd>kiosk.log</dd>', en)
    assert "重新上报" not in en and "Offline" in en


def test_a_terminals_failure_codes_are_all_worded() -> None:
    # the console may not import the agent: words.py keeps its own list of the agent's reasons
    assert set(words.CATALOG_ERRORS) == {r.value for r in Reason}


@pytest.mark.parametrize(
    ("reason", "zh", "en"),
    [
        (
            "failure rate 40% > 20% after 10 results in wave canary",
            "“试点”批失败率 40%，超过上限 20%（已有 10 台出结果），已自动中止",
            "failure rate 40% > 20% after 10 results in wave canary",
        ),
        (
            "wave 10% ended at success rate 60% < 90%",
            "“10%”批结束时成功率 60%，未达到 90%，已自动中止",
            "wave 10% ended at success rate 60% < 90%",
        ),
        ("aborted by hand (by oper)", "人工中止（操作人：oper）", "aborted by hand (by oper)"),
        ("版本有误 (by oper)", "版本有误（操作人：oper）", "版本有误 (by oper)"),
        ("a reason of its own", "a reason of its own", "a reason of its own"),
    ],
)
def test_why_a_rollout_was_aborted_in_the_readers_language(reason: str, zh: str, en: str) -> None:
    i18n.use("zh")
    assert reason_words(reason) == zh
    i18n.use("en")
    assert reason_words(reason) == en
    i18n.use("zh")


def test_a_refused_start_says_why_in_english_for_the_cli_and_in_the_readers_language() -> None:
    fields = {"target": "catalog.toml", "version": "x", "length": 1, "sha256": "a" * 64}
    with pytest.raises(RequestError) as refused:
        desired_from(fields)
    assert str(refused.value) == "version must be a number"  # the CLI's, the audit's
    assert refused.value.words("zh") == "“版本”必须填数字"  # named as the form names it
    assert refused.value.words("en") == "version must be a number"
    assert str(RequestError("--repo needs --base-url")) == "--repo needs --base-url"  # as is
