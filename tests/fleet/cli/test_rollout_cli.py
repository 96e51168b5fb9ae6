"""``fleet rollout`` and ``fleet keys`` against real processes.

The consoles are ``fleet console`` child processes (one or two on one database, SQLite or a
private PostgreSQL), the terminals simulated ones with real MQTT connections in their own
process, the broker a private mosquitto; every ``fleet`` command runs as a child process. The
tests read the console's database only to check what the commands did.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy import select as sql_select

from fleet.console import Console, Settings
from fleet.console.auth import create_user
from fleet.console.rollout_lease import current_holder
from fleet.console.store import AuditEntry, RolloutRequest, Station, Store
from flows.tokens import key_id, public_pem
from sandbox.mosquitto import MosquittoBroker
from sandbox.process import free_port
from tests.fleet.console.test_console import PASSWORD, login, until
from tests.fleet.console.test_console_rollouts import CATALOG, simulated_fleet
from tests.fleet.console.test_console_rollouts import QUICK as QUICK_POLICY

ROOT = Path(__file__).resolve().parents[3]
CATALOG_ARGS = [
    "--target",
    CATALOG["target"],
    "--version",
    str(CATALOG["version"]),
    "--sha256",
    CATALOG["sha256"],
    "--length",
    str(CATALOG["length"]),
    "--metadata-url",
    CATALOG["metadata_url"],
]
QUICK = [
    *("--canary", "2", "--percent", "50", "--advance-at", "100"),
    *("--wave-timeout", "120", "--soak", "0"),
]


def fleet(*args: str, timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``fleet ARGS`` as a child process (the ``fleet`` entry point's module)."""
    return subprocess.run(
        [sys.executable, "-m", "fleet.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def fleet_json(*args: str, expect: int = 0) -> Any:
    done = fleet(*args, "--json")
    assert done.returncode == expect, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


class ConsoleProcess:
    """``fleet console`` in a child process, its log in a file."""

    def __init__(self, broker: MosquittoBroker, db_url: str, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        secret = folder / "console.secret"
        secret.write_text(broker.console_password)
        self.port = free_port()
        self.log_path = folder / "console.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fleet.cli",
                "console",
                "--broker",
                broker.address,
                "--password-file",
                str(secret),
                "--db",
                db_url,
                "--http",
                f"127.0.0.1:{self.port}",
                "--insecure-cookies",
            ],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_serving(self, timeout: float = 60) -> None:
        def answers() -> bool:
            assert self.proc.poll() is None, f"the console exited:\n{self.log()[-3000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/login", timeout=2):
                    return True
            except OSError:
                return False

        until(answers, timeout, "the console's web server")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def prepared_db(db_url: str) -> Store:
    """The console's schema and its three users, made before any console starts."""
    store = Store(db_url)
    store.migrate()
    with store.session() as db:
        for name, role in (("tech", "technician"), ("oper", "operator"), ("boss", "admin")):
            create_user(db, name, PASSWORD, role)
    return store


def holder_pid(store: Store) -> int | None:
    with store.session() as db:
        held = current_holder(db)
    return None if held is None else int(held[0].split(":")[1])


def known_stations(store: Store) -> int:
    with store.session() as db:
        return len(db.scalars(sql_select(Station.id)).all())


def cli_audit(store: Store) -> list[tuple[str, str, bool, str]]:
    with store.session() as db:
        rows = db.scalars(sql_select(AuditEntry).order_by(AuditEntry.id))
        return [(a.actor, a.action, a.ok, str(a.detail.get("via", ""))) for a in rows]


def status(db_url: str, rollout_id: str) -> dict[str, Any]:
    view: dict[str, Any] = fleet_json("rollout", "status", rollout_id, "--db", db_url)
    return view


def read_pty(master: int) -> bytes:
    chunks = []
    while select.select([master], [], [], 0.5)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


# --- a rollout from the command line ------------------------------------------------------------


def test_a_rollout_started_from_the_cli_completes_in_the_running_console(
    broker: MosquittoBroker, db_url: str, tmp_path: Path
) -> None:
    db = db_url
    store = prepared_db(db)
    sim = simulated_fleet(broker)
    console = ConsoleProcess(broker, db, tmp_path / "console")
    try:
        console.wait_serving()
        until(lambda: known_stations(store) == 20, 30, "20 stations in the console")
        until(lambda: holder_pid(store) == console.pid, 30, "the console drives rollouts")
        common = ["--db", db, "--all", *CATALOG_ARGS, *QUICK]

        # a technician may not; nothing reaches the console, the refusal is audited
        denied = fleet("rollout", "start", "--as", "tech", *common)
        assert denied.returncode == 1 and "technician" in denied.stderr
        both = fleet("rollout", "start", "--as", "oper", *common, "--stations", "s/x")
        assert both.returncode == 2 and "not allowed with" in both.stderr  # argparse's usage
        unknown = fleet(
            "rollout",
            "start",
            "--as",
            "oper",
            "--db",
            db,
            "--stations",
            "sim-site-00/nowhere",
            *CATALOG_ARGS,
        )
        assert unknown.returncode == 1 and "unknown stations" in unknown.stderr
        bad = fleet("rollout", "start", "--as", "oper", *common[: -len(QUICK)], "--percent", "0")
        assert bad.returncode == 1 and "percent" in bad.stderr
        with store.session() as session:
            assert session.scalars(sql_select(RolloutRequest)).all() == []
        assert ("tech", "rollout", False, "cli") in cli_audit(store)
        assert ("oper", "rollout", False, "cli") in cli_audit(store)
        assert sim.stats()[0]["desired"] == 0

        started = fleet_json("rollout", "start", "--as", "oper", *common)
        rollout_id = started["id"]
        # the answer comes once the console has taken the request: by then the two canary
        # stations may have applied already (the wave order is checked on the final status)
        assert started["state"] in ("running", "completed")
        assert started["stage"] in ("canary", "50%", "all")
        assert started["stations"] == 20 and started["started_by"] == "oper"
        assert started["driver"].split(":")[1] == str(console.pid)
        assert started["catalog"] == {
            k: CATALOG[k] for k in ("target", "version", "sha256", "length")
        }

        done = fleet("rollout", "status", rollout_id, "--db", db, "--wait", "--wait-timeout", "90")
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()  # plain lines, no TTY: one each time something changed
        assert lines[0].startswith(("running wave ", "completed wave all"))
        assert "completed wave all: applied 20/20 (100%), failed 0, pending 0" in lines
        assert f"rollout {rollout_id}: completed, wave all" in lines
        assert "\r" not in done.stdout

        final = status(db, rollout_id)
        assert final["state"] == "completed" and final["percent"] == 100
        assert (final["applied"], final["failed"], final["pending"]) == (20, 0, 0)
        waves = [(w["name"], w["size"], w["applied"]) for w in final["waves"]]
        assert waves == [("canary", 2, 2), ("50%", 8, 8), ("all", 10, 10)]
        counters, _ = sim.stats()
        assert counters["desired"] == 20 and counters["applied"] == 20  # each station once
        listed = fleet_json("rollout", "list", "--db", db)
        assert [(r["id"], r["state"]) for r in listed] == [(rollout_id, "completed")]
        assert ("oper", "rollout", True, "cli") in cli_audit(store)  # audited by the console

        # on a terminal, --wait draws a bar redrawn in place
        master, slave = pty.openpty()
        try:
            shown = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "fleet.cli",
                    "rollout",
                    "status",
                    rollout_id,
                    "--db",
                    db,
                    "--wait",
                ],
                cwd=ROOT,
                stdout=slave,
                stderr=subprocess.PIPE,
                timeout=60,
                check=False,
            )
            output = read_pty(master).decode()
        finally:
            os.close(master)
            os.close(slave)
        assert shown.returncode == 0
        assert f"\rcompleted all     [{'#' * 30}] 100% applied 20/20 failed 0" in output
        assert "\x1b[K" in output
    finally:
        console.stop()
        sim.stop()
        store.close()


