"""The fleet console (``fleet console``): technicians watch and fix terminals, operators decide
what stations offer, an admin manages users; every action goes to the audit log.

The parts:

- :mod:`fleet.console.store`: the database (SQLAlchemy, Alembic migrations; SQLite or PostgreSQL),
  the only state a console process has, so several processes can run side by side;
- :mod:`fleet.console.ingest`: MQTT in (shared subscriptions), the console's own timers (stale after
  three missed heartbeats, offline on Will or timer), alerts and the webhook, commands, answers
  to certificate signing requests;
- :mod:`fleet.console.rollout_pages`: catalog rollouts (the console's one rollout driver, its store
  in
  the database, the pages and API that start and steer them);
- :mod:`fleet.console.app` and :mod:`fleet.console.admin`: the pages, the API, live updates,
  ``/metrics``;
  :mod:`fleet.console.auth`: passwords, sessions, roles, CSRF, security headers.
  :mod:`fleet.console.throttle`: growing delays after failed logins, trusted devices.
- :mod:`fleet.console.followups`: bad reviews (one or two stars) followed up to resolved, audited;
  its page and API in :mod:`fleet.console.followup_pages`.
- :mod:`fleet.console.verify_pages`: the public page a certificate's QR code opens (``/v/<token>``,
  no login, rate-limited) and withdrawing documents; what it says is
  :mod:`fleet.console.documents`.

:class:`Console` puts them together; tests and ``kiosk/tools/devstation.py`` use it.
"""

from __future__ import annotations

import logging
import secrets
import signal
import time
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from fleet.console import auth as auth
from fleet.console.app import WebApp, WebSettings
from fleet.console.ingest import Ingest, Settings, tune_gc
from fleet.console.rollout_pages import RolloutService
from fleet.console.store import Store, User, audit
from fleet.console.views import FleetCollector, stations
from fleet.mqtt.client import BrokerAccess, TlsFiles
from fleet.trust.pki import CertificateAuthority

log = logging.getLogger("fleet.console")

__all__ = ["Console", "Settings", "WebSettings"]


class Console:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        password: str = "",
        db_url: str = "sqlite://",
        tls: TlsFiles | None = None,
        ca: CertificateAuthority | None = None,
        settings: Settings | None = None,
        web: WebSettings | None = None,
    ) -> None:
        self.store = Store(db_url)
        self.store.migrate()
        self.registry = CollectorRegistry()
        broker = BrokerAccess(host, port, password, tls)
        self.ingest = Ingest(
            self.store,
            broker,
            ca=ca,
            settings=settings,
            registry=self.registry,
        )
        self.registry.register(FleetCollector(self.store, self.ingest.settings.timers))
        self.rollouts = RolloutService(self.store, broker)
        self.web = WebApp(
            self.store, self.ingest, web or WebSettings(), self.registry, self.rollouts
        )
        self.app = auth.SecurityHeaders(self.web.app, hsts=self.web.settings.secure_cookies)

    def start(self) -> None:
        self.ingest.start()
        self.rollouts.start()  # connects in the background; rollouts answer 503 until then

    def stop(self) -> None:
        self.rollouts.stop()
        self.ingest.stop()
        self.store.close()

    def snapshot(self) -> list[dict[str, Any]]:
        """Every station as the fleet page shows it (site, station, status, health, ...)."""
        with self.store.session() as db:
            return stations(db, self.ingest.settings.timers)

    def add_user(self, name: str, password: str, role: str) -> None:
        with self.store.session() as db:
            auth.create_user(db, name, password, role)
            audit(db, "cli", "create_user", f"user/{name}", role=role)

    def ensure_admin(self, password_file: Path) -> bool:
        """With no user yet: make ``admin`` with the password in ``password_file`` (written,
        mode 0600, with a random password if missing). True if the user was made."""
        with self.store.session() as db:
            if db.scalar(select(func.count(User.id))):
                return False
        if not password_file.exists():
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(secrets.token_urlsafe(15) + "\n")
            password_file.chmod(0o600)
        self.add_user("admin", password_file.read_text().strip(), "admin")
        log.info("made user admin; the password is in %s", password_file)
        return True

    def serve(self, http_host: str, http_port: int) -> int:
        tune_gc()
        self.start()
        config = uvicorn.Config(
            self.app,
            host=http_host,
            port=http_port,
            log_level="warning",
            timeout_graceful_shutdown=2,
            proxy_headers=False,
        )
        server = uvicorn.Server(config)

        def shutdown(*_args: object) -> None:
            server.should_exit = True

        signal.signal(signal.SIGTERM, shutdown)
        signal.signal(signal.SIGINT, shutdown)
        started = time.monotonic()
        server.run()
        log.info("console served for %.0f s", time.monotonic() - started)
        self.stop()
        return 0
