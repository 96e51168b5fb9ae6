"""Login throttling (fleet.console.throttle) through the real login page, on SQLite and PostgreSQL.

Browsers are TestClients with their own client addresses; the throttle's clock is a fake one the
tests move, so no test waits for a delay to pass.
"""

from __future__ import annotations

import base64
import re
import time
from typing import TYPE_CHECKING

from sqlalchemy import select
from starlette.testclient import TestClient

from fleet.console import Console, Settings, WebSettings
from fleet.console.store import AuditEntry, LoginThrottle
from fleet.console.throttle import CLIENT, DEVICE_COOKIE, DEVICE_TTL_S, FORGET_S, NAME
from tests.fleet.console.test_console import PASSWORD, client, make_console

if TYPE_CHECKING:
    from httpx2 import Response  # what Starlette's TestClient answers with

ATTACKER = "203.0.113.66"
ELSEWHERE = "198.51.100.20"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def throttled_console(db_url: str, clock: Clock) -> Console:
    console = make_console(None, db_url)
    console.add_user("admin", PASSWORD, "admin")
    console.web.throttle.clock = clock
    return console


def try_login(http: TestClient, name: str, password: str) -> Response:
    form = http.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    return http.post("/login", data={"name": name, "password": password, "csrf_token": csrf[1]})


def refused_wait(response: Response) -> int:
    """The wait a 429 asks for, as the header and the page (Chinese, the first language) say it."""
    assert response.status_code == 429, response.text
    seconds = int(response.headers["retry-after"])
    assert seconds > 0
    unit = f"请等 {seconds} 秒" if seconds < 120 else f"请等 {-(-seconds // 60)} 分钟"
    assert "尝试过多" in response.text and unit in response.text
    return seconds


def with_device(console: Console, address: str, cookie: str) -> TestClient:
    """A browser at ``address`` holding the device cookie value ``cookie``."""
    http = client(console, address)
    http.cookies.set(DEVICE_COOKIE, cookie, domain="testserver.local", path="/login")
    return http


def device_cookie_of(http: TestClient) -> str:
    value = http.cookies.get(DEVICE_COOKIE, path="/login")
    assert value
    return value


def throttled_audits(console: Console) -> list[dict[str, object]]:
    with console.store.session() as db:
        rows = db.scalars(select(AuditEntry).where(AuditEntry.action == "login"))
        return [dict(a.detail) for a in rows if a.detail.get("reason") == "throttled"]


def test_guessing_admin_slows_the_guesser_never_the_admin(db_url: str) -> None:
    clock = Clock()
    console = throttled_console(db_url, clock)
    try:
        # the admin logged in before, on a browser behind the address the attack will come from
        trusted = client(console, ATTACKER)
        first = try_login(trusted, "admin", PASSWORD)
        assert first.status_code == 303
        header = next(
            c for c in first.headers.get_list("set-cookie") if c.startswith(DEVICE_COOKIE)
        )
        for attribute in ("httponly", "secure", "samesite=strict", "path=/login"):
            assert attribute in header.lower()
        assert f"max-age={int(DEVICE_TTL_S)}" in header.lower()

        attacker = client(console, ATTACKER)
        started = clock.now
        statuses, waits = [], []
        checked = False
        for guess in range(50):
            response = try_login(attacker, "admin", f"guess number {guess}")
            statuses.append(response.status_code)
            if response.status_code == 429:
                waits.append(refused_wait(response))
                clock.advance(waits[-1])  # the guesser waits exactly as long as told
                continue
            assert response.status_code == 401
            if not checked and guess >= 20:  # admin is being guessed at right now
                checked = True
                stranger = try_login(client(console, ELSEWHERE), "admin", PASSWORD)
                assert 0 < refused_wait(stranger) <= NAME.cap_s  # the name waits a little
                assert try_login(trusted, "admin", PASSWORD).status_code == 303  # the admin not
                blocked = try_login(attacker, "admin", PASSWORD)  # the right password, too late
                assert refused_wait(blocked) > NAME.cap_s
                clock.advance(int(blocked.headers["retry-after"]))
        assert checked
        assert statuses[:5] == [401] * 5
        assert statuses[5] == 429
        assert waits[:5] == [1, 2, 4, 8, 16]  # doubling
        assert waits == sorted(waits) and max(waits) == CLIENT.cap_s
        assert clock.now - started > 3 * 3600  # fifty tries took the guesser hours

        # admin elsewhere, no cookie: in once the name's small delay has passed
        stranger = client(console, ELSEWHERE)
        try_login(attacker, "admin", "one more guess")
        wait = refused_wait(try_login(stranger, "admin", PASSWORD))
        assert wait <= NAME.cap_s
        clock.advance(wait)
        assert try_login(stranger, "admin", PASSWORD).status_code == 303
        refusals = throttled_audits(console)
        assert len(refusals) >= 20 and {r["client"] for r in refusals} == {ATTACKER, ELSEWHERE}
    finally:
        console.stop()


