"""The HTTP document provider: a government platform's records API, with deadlines and retries.

``POST {base_url}/records`` with ``{"service": ..., "id_number": ...}`` and the configured
authorisation header answers the record as JSON (the shape of
:func:`drivers.providers.demo.record_from_json`). 404 means no record; 502/503/504 and network
errors are retried with backoff while the deadline allows, then reported as unavailable (a
platform in maintenance at 2 a.m.); 401/403 is a configuration problem for technicians. The wire
log has methods, paths, status codes and timings, never the ID number or the record.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

from drivers.providers.demo import record_from_json
from flows.errors import ConfigError, ProviderError, ProviderUnavailable, RecordNotFound
from flows.models import DeviceHealth, DeviceState, Identity, Record

wire = logging.getLogger("kiosk.wire.provider")

RETRYABLE = {502, 503, 504}


class HttpProvider:
    """Implements :class:`flows.ports.DocumentProvider` against an HTTP platform."""

    def __init__(
        self,
        base_url: str,
        *,
        auth_header: str = "",
        name: str = "provider.http",
        attempt_timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"provider URL {base_url!r}: expected http:// or https://")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.auth_header = auth_header
        self.attempt_timeout_s = attempt_timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._last = DeviceHealth(name, "provider", DeviceState.UNKNOWN, ("not_checked",))

    def fetch(self, service: str, identity: Identity, *, deadline_s: float) -> Record:
        body = json.dumps({"service": service, "id_number": identity.id_number}).encode()
        deadline = time.monotonic() + deadline_s
        last_error = "no attempt"
        for attempt in range(self.retries + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                status, data = self._request("/records", body, min(self.attempt_timeout_s, left))
            except (urllib.error.URLError, TimeoutError, OSError) as err:
                last_error = type(err).__name__
                wire.info("POST /records failed: %s (attempt %d)", last_error, attempt + 1)
            else:
                wire.info("POST /records -> %d (attempt %d)", status, attempt + 1)
                if status == 200:
                    self._last = DeviceHealth(self.name, "provider", DeviceState.OK)
                    return self._parse(service, data, identity)
                if status == 404:
                    raise RecordNotFound(f"the platform has no {service} record")
                if status in (401, 403):
                    raise ProviderError(
                        f"the platform refused our credentials ({status})",
                        translation_key="error.provider.failed",
                    )
                if status not in RETRYABLE:
                    raise ProviderError(f"the platform answered {status}")
                last_error = f"HTTP {status}"
            time.sleep(min(self.backoff_s * 2**attempt, max(0.0, deadline - time.monotonic())))
        self._last = DeviceHealth(self.name, "provider", DeviceState.OFFLINE, ("unavailable",))
        raise ProviderUnavailable(f"the platform is unavailable ({last_error})")

    def health(self) -> DeviceHealth:
        try:
            request = urllib.request.Request(f"{self.base_url}/health", method="GET")  # noqa: S310
            with urllib.request.urlopen(request, timeout=2.0) as response:  # noqa: S310
                ok = response.status == 200
        except (urllib.error.URLError, TimeoutError, OSError):
            ok = False
        self._last = DeviceHealth(
            self.name,
            "provider",
            DeviceState.OK if ok else DeviceState.OFFLINE,
            () if ok else ("unavailable",),
        )
        return self._last

    def _request(self, path: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.auth_header:
            key, _, value = self.auth_header.partition(":")
            headers[key.strip()] = value.strip()
        request = urllib.request.Request(  # noqa: S310  (scheme checked in __init__)
            f"{self.base_url}{path}", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return int(response.status), response.read()
        except urllib.error.HTTPError as err:
            return int(err.code), err.read()

    def _parse(self, service: str, data: bytes, identity: Identity) -> Record:
        try:
            body: Any = json.loads(data)
            return record_from_json(service, body, identity)
        except (ValueError, KeyError, TypeError, IndexError) as err:
            raise ProviderError("the platform's answer is not a record") from err
