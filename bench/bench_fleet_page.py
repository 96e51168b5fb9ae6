"""The console's fleet page at 10,000 stations (issue 18), against the same page at 100.

Each size runs a private mosquitto, ``fleet console`` in its own process (SQLite, as
``tests/fleet/console/test_fleet_overview.py`` starts it) and the simulated terminals
(:class:`fleet.simulate.process.SimulatorProcess`, every 100th with its A4 printer jammed), and
waits until the console has stored every station's health. A technician's logged-in HTTP client
then fetches the fleet page (``/``) seven times; the figure is the median, from sending the
request to the last byte of the body (what the test reads from the browser's navigation timing:
``responseEnd - requestStart``).

``console.fleet_page_10000_ms``: that time at 10,000 stations. Goal < 1000 (the suite holds the
same property at 1,000 stations).
``console.fleet_page_10000_to_100``: the same over the time at 100 stations, same run: how the
page grows with the fleet (it shows counts and one page of stations, so ideally little).
``console.fleet_page_10000_kib``: the page's body at 10,000 stations, KiB. Goal < 98 (100,000 B).
"""

from __future__ import annotations

import http.cookiejar
import re
import secrets
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from fleet.simulate import SimConfig, raise_nofile
from fleet.simulate.process import SimulatorProcess
from sandbox.console import console_process, stations_reporting
from sandbox.mosquitto import MosquittoBroker

REPO = Path(__file__).resolve().parents[1]
EVERY = 100  # every 100th terminal reports its A4 printer jammed
FETCHES = 7
PASSWORD = secrets.token_urlsafe(16)  # the technician's, for this run only


def log_in(url: str) -> urllib.request.OpenerDirector:
    # the console's cookies are Secure; the browser sends them to loopback over HTTP, and so
    # does this client (the console runs with plain HTTP on loopback here, as in the tests)
    policy = http.cookiejar.DefaultCookiePolicy(secure_protocols=("https", "wss", "http"))
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar(policy))
    )
    form = opener.open(url + "/login", timeout=30).read().decode()
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', form
    )
    if found is None:
        raise RuntimeError("no CSRF token on the login page")
    body = urllib.parse.urlencode({"name": "tech", "password": PASSWORD, "csrf_token": found[1]})
    page = opener.open(url + "/login", data=body.encode(), timeout=30).read().decode()
    if 'id="who"' not in page:
        raise RuntimeError("the technician could not log in")
    return opener


def fleet_page(n: int, every: int = EVERY, health_s: float = 20.0) -> tuple[float, int]:
    """Median time (ms) and size (bytes) of the fleet page with ``n`` stations reporting, every
    ``every``-th of them with a fault, each reporting its health every ``health_s``."""
    with tempfile.TemporaryDirectory(prefix="bench-fleet-page-") as name:
        tmp = Path(name)
        broker = MosquittoBroker(tmp / "broker")
        broker.start()
        db = tmp / "console.sqlite3"
        sim = SimulatorProcess(
            SimConfig(
                broker.host,
                broker.port,
                kiosks=n,
                sites=10,
                health_interval_s=health_s,  # 10,000 in 20 s: the console is not flooded
                event_interval_s=0.0,
                fault_every=every,
            )
        )
        users = {"tech": "technician"}
        try:
            with console_process(tmp, broker, f"sqlite:///{db}", users, password=PASSWORD) as url:
                try:
                    sim.start()
                    return measure(url, db, sim, n, every)
                finally:
                    sim.stop()
        finally:
            broker.stop()


def measure(url: str, db: Path, sim: SimulatorProcess, n: int, every: int) -> tuple[float, int]:
    """The page's median time and size once the ``n`` simulated stations have all reported."""
    if not sim.wait_connected(max(60.0, n / 50)):
        raise RuntimeError(f"{sim.stats()[0]['connected']} of {n} terminals connected")
    deadline = time.monotonic() + 120
    while stations_reporting(db) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{stations_reporting(db)} of {n} stations reported")
        time.sleep(0.5)
    opener = log_in(url)
    times, size = [], 0
    for _ in range(FETCHES):
        t0 = time.perf_counter()
        with opener.open(url + "/", timeout=30) as response:
            body = response.read()
        times.append((time.perf_counter() - t0) * 1000)
        size = len(body)
    if f"需要处理：{len(range(0, n, every))}" not in body.decode():
        raise RuntimeError("the fleet page does not count the stations that need attention")
    print(f"{n} stations: fleet page {statistics.median(times):.1f} ms, {size} B")
    return statistics.median(times), size


def run(
    n: int = 10_000, baseline: int = 100, every: int = EVERY, health_s: float = 20.0
) -> dict[str, float]:
    raise_nofile(2 * n + 4096)  # before the broker starts: it inherits the limit
    base_ms, _ = fleet_page(baseline, every, health_s)
    big_ms, big_size = fleet_page(n, every, health_s)
    return {
        "console.fleet_page_10000_ms": round(big_ms, 1),
        "console.fleet_page_10000_to_100": round(big_ms / base_ms, 2),
        "console.fleet_page_10000_kib": round(big_size / 1024, 1),
    }