def test_one_client_is_slowed_down_across_names(db_url: str) -> None:
    clock = Clock()
    console = throttled_console(db_url, clock)
    try:
        guesser = client(console, ATTACKER)
        names = [f"user{n}" for n in range(12)]
        for name in names[:5]:
            assert try_login(guesser, name, "wrong password").status_code == 401
        first = refused_wait(try_login(guesser, names[5], "wrong password"))
        assert refused_wait(try_login(guesser, "tech", PASSWORD)) == first  # not even a real one
        waits = [first]
        for name in names[5:]:
            clock.advance(waits[-1])
            assert try_login(guesser, name, "wrong password").status_code == 401
            waits.append(refused_wait(try_login(guesser, name, "wrong password")))
        assert waits == [2**n for n in range(len(waits))]  # doubling, one name after another
        assert try_login(client(console, ELSEWHERE), "tech", PASSWORD).status_code == 303
    finally:
        console.stop()


def test_throttling_survives_a_restart_and_trusted_devices_too(db_url: str) -> None:
    clock = Clock()
    console = throttled_console(db_url, clock)
    trusted = client(console, ELSEWHERE)
    assert try_login(trusted, "admin", PASSWORD).status_code == 303
    cookie = device_cookie_of(trusted)
    guesser = client(console, ATTACKER)
    for guess in range(8):
        assert try_login(guesser, "tech", f"guess {guess}").status_code == 401
        clock.advance(40)  # longer than each delay so far: every guess is tried
    assert try_login(guesser, "tech", "guess 9").status_code == 401
    before = refused_wait(try_login(guesser, "oper", "guess 10"))
    console.stop()

    restarted = Console("127.0.0.1", 1, db_url=db_url, settings=Settings(), web=WebSettings())
    try:
        restarted.web.throttle.clock = clock
        after = refused_wait(try_login(client(restarted, ATTACKER), "oper", PASSWORD))
        assert after == before >= 16
        again = try_login(with_device(restarted, ATTACKER, cookie), "admin", PASSWORD)
        assert again.status_code == 303  # the device cookie needs no secret of the process
    finally:
        restarted.stop()


def test_forged_expired_or_another_users_device_cookie_gives_no_bypass(db_url: str) -> None:
    clock = Clock()
    console = throttled_console(db_url, clock)
    try:
        tech = client(console, ELSEWHERE)
        assert try_login(tech, "tech", PASSWORD).status_code == 303
        admin = client(console, ELSEWHERE)
        assert try_login(admin, "admin", PASSWORD).status_code == 303
        tech_cookie, admin_cookie = device_cookie_of(tech), device_cookie_of(admin)

        def block_admin() -> None:
            guesser = client(console, ATTACKER)
            for guess in range(5):
                assert try_login(guesser, "admin", f"guess {guess}").status_code == 401
            assert refused_wait(try_login(guesser, "admin", PASSWORD)) == 1

        block_admin()
        body, mac = tech_cookie.split(".")
        tech_payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        renamed = base64.urlsafe_b64encode(tech_payload.replace(b"tech|", b"admin|", 1))
        # flip a character inside the MAC: the last one of base64 may carry only padding bits
        body_a, mac_a = admin_cookie.split(".")
        flipped = f"{body_a}.{('B' if mac_a[0] != 'B' else 'C')}{mac_a[1:]}"
        forged = [tech_cookie, f"{renamed.rstrip(b'=').decode()}.{mac}", flipped, "x.y", "junk"]
        for cookie in forged:
            refused_wait(try_login(with_device(console, ATTACKER, cookie), "admin", PASSWORD))
        # the genuine one gets in: the refusals above came from the cookies, not the test
        assert try_login(
            with_device(console, ATTACKER, admin_cookie), "admin", PASSWORD
        ).is_redirect

        clock.advance(DEVICE_TTL_S + 1)
        block_admin()
        expired = with_device(console, ATTACKER, admin_cookie)
        refused_wait(try_login(expired, "admin", PASSWORD))
    finally:
        console.stop()


def test_five_wrong_passwords_from_one_client_no_longer_lock_the_name(db_url: str) -> None:
    clock = Clock()
    console = throttled_console(db_url, clock)
    try:
        a, b = client(console, ATTACKER), client(console, ELSEWHERE)
        for guess in range(5):
            assert try_login(a, "admin", f"guess {guess}").status_code == 401
        response = try_login(b, "admin", PASSWORD)
        if response.status_code == 429:
            wait = refused_wait(response)
            assert wait <= NAME.cap_s
            clock.advance(wait)
            response = try_login(b, "admin", PASSWORD)
        assert response.status_code == 303
    finally:
        console.stop()


def test_old_failures_are_forgotten_and_pruned(db_url: str) -> None:
    clock = Clock()
    console = throttled_console(db_url, clock)
    try:
        guesser = client(console, ATTACKER)
        for guess in range(5):
            assert try_login(guesser, f"user{guess}", "wrong password").status_code == 401
        refused_wait(try_login(guesser, "tech", PASSWORD))
        clock.advance(FORGET_S + 1)
        for guess in range(4):
            assert try_login(guesser, f"later{guess}", "wrong password").status_code == 401
        with console.store.session() as db:
            rows = {r.key: r.failures for r in db.scalars(select(LoginThrottle))}
        assert rows[f"client:{ATTACKER}"] == 4  # counted from zero, not from five
        assert not any(key.startswith("name:user") for key in rows)  # a day old: deleted
        assert try_login(guesser, "tech", PASSWORD).status_code == 303
    finally:
        console.stop()