def test_pause_resume_and_abort_from_the_cli_take_effect_in_the_running_console(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'console.sqlite3'}"
    store = prepared_db(db_url)
    sim = simulated_fleet(broker, apply_s=(4.0, 4.5))
    console = ConsoleProcess(broker, db_url, tmp_path / "console")
    # each wave soaks 15 s after it applied: the pause lands before the next wave can start
    # however slowly this machine starts the CLI (without a soak the canary's last report
    # started the next wave at once, and a pause a moment late found it targeted), and the abort
    # lands before the last wave
    soaking = [*QUICK[:-1], "15"]
    try:
        console.wait_serving()
        until(lambda: known_stations(store) == 20, 30, "20 stations in the console")
        until(lambda: holder_pid(store) == console.pid, 30, "the console drives rollouts")
        started = fleet_json(
            "rollout",
            "start",
            "--as",
            "oper",
            "--db",
            db_url,
            "--site",
            "sim-site-01",
            *CATALOG_ARGS,
            *soaking,
        )
        rollout_id = started["id"]
        assert [w["size"] for w in started["waves"]] == [2, 3, 5]
        assert started["policy"]["soak_s"] == 15.0 and started["policy"]["advance_at"] == 1.0

        steer = ["--db", db_url, rollout_id]
        refused = fleet("rollout", "pause", "--as", "tech", *steer)
        assert refused.returncode == 1 and "technician" in refused.stderr
        paused = fleet_json("rollout", "pause", "--as", "oper", *steer)
        assert paused["state"] == "paused"
        # results still count while paused, but no new wave starts
        until(lambda: status(db_url, rollout_id)["waves"][0]["applied"] == 2, 30, "canary applied")
        time.sleep(1.5)
        view = status(db_url, rollout_id)
        assert view["state"] == "paused" and [w["targeted"] for w in view["waves"]] == [2, 0, 0]
        assert sim.stats()[0]["desired"] == 2
        soak_until = view["waves"][0]["soak_until"]
        assert soak_until is not None and soak_until > time.time()
        text = fleet("rollout", "status", rollout_id, "--db", db_url).stdout
        assert "soaking until" in text

        resumed = fleet_json("rollout", "resume", "--as", "oper", *steer)
        # still soaking, or (on a slow machine) the soak ran out while paused: the wave at once
        assert resumed["state"] == "running" and resumed["stage"] in ("canary", "50%")
        until(lambda: sim.stats()[0]["desired"] == 5, 40, "the 50% wave sent")
        started_at = status(db_url, rollout_id)["waves"][1]["started_at"]
        assert started_at >= soak_until  # not before the soak ran out
        aborted = fleet_json("rollout", "abort", "--as", "boss", *steer, "--reason", "wrong one")
        assert aborted["state"] == "aborted" and aborted["reason"] == "wrong one (by boss)"
        time.sleep(2.0)
        assert sim.stats()[0]["desired"] == 5  # the last wave never got the desired
        again = fleet("rollout", "abort", "--as", "oper", *steer)
        assert again.returncode == 1 and "aborted" in again.stderr
        waited = fleet("rollout", "status", rollout_id, "--db", db_url, "--wait", "--json")
        assert waited.returncode == 1 and json.loads(waited.stdout)["state"] == "aborted"
        text = fleet("rollout", "status", rollout_id, "--db", db_url)
        assert "reason: wrong one (by boss)" in text.stdout

        actions = cli_audit(store)
        assert ("tech", "pause", False, "cli") in actions
        for actor, action in (("oper", "pause"), ("oper", "resume"), ("boss", "abort")):
            assert (actor, action, True, "cli") in actions
        assert ("oper", "abort", False, "cli") in actions
    finally:
        console.stop()
        sim.stop()
        store.close()


