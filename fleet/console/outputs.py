"""What the console says outward about its stations, besides its pages: Prometheus counters
(``/metrics``) and the webhook that POSTs every new alert to the operator's own URL."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.request
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from fleet.console.store import Alert, Store

log = logging.getLogger("fleet.console.ingest")

__all__ = ["Metrics", "Webhook"]


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages = Counter(
            "console_messages", "MQTT messages ingested", ["kind"], registry=registry
        )
        self.duplicates = Counter(
            "console_duplicate_events", "events already stored (redelivered)", registry=registry
        )
        self.dead_letters = Counter(
            "console_dead_letters",
            "station messages set aside at the edge, by reason (fleet.console.edge.REASONS)",
            ["reason"],
            registry=registry,
        )
        self.alerts = Counter("console_alerts_raised", "new alerts", ["kind"], registry=registry)
        self.commands = Counter("console_commands_sent", "commands published", registry=registry)
        self.webhook_failures = Counter(
            "console_webhook_failures", "alerts the webhook did not take", registry=registry
        )


class Webhook:
    """POSTs new alerts as JSON to a URL, from a thread of its own, with a few retries."""

    def __init__(self, store: Store, url: str | None, metrics: Metrics) -> None:
        self.store = store
        self.url = url
        self.metrics = metrics
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="console-webhook", daemon=True)

    def start(self) -> None:
        if self.url:
            self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)

    def notify(self, message: dict[str, Any]) -> None:
        if self.url:
            self._queue.put(message)

    def _run(self) -> None:
        while (message := self._queue.get()) is not None:
            outcome = "failed"
            for attempt in range(3):
                if self._post(message):
                    outcome = "sent"
                    break
                time.sleep(0.5 * 2**attempt)
            if outcome == "failed":
                self.metrics.webhook_failures.inc()
            with self.store.session() as db:
                alert = db.get(Alert, message["id"])
                if alert is not None:
                    alert.notified = outcome

    def _post(self, message: dict[str, Any]) -> bool:
        assert self.url is not None
        request = urllib.request.Request(  # noqa: S310 (the URL is the operator's own setting)
            self.url,
            data=json.dumps(message, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return 200 <= int(response.status) < 300
        except OSError as err:
            log.warning("webhook: %s", err)
            return False
