"""The fleet console against real peers: mosquitto, fleet agents, SQLite and PostgreSQL.

Every test here runs twice, on SQLite and on a private PostgreSQL cluster (``db_url``).
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from paho.mqtt.enums import CallbackAPIVersion
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from fleet.agent import Agent, AgentConfig
from fleet.console import Console, Settings, WebSettings
from fleet.console.store import AuditEntry, Base, User
from fleet.console.zone import LocalTime
from fleet.trust.pki import CertificateAuthority, build_csr, common_name, csr_pem, generate_key
from flows.tokens import Signer, TokenClaims, public_pem
from sandbox.mosquitto import MosquittoBroker
from statedir.journal import Journal
from tests.fleet import messages

SITE = "zibo-gx"
PASSWORD = "correct horse battery"


def until(cond: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def make_console(broker: MosquittoBroker | None, db_url: str, **settings: Any) -> Console:
    web = settings.pop("web", WebSettings())
    ca = settings.pop("ca", None)
    console = Console(
        broker.host if broker else "127.0.0.1",
        broker.port if broker else 1,
        password=broker.console_password if broker else "",
        db_url=db_url,
        ca=ca,
        settings=Settings(**{"sweep_s": 0.2, **settings}),
        web=web,
    )
    for name, role in (("tech", "technician"), ("oper", "operator"), ("boss", "admin")):
        console.add_user(name, PASSWORD, role)
    return console


def client(console: Console, address: str = "testclient") -> TestClient:
    """A browser at ``address`` (what the console sees as the client's host)."""
    return TestClient(
        console.app,
        base_url="https://testserver",
        follow_redirects=False,
        client=(address, 50000),
    )


def login(console: Console, name: str) -> tuple[TestClient, str]:
    """A logged-in client and its session's CSRF token (read from a page, as a browser does)."""
    http = client(console)
    form = http.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    done = http.post(
        "/login", data={"name": name, "password": PASSWORD, "csrf_token": csrf.group(1)}
    )
    assert done.status_code == 303, done.text
    page = http.get("/verify")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return http, token.group(1)


def station_config(tmp_path: Path, broker: MosquittoBroker, station: str) -> AgentConfig:
    return AgentConfig(
        site=SITE,
        station=station,
        host=broker.host,
        port=broker.port,
        state_dir=tmp_path / station,
        journal_path=tmp_path / station / "journal.sqlite3",
        health_interval_s=0.3,
        will_delay_s=1,
    )


def audit_actions(console: Console) -> list[tuple[str, str, bool]]:
    with console.store.session() as db:
        return [(a.actor, a.action, a.ok) for a in db.query(AuditEntry).order_by(AuditEntry.id)]


# --- storage --------------------------------------------------------------------------------------


def test_migrations_make_exactly_the_models_schema(db_url: str) -> None:
    console = make_console(None, db_url)
    try:
        with console.store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        console.store.migrate()  # a second run is a no-op
        with console.store.session() as db:
            hashes = [u.password_hash for u in db.query(User)]
        assert len(hashes) == 3
        assert all(h.startswith("$argon2id$") for h in hashes)
        assert not any(PASSWORD in h for h in hashes)
    finally:
        console.stop()


# --- who may do what ------------------------------------------------------------------------------


PUBLIC = (
    "/login",
    "/lang",  # the language toggle is on the login page too
    "/v/{token}",  # a printed paper's verification, for whoever holds it (issue 24)
)
"""The only routes that answer without a login."""


def test_no_page_or_api_answers_without_login(db_url: str) -> None:
    console = make_console(None, db_url)
    http = client(console)
    try:
        checked = 0
        for route in console.web.app.routes:
            if isinstance(route, Mount) or not isinstance(route, Route):
                continue
            if route.path in PUBLIC:
                continue
            path = re.sub(r"\{[^}]+\}", "1", route.path)
            for method in sorted(route.methods or {"GET"}):
                if method == "HEAD":
                    continue
                response = http.request(method, path)
                checked += 1
                if path.startswith("/api/") or path in ("/events", "/metrics"):
                    assert response.status_code == 401, (method, path)
                    assert response.json() == {"error": "login"}
                else:
                    assert response.status_code == 303, (method, path, response.status_code)
                    assert response.headers["location"].startswith("/login?next=")
        assert checked >= 20
        assert http.get("/static/console.css").status_code == 200  # the login page's own style
        page = http.get("/v/KD1.not-a-token")  # public, and says so without leaking a thing
        assert page.status_code == 200 and "/login" not in page.headers.get("location", "")
    finally:
        console.stop()


def test_csrf_tokens_are_enforced(db_url: str) -> None:
    console = make_console(None, db_url)
    try:
        # the login form itself: no double-submit cookie, no login
        bare = client(console)
        refused = bare.post("/login", data={"name": "tech", "password": PASSWORD})
        assert refused.status_code == 403
        assert "console_session" not in refused.headers.get("set-cookie", "")
        http, csrf = login(console, "tech")
        assert http.post("/api/alerts/1/ack").status_code == 403
        wrong = http.post("/api/alerts/1/ack", headers={"X-CSRF-Token": "x" * 43})
        assert wrong.status_code == 403 and wrong.json()["error"].startswith("missing or wrong")
        assert http.post("/alerts/1/ack", data={"back": "/"}).status_code == 403
        cross = http.post(
            "/api/alerts/1/ack",
            headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        ok = http.post("/api/alerts/1/ack", headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 404  # past CSRF and role checks: there is no alert 1
        assert http.post("/logout").status_code == 403  # without the token: refused
        assert http.get("/api/stations").status_code == 200  # so the session is still there
        out = http.post("/logout", data={"csrf_token": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert http.get("/api/stations").status_code == 401
    finally:
        console.stop()


def test_roles_technicians_cannot_push_catalogs(db_url: str) -> None:
    console = make_console(None, db_url)
    try:
        tech, tech_csrf = login(console, "tech")
        oper, oper_csrf = login(console, "oper")
        boss, boss_csrf = login(console, "boss")
        denied = tech.post("/api/rollouts", headers={"X-CSRF-Token": tech_csrf}, json={})
        assert denied.status_code == 403
        assert "技术员" in denied.json()["error"]  # the first language: no Accept-Language
        english = tech.post(
            "/api/rollouts",
            headers={"X-CSRF-Token": tech_csrf, "Accept-Language": "en-GB,en;q=0.9"},
            json={},
        )
        assert "your role (technician) may not" in english.json()["error"]
        for http, csrf in ((oper, oper_csrf), (boss, boss_csrf)):
            empty = http.post("/api/rollouts", headers={"X-CSRF-Token": csrf}, json={})
            assert empty.status_code == 400  # allowed, but there is nothing to roll out
            assert empty.json()["error"].startswith("目标文件名")  # Chinese, as above
        # operators do not command terminals or acknowledge alerts; technicians do not manage users
        command = oper.post(
            f"/api/stations/{SITE}/st-1/commands",
            headers={"X-CSRF-Token": oper_csrf},
            json={"name": "rebirth"},
        )
        assert command.status_code == 403
        assert (
            oper.post("/api/alerts/1/ack", headers={"X-CSRF-Token": oper_csrf}).status_code == 403
        )
        assert tech.get("/admin/users").status_code == 403
        assert tech.get("/admin/audit").status_code == 403
        made = boss.post(
            "/admin/users",
            data={
                "name": "tech2",
                "role": "technician",
                "password": PASSWORD,
                "csrf_token": boss_csrf,
            },
        )
        assert made.status_code == 303
        login(console, "tech2")
        actions = audit_actions(console)
        assert ("tech", "denied", False) in actions
        assert ("oper", "rollout", False) in actions  # asked with nothing to roll out
        assert ("boss", "create_user", True) in actions
        assert ("tech2", "login", True) in actions
    finally:
        console.stop()


def test_passwords_sessions_cookies_and_headers(db_url: str) -> None:
    console = make_console(None, db_url)
    try:
        http = client(console)
        page = http.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        headers = page.headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["strict-transport-security"].startswith("max-age=")
        form_token = csrf[1]
        for _ in range(5):
            bad = http.post(
                "/login",
                data={"name": "tech", "password": "wrong password", "csrf_token": form_token},
            )
            assert bad.status_code == 401
            again = re.search(r'name="csrf_token" value="([^"]+)"', bad.text)
            assert again is not None and again[1] != form_token  # each form is a fresh one
            form_token = again[1]
        locked = http.post(
            "/login", data={"name": "tech", "password": PASSWORD, "csrf_token": form_token}
        )
        assert locked.status_code == 429  # five failures: this client and the name wait a while
        good = client(console, "192.0.2.7")  # another user elsewhere is not held up
        form = good.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        done = good.post(
            "/login", data={"name": "oper", "password": PASSWORD, "csrf_token": token[1]}
        )
        cookie = done.headers["set-cookie"].lower()
        assert "console_session=" in cookie
        assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
        assert good.get("/").status_code == 200
        assert audit_actions(console).count(("tech", "login", False)) == 6
    finally:
        console.stop()


# --- live fleet, alerts, commands -----------------------------------------------------------------


class WebhookSink:
    """A real HTTP server on loopback that keeps every alert the console POSTs."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_agents_health_alerts_webhook_and_commands(
    tmp_path: Path, broker: MosquittoBroker, db_url: str
) -> None:
    sink = WebhookSink()
    console = make_console(broker, db_url, webhook_url=sink.url)
    console.start()
    cfg = station_config(tmp_path, broker, "st-0001")
    cfg.state_dir.mkdir(parents=True)
    journal = Journal(cfg.journal_path)
    journal.put_health(
        [
            {"device": "thermal_printer", "state": "degraded", "reasons": ["paper_low"]},
            {"device": "id_reader", "state": "ok", "reasons": []},
        ]
    )
    journal.touch_ui_heartbeat()
    agent = Agent(cfg)
    agent.start()
    try:
        tech, csrf = login(console, "tech")
        until(lambda: [s["status"] for s in tech.get("/api/stations").json()] == ["online"])
        alerts = until(lambda: tech.get("/api/alerts").json(), what="paper alert")
        assert [(a["kind"], a["station"]) for a in alerts] == [("paper_low", "st-0001")]
        journal.help_request(screen="choose")
        journal.help_request(screen="preview")  # a second request joins the open alert
        until(
            lambda: any(
                a["kind"] == "help_request" and a["count"] == 2
                for a in tech.get("/api/alerts").json()
            ),
            what="help request",
        )
        until(lambda: {m["kind"] for m in sink.received} == {"paper_low", "help_request"})
        assert all(m["station"] == "st-0001" and m["site"] == SITE for m in sink.received)
        # the station's device is fixed: the health-made alert resolves itself
        journal.put_health(
            [{"device": "thermal_printer", "state": "ok", "reasons": []}],
        )
        until(
            lambda: [a["kind"] for a in tech.get("/api/alerts").json()] == ["help_request"],
            what="paper alert resolved",
        )
        [help_alert] = tech.get("/api/alerts").json()
        ack = tech.post(f"/api/alerts/{help_alert['id']}/ack", headers={"X-CSRF-Token": csrf})
        assert ack.json() == {"acknowledged": True}
        assert tech.get("/api/alerts").json() == []
        everything = tech.get("/api/alerts?all=1").json()
        assert {a["kind"]: a["acknowledged_by"] for a in everything}["help_request"] == "tech"
        assert len(sink.received) == 2  # de-duplicated: one message per alert
        # a command and its result
        sent = tech.post(
            f"/api/stations/{SITE}/st-0001/commands",
            headers={"X-CSRF-Token": csrf},
            json={"name": "rebirth"},
        )
        assert sent.status_code == 202
        command_id = sent.json()["id"]
        done = until(
            lambda: (
                (c := tech.get(f"/api/commands/{command_id}").json())["status"] == "succeeded" and c
            ),
            what="command result",
        )
        assert done["actor"] == "tech" and done["name"] == "rebirth"
        unknown = tech.post(
            f"/api/stations/{SITE}/st-0001/commands",
            headers={"X-CSRF-Token": csrf},
            json={"name": "format_disk"},
        )
        assert unknown.status_code == 400
        page = tech.get(f"/stations/{SITE}/st-0001").text
        assert "rebirth" in page and "succeeded" in page and "help_request" in page
        actions = audit_actions(console)
        assert ("tech", "command", True) in actions
        assert ("tech", "acknowledge_alert", True) in actions
        metrics = tech.get("/metrics").text
        assert 'console_stations{status="online"} 1.0' in metrics
        assert 'console_alerts_raised_total{kind="help_request"} 1.0' in metrics
    finally:
        agent.stop()
        journal.close()
        console.stop()
        sink.close()


def test_a_card_left_on_a_reader_is_an_alert_until_it_is_taken(
    tmp_path: Path, broker: MosquittoBroker, db_url: str
) -> None:
    """The kiosk names a card left behind in its reader's health (kiosk.shell.leftcard); the
    agent sends it, the console raises ``card_left_behind`` and resolves it when it is gone."""
    console = make_console(broker, db_url)
    console.start()
    cfg = station_config(tmp_path, broker, "st-0002")
    cfg.state_dir.mkdir(parents=True)
    journal = Journal(cfg.journal_path)
    journal.put_health([{"device": "id_reader", "state": "ok", "reasons": []}])
    journal.touch_ui_heartbeat()
    agent = Agent(cfg)
    agent.start()
    try:
        tech, _csrf = login(console, "tech")
        until(lambda: [s["status"] for s in tech.get("/api/stations").json()] == ["online"])
        left = {"card_left_s": 120}
        journal.put_health(
            [
                {
                    "device": "id_reader",
                    "state": "ok",
                    "reasons": ["card_left_behind"],
                    "detail": left,
                }
            ]
        )
        [alert] = until(lambda: tech.get("/api/alerts").json(), what="card alert")
        assert (alert["kind"], alert["station"]) == ("card_left_behind", "st-0002")
        assert alert["detail"] == {"device": "id_reader"}  # the reader, never the card's holder
        assert "身份证遗留在读卡器上" in tech.get("/alerts").text
        journal.put_health([{"device": "id_reader", "state": "ok", "reasons": []}])
        until(lambda: tech.get("/api/alerts").json() == [], what="card alert resolved")
    finally:
        agent.stop()
        journal.close()
        console.stop()


def test_offline_alerts_only_inside_duty_hours(
    tmp_path: Path, broker: MosquittoBroker, db_url: str
) -> None:
    console = make_console(broker, db_url, offline_alert_after_s=0.5)
    console.start()
    agents = {name: Agent(station_config(tmp_path, broker, name)) for name in ("st-a", "st-b")}
    for agent in agents.values():
        agent.start()
    try:
        oper, oper_csrf = login(console, "oper")
        tech, _ = login(console, "tech")
        until(lambda: len(tech.get("/api/stations").json()) == 2)
        hour = LocalTime().at(time.time()).hour  # duty hours are in the stations' zone
        closed = f"{(hour + 2) % 24:02d}:00-{(hour + 3) % 24:02d}:00"  # not now
        saved = oper.post(
            f"/stations/{SITE}/st-b/duty-hours",
            data={"duty_hours": closed, "csrf_token": oper_csrf},
        )
        assert saved.status_code == 303
        for agent in agents.values():
            agent.stop()
        until(
            lambda: {s["status"] for s in tech.get("/api/stations").json()} == {"offline"},
            what="both offline",
        )

        def offline() -> list[str]:  # (these agents have no UI beside them: ui_frozen too)
            return [a["station"] for a in tech.get("/api/alerts").json() if a["kind"] == "offline"]

        until(offline, what="offline alert")
        time.sleep(1.0)  # st-b has been offline long enough too, but outside its duty hours
        assert offline() == ["st-a"]
        again = Agent(station_config(tmp_path, broker, "st-a"))
        again.start()
        try:
            until(lambda: offline() == [], what="back online resolves")
        finally:
            again.stop()
    finally:
        console.stop()


def test_csr_is_answered_for_the_station_of_the_topic(
    tmp_path: Path, broker: MosquittoBroker, db_url: str
) -> None:
    ca = CertificateAuthority.create("test fleet CA")
    console = make_console(broker, db_url, ca=ca)
    console.start()
    commands: list[tuple[str, dict[str, Any]]] = []
    station = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="st-7", protocol=mqtt.MQTTv5)
    subscribed = threading.Event()
    station.on_subscribe = lambda *_: subscribed.set()
    station.on_message = lambda _c, _u, m: commands.append((m.topic, json.loads(m.payload)))
    station.connect(broker.host, broker.port)
    station.loop_start()
    try:
        station.subscribe(f"kiosk/v1/{SITE}/st-7/cmd/+", qos=1)
        assert subscribed.wait(5)
        until(console.ingest.connected.is_set)
        key = generate_key()
        for event_id, cn in (("e-own", "st-7"), ("e-lie", "st-8")):
            csr = csr_pem(build_csr(key, cn)).decode()
            payload = messages.event("csr", "st-7", event_id, csr=csr)
            station.publish(f"kiosk/v1/{SITE}/st-7/evt/csr", payload, qos=1)
        until(lambda: commands, what="install_certificate")
        time.sleep(0.5)
        [(topic, command)] = commands  # the CSR for another station got no certificate
        assert topic.startswith(f"kiosk/v1/{SITE}/st-7/cmd/")
        assert command["name"] == "install_certificate" and command["timeout_s"] == 60.0
        from fleet.trust.pki import parse_cert

        cert = parse_cert(command["args"]["certificate"].encode())
        assert common_name(cert.subject) == "st-7"
        actions = audit_actions(console)
        assert ("system", "certificate_issued", True) in actions
        assert ("system", "certificate_request", False) in actions
    finally:
        station.disconnect()
        station.loop_stop()
        console.stop()


def test_two_consoles_share_the_ingest(
    tmp_path: Path, broker: MosquittoBroker, db_url: str
) -> None:
    first = make_console(broker, db_url)
    second = Console(
        broker.host,
        broker.port,
        password=broker.console_password,
        db_url=db_url,
        settings=Settings(sweep_s=0.2),
    )
    first.start()
    second.start()
    cfg = station_config(tmp_path, broker, "st-s")
    cfg.state_dir.mkdir(parents=True)
    journal = Journal(cfg.journal_path)
    until(lambda: first.ingest.connected.is_set() and second.ingest.connected.is_set())
    time.sleep(0.3)  # both subscriptions in place
    agent = Agent(cfg)
    agent.start()
    try:
        for _ in range(30):
            txn = journal.begin_transaction("queue_ticket", lang="zh", elder=False)
            journal.finish_transaction(txn, outcome="completed", outputs=["thermal"])
        http, _ = login(first, "tech")
        until(
            lambda: len(http.get(f"/api/stations/{SITE}/st-s").json().get("events", [])) == 30,
            what="30 events stored once",
        )
        assert first.ingest.ingested > 5 and second.ingest.ingested > 5  # both took a share
        assert [s["station"] for s in second.snapshot()] == ["st-s"]
    finally:
        agent.stop()
        journal.close()
        second.stop()
        first.stop()


def test_verify_page_and_metrics_token(tmp_path: Path, db_url: str) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    signer = Signer.load_or_create(tmp_path / "station.key")
    (keys / "st-1.pub").write_bytes(public_pem(signer.public))
    console = make_console(
        None, db_url, web=WebSettings(token_keys_dir=keys, metrics_token="scrape-secret")
    )
    try:
        http, csrf = login(console, "tech")
        token = signer.sign(
            TokenClaims("residence_certificate", "D-2026-0001", 1_790_000_000, "ab")
        )
        valid = http.post("/verify", data={"token": token, "csrf_token": csrf})
        assert "有效：residence_certificate D-2026-0001" in valid.text
        forged = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
        parts = token.split(".")
        altered = ".".join([parts[0], parts[1][:-2] + "xx", parts[2], parts[3]])
        assert "伪造" in http.post("/verify", data={"token": altered, "csrf_token": csrf}).text
        assert forged  # a changed key id is an unknown key:
        unknown = ".".join([*parts[:3], "0" * len(parts[3])])
        assert "未知密钥" in http.post("/verify", data={"token": unknown, "csrf_token": csrf}).text
        anonymous = client(console)
        assert anonymous.get("/metrics").status_code == 401
        wrong = anonymous.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        scraped = anonymous.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert scraped.status_code == 200 and "console_stations" in scraped.text
    finally:
        console.stop()


def test_the_cli_lists_stations_and_alerts_and_acknowledges_with_the_same_rules(
    tmp_path: Path, broker: MosquittoBroker, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from fleet.cli import main as fleet

    console = make_console(broker, db_url)
    console.start()
    cfg = station_config(tmp_path, broker, "st-0042")
    cfg.state_dir.mkdir(parents=True)
    journal = Journal(cfg.journal_path)
    journal.touch_ui_heartbeat()
    agent = Agent(cfg)
    agent.start()
    try:
        until(lambda: [s["station"] for s in console.snapshot()] == ["st-0042"])
        journal.help_request(screen="identify")
        until(
            lambda: (
                fleet(["alerts", "list", "--db", db_url, "--json"]) == 0
                and "help_request" in capsys.readouterr().out
            ),
            what="the help request in the CLI",
        )
        assert fleet(["stations", "--db", db_url, "--json"]) == 0
        [row] = json.loads(capsys.readouterr().out)
        assert (row["station"], row["status"]) == ("st-0042", "online")
        assert fleet(["stations", "--db", db_url]) == 0
        table = capsys.readouterr().out
        assert "st-0042" in table and "Online" in table  # in words
        assert fleet(["alerts", "list", "--db", db_url, "--json"]) == 0
        [alert] = [a for a in json.loads(capsys.readouterr().out) if a["kind"] == "help_request"]
        # an operator may not acknowledge (as on the web page); a technician may
        assert fleet(["alerts", "ack", str(alert["id"]), "--db", db_url, "--as", "oper"]) == 1
        assert fleet(["alerts", "ack", str(alert["id"]), "--db", db_url, "--as", "tech"]) == 0
        capsys.readouterr()
        # as on the web page, acknowledging a help request resolves it: it shows under --all
        assert fleet(["alerts", "list", "--db", db_url, "--json"]) == 0
        assert alert["id"] not in [a["id"] for a in json.loads(capsys.readouterr().out)]
        assert fleet(["alerts", "list", "--db", db_url, "--json", "--all"]) == 0
        acked = [a for a in json.loads(capsys.readouterr().out) if a["id"] == alert["id"]]
        assert acked[0]["acknowledged_by"] == "tech"
        with console.store.session() as db:
            trail = [
                (a.actor, a.ok)
                for a in db.query(AuditEntry).filter(AuditEntry.action == "acknowledge_alert")
            ]
        assert ("oper", False) in trail and ("tech", True) in trail
    finally:
        agent.stop()
        console.stop()


def test_statistics_show_volume_ratings_and_where_residents_give_up(
    tmp_path: Path, broker: MosquittoBroker, db_url: str
) -> None:
    console = make_console(broker, db_url)
    console.start()
    cfg = station_config(tmp_path, broker, "st-0077")
    cfg.state_dir.mkdir(parents=True)
    journal = Journal(cfg.journal_path)
    agent = Agent(cfg)
    agent.start()
    try:
        done = [journal.begin_transaction("queue_ticket", lang="zh", elder=False) for _ in range(2)]
        for txn in done:
            journal.finish_transaction(txn, outcome="completed", outputs=["thermal"])
        journal.rate(done[0], 5, ("slow",))
        journal.rate(done[1], 3)
        gave_up = journal.begin_transaction("", lang="zh", elder=True)
        journal.finish_transaction(
            gave_up, outcome="abandoned", abandoned_state="choose", reason="timeout"
        )
        broken = journal.begin_transaction("social_insurance_certificate", lang="en", elder=False)
        journal.finish_transaction(broken, outcome="failed", reason="error.print.paper_out")
        journal.help_request(screen="identify")
        oper, _ = login(console, "oper")
        stats = until(
            lambda: (
                (s := oper.get("/api/stats").json())["transactions"] == 4
                and s["help_requests"]
                and sum(s["ratings"].values()) == 2
                and s
            ),
            what="the events in the statistics",
        )
        assert stats["ratings"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}
        assert stats["rating_mean"] == 4.0 and stats["rating_tags"] == {"slow": 1}
        assert stats["abandoned"] == [
            {"screen": "choose", "reason": "timeout", "mode": "elder", "count": 1}
        ]
        assert stats["failures"] == {"error.print.paper_out": 1}
        assert stats["help_requests"] == {"identify": 1}
        page = oper.get("/stats")
        assert page.status_code == 200 and 'id="chart-funnel"' in page.text
        assert "选择事项" in page.text  # the screen in words
        sheet = oper.get("/stats.csv")
        assert sheet.headers["content-type"].startswith("text/csv")
        rows = sheet.text.strip().splitlines()
        assert rows[0] == "day,station,service,completed,failed,abandoned"
        assert any(r.endswith("zibo-gx/st-0077,queue_ticket,2,0,0") for r in rows[1:])
        assert client(console).get("/api/stats").status_code == 401  # no login, no numbers
    finally:
        agent.stop()
        console.stop()