def test_without_a_console_a_start_is_withdrawn_after_the_timeout(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'console.sqlite3'}"
    store = prepared_db(db_url)
    with store.session() as session:
        session.add(Station(site="s1", station="st1"))
    try:
        start = fleet(
            "rollout",
            "start",
            "--as",
            "oper",
            "--db",
            db_url,
            "--all",
            *CATALOG_ARGS,
            "--timeout",
            "1.5",
            "--json",
        )
        assert start.returncode == 3, start.stderr
        assert "no console drives rollouts now" in start.stderr and "withdrawn" in start.stderr
        with store.session() as session:
            request = session.scalars(sql_select(RolloutRequest)).one()
            assert request.ok is False and request.error.startswith("withdrawn")
            rollout_id = request.rollout_id
        view = status(db_url, rollout_id)
        assert view["state"] == "refused" and view["reason"].startswith("withdrawn")
        assert view["driver"] is None
        missing = fleet("rollout", "pause", "--as", "oper", "--db", db_url, "nope")
        assert missing.returncode == 1 and "no rollout nope" in missing.stderr
    finally:
        store.close()


# --- two console processes: one drives, the other takes over -----------------------------------


def test_two_consoles_one_drives_and_the_other_takes_over_when_it_is_killed(
    broker: MosquittoBroker, db_url: str, tmp_path: Path
) -> None:
    db = db_url
    store = prepared_db(db)
    sim = simulated_fleet(broker, apply_s=(1.0, 1.5))
    first = ConsoleProcess(broker, db, tmp_path / "first")
    second: ConsoleProcess | None = None
    try:
        first.wait_serving()
        until(lambda: holder_pid(store) == first.pid, 30, "the first console drives rollouts")
        second = ConsoleProcess(broker, db, tmp_path / "second")
        second.wait_serving()
        until(lambda: known_stations(store) == 20, 30, "20 stations in the console")
        time.sleep(3.0)  # the second has tried for the lease (every 2 s) and not got it
        assert holder_pid(store) == first.pid
        assert "this console drives rollouts" in first.log()
        assert "this console drives rollouts" not in second.log()

        started = fleet_json(
            "rollout", "start", "--as", "oper", "--db", db, "--all", *CATALOG_ARGS, *QUICK
        )
        rollout_id, rev = started["id"], started["rev"]
        # the answer comes once the console has taken the request: by then the two canary
        # stations may have applied already (the wave order is checked on the final status)
        assert started["state"] in ("running", "completed")
        assert started["stage"] in ("canary", "50%", "all")
        until(lambda: sim.stats()[0]["desired"] == 2, 10, "the canaries sent the desired")
        first.kill()  # kill -9 while the canaries apply: no clean hand-over of the lease

        until(lambda: holder_pid(store) == second.pid, 30, "the second console took over")
        done = fleet_json(
            "rollout", "status", rollout_id, "--db", db, "--wait", "--wait-timeout", "90"
        )
        assert done["state"] == "completed" and done["applied"] == 20
        assert done["driver"].split(":")[1] == str(second.pid)
        assert "this console drives rollouts" in second.log()
        # one driver at a time: every station got the desired exactly once
        counters, _ = sim.stats()
        assert counters["desired"] == 20 and counters["applied"] == 20

        # the survivor also applies the next command written from the command line
        again = fleet_json(
            "rollout",
            "start",
            "--as",
            "oper",
            "--db",
            db,
            "--site",
            "sim-site-00",
            *CATALOG_ARGS[:3],
            "8",
            *CATALOG_ARGS[4:],
            *QUICK,
        )
        assert again["state"] == "running" and again["rev"] > rev
    finally:
        first.stop()
        if second is not None:
            second.stop()
        sim.stop()
        store.close()


def test_a_console_that_does_not_drive_hands_web_requests_to_the_one_that_does(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """The page and API of a console without the lease work too: the driving console applies
    what they ask; when the driver stops cleanly, the other takes over at once."""
    db_url = f"sqlite:///{tmp_path / 'console.sqlite3'}"
    store = prepared_db(db_url)
    sim = simulated_fleet(broker, apply_s=(2.0, 2.5))
    driver = ConsoleProcess(broker, db_url, tmp_path / "driver")
    other: Console | None = None
    try:
        driver.wait_serving()
        until(lambda: holder_pid(store) == driver.pid, 30, "the console process drives rollouts")
        other = Console(
            broker.host,
            broker.port,
            password=broker.console_password,
            db_url=db_url,
            settings=Settings(sweep_s=0.2),
        )
        other.start()
        until(lambda: known_stations(store) == 20, 30, "20 stations in the consoles")
        time.sleep(2.5)
        assert not other.rollouts.ready.is_set() and other.rollouts.available()
        oper, csrf = login(other, "oper")
        assert 'id="not-ready"' not in oper.get("/rollouts").text  # someone drives

        body = CATALOG | {"scope": "all", "policy": QUICK_POLICY}
        started = oper.post("/api/rollouts", headers={"X-CSRF-Token": csrf}, json=body)
        assert started.status_code == 201, started.text
        rollout_id = started.json()["id"]
        assert started.json()["state"] == "running" and started.json()["wave"] == "canary"
        until(lambda: sim.stats()[0]["desired"] == 2, 10, "the canaries sent the desired")
        paused = oper.post(f"/api/rollouts/{rollout_id}/pause", headers={"X-CSRF-Token": csrf})
        assert paused.status_code == 200 and paused.json()["state"] == "paused"
        busy = oper.post("/api/rollouts", headers={"X-CSRF-Token": csrf}, json=body)
        assert busy.status_code == 409 and "running rollout" in busy.json()["error"]
        view = status(db_url, rollout_id)
        assert view["state"] == "paused" and view["started_by"] == "oper"
        assert view["driver"].split(":")[1] == str(driver.pid)
        with store.session() as session:
            vias = session.scalars(sql_select(RolloutRequest.via).order_by(RolloutRequest.id)).all()
        assert vias == ["web", "web", "web"]  # start, pause and the refused start
        assert ("oper", "rollout", True, "web") in cli_audit(store)
        assert ("oper", "rollout", False, "web") in cli_audit(store)

        driver.stop()  # a clean stop gives the lease up: no need to wait for it to expire
        assert other.rollouts.ready.wait(15), other.rollouts.error
        resumed = oper.post(f"/api/rollouts/{rollout_id}/resume", headers={"X-CSRF-Token": csrf})
        assert resumed.status_code == 200 and resumed.json()["state"] == "running"
        done = fleet_json("rollout", "status", rollout_id, "--db", db_url, "--wait")
        assert done["state"] == "completed" and done["applied"] == 20
        assert sim.stats()[0]["desired"] == 20
    finally:
        driver.stop()
        if other is not None:
            other.stop()
        sim.stop()
        store.close()


# --- keys ----------------------------------------------------------------------------------------


def test_keys_list_shows_the_repository_roles_station_certificates_and_token_keys(
    tmp_path: Path,
) -> None:
    repo, offline = tmp_path / "repo", tmp_path / "root-keys"
    made = fleet("catalog", "init", "--repo", str(repo), "--root-keys", str(offline))
    assert made.returncode == 0, made.stderr
    db_url = f"sqlite:///{tmp_path / 'console.sqlite3'}"
    store = prepared_db(db_url)
    now = dt.datetime.now(dt.UTC)
    with store.session() as session:
        for station, days in (("st-soon", 10), ("st-later", 200), ("st-gone", -1)):
            expiry = (now + dt.timedelta(days=days)).isoformat()
            session.add(Station(site="s1", station=station, birth={"cert_expiry": expiry}))
        session.add(Station(site="s1", station="st-plain", birth={}))
    store.close()
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = Ed25519PrivateKey.generate().public_key()
    (tokens / "st-soon.pub").write_bytes(public_pem(public))

    report = fleet_json(
        "keys", "list", "--repo", str(repo), "--db", db_url, "--token-keys", str(tokens)
    )
    roles = {r["role"]: r for r in report["tuf"]["roles"]}
    assert list(roles) == ["root", "targets", "snapshot", "timestamp"]
    assert roles["root"]["threshold"] == 2 and len(roles["root"]["keyids"]) == 3
    assert not any(k["online"] for k in roles["root"]["keys"])  # root keys stay offline
    for role in ("targets", "snapshot", "timestamp"):
        assert roles[role]["threshold"] == 1 and [k["online"] for k in roles[role]["keys"]] == [
            True
        ]
    assert 364 < roles["root"]["days_left"] <= 365 and not roles["root"]["expiring"]
    assert not roles["timestamp"]["expiring"]  # a day is its usual life, not a warning
    stations = {s["station"]: s for s in report["stations"]}
    assert stations["st-soon"]["expiring"] and not stations["st-soon"]["expired"]
    assert not stations["st-later"]["expiring"] and not stations["st-later"]["expired"]
    assert stations["st-gone"]["expired"]
    assert stations["st-plain"]["cert_expiry"] is None
    assert report["token_keys"] == [{"file": "st-soon.pub", "keyid": key_id(public)}]

    # a rotated online key shows up under a new root version
    old = roles["targets"]["keyids"]
    rotated = fleet(
        "catalog", "rotate-key", "--repo", str(repo), "--root-keys", str(offline), "targets"
    )
    assert rotated.returncode == 0, rotated.stderr
    after = fleet_json("keys", "list", "--repo", str(repo))
    assert "stations" not in after  # with --repo alone, no database is read
    roles = {r["role"]: r for r in after["tuf"]["roles"]}
    assert roles["root"]["version"] == 2 and roles["targets"]["keyids"] != old
    text = fleet("keys", "list", "--db", db_url)
    assert text.returncode == 0
    assert "s1/st-soon" in text.stdout and "EXPIRING" in text.stdout and "EXPIRED" in text.stdout
