"""Document providers: the synthetic SQLite dataset, and an HTTP platform on a local server."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from drivers.providers.demo import DemoProvider, build_records, generate_dataset
from drivers.providers.http import HttpProvider
from flows.catalog import load_catalog
from flows.errors import ConfigError, ProviderError, ProviderUnavailable, RecordNotFound
from flows.models import CardType, DeviceState, Identity
from flows.synthetic import DEMO_RESIDENT, SYNTHETIC_RESIDENTS

ROOT = Path(__file__).resolve().parents[3]
CATALOG = load_catalog(ROOT / "assets" / "catalog" / "demo.toml")
STRANGER = Identity(CardType.RESIDENT, name="王小明", id_number="11010519491231002X")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoProvider:
    path = generate_dataset(
        tmp_path_factory.mktemp("demo") / "records.sqlite3", today=dt.date(2026, 11, 23)
    )
    return DemoProvider(path)


def test_every_provider_service_of_the_catalog_has_demo_records(demo: DemoProvider) -> None:
    services = [s.code for s in CATALOG.services if s.provider == "demo"]
    assert len(services) >= 7
    for code in services:
        record = demo.fetch(code, DEMO_RESIDENT, deadline_s=2)
        assert record.title_zh and record.title_en
        assert ("姓名 Name", DEMO_RESIDENT.name) in record.fields
        assert DEMO_RESIDENT.name not in repr(record)  # personal data stays out of repr
    assert demo.health().state is DeviceState.OK


def test_records_are_deterministic_and_synthetic() -> None:
    day = dt.date(2026, 11, 23)
    assert build_records(DEMO_RESIDENT, day) == build_records(DEMO_RESIDENT, day)
    neighbour = SYNTHETIC_RESIDENTS[1]
    assert "business_licence_print" not in build_records(neighbour, day)


def test_records_agree_with_the_residents_age_and_name_their_issuer(demo: DemoProvider) -> None:
    """A 70-year-old draws a pension and pays in nothing; a 36-year-old contributes and draws
    none; every record names the agency that issues it, not the station that prints it."""
    elder = DEMO_RESIDENT  # born 1956, a woman
    young = next(p for p in SYNTHETIC_RESIDENTS if p.birth_date and p.birth_date.year == 1990)
    old = demo.fetch("social_insurance_certificate", elder, deadline_s=2)
    fields = dict(old.fields)
    assert (
        fields["参保状态 Status"].startswith("待遇领取") and "缴费单位 Paid through" not in fields
    )
    assert old.table is not None and "养老金发放" in old.table.title
    assert dict(demo.fetch("retirement_status", elder, deadline_s=2).fields)[
        "领取状态 Status"
    ].startswith("正常领取")
    now = demo.fetch("social_insurance_certificate", young, deadline_s=2)
    assert dict(now.fields)["参保状态 Status"].startswith("正常参保")
    assert now.table is not None and "缴费明细" in now.table.title
    assert dict(demo.fetch("retirement_status", young, deadline_s=2).fields)[
        "领取状态 Status"
    ].startswith("未领取")
    for code in (s.code for s in CATALOG.services if s.provider == "demo"):
        record = demo.fetch(code, elder, deadline_s=2)
        assert record.issuer_zh and record.issuer_en, code
    assert old.issuer_zh == "淄博市社会保险事业中心"


def test_unknown_resident_and_missing_record(demo: DemoProvider) -> None:
    with pytest.raises(RecordNotFound):
        demo.fetch("social_insurance_certificate", STRANGER, deadline_s=2)
    with pytest.raises(RecordNotFound):
        demo.fetch("business_licence_print", SYNTHETIC_RESIDENTS[1], deadline_s=2)


def test_missing_dataset_is_unavailable(tmp_path: Path) -> None:
    provider = DemoProvider(tmp_path / "nope.sqlite3")
    assert provider.health().state is DeviceState.OFFLINE
    with pytest.raises(ProviderUnavailable):
        provider.fetch("social_insurance_certificate", DEMO_RESIDENT, deadline_s=1)


# --- HTTP ---------------------------------------------------------------------------------------


class Platform:
    """A local test server that plays a government platform."""

    def __init__(self) -> None:
        self.script: list[int] = []  # status codes to answer, in order; then 200
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                return

            def do_GET(self) -> None:
                self.send_response(200 if self.path == "/health" else 404)
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                platform.requests.append((self.path, dict(self.headers), body))
                status = platform.script.pop(0) if platform.script else 200
                if status == -1:
                    time.sleep(3)  # hangs past the attempt timeout
                    status = 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                if status == 200:
                    records = build_records(DEMO_RESIDENT, dt.date(2026, 11, 23))
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.wfile.write(json.dumps(records[body["service"]]).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def platform() -> Iterator[Platform]:
    p = Platform()
    yield p
    p.close()


def provider(platform: Platform, **kw: float) -> HttpProvider:
    return HttpProvider(
        platform.url,
        auth_header="Authorization: Bearer t0ken",
        attempt_timeout_s=kw.get("attempt", 1.0),
        backoff_s=0.05,
    )


def test_http_record_with_auth_header(platform: Platform, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kiosk")
    record = provider(platform).fetch("personal_tax_record", DEMO_RESIDENT, deadline_s=5)
    assert record.title_zh == "个人所得税纳税记录" and record.table is not None
    path, headers, body = platform.requests[0]
    assert path == "/records" and headers["Authorization"] == "Bearer t0ken"
    assert body == {"service": "personal_tax_record", "id_number": DEMO_RESIDENT.id_number}
    text = caplog.text
    assert "POST /records -> 200" in text and DEMO_RESIDENT.id_number not in text


def test_http_retries_through_maintenance_blips(platform: Platform) -> None:
    platform.script = [503, 502]
    record = provider(platform).fetch("retirement_status", DEMO_RESIDENT, deadline_s=5)
    assert record.service == "retirement_status" and len(platform.requests) == 3


def test_http_maintenance_is_unavailable_within_the_deadline(platform: Platform) -> None:
    platform.script = [503] * 50
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        provider(platform).fetch("retirement_status", DEMO_RESIDENT, deadline_s=1.0)
    assert time.monotonic() - started < 2.5


def test_http_hanging_platform_times_out(platform: Platform) -> None:
    platform.script = [-1, -1, -1, -1]
    with pytest.raises(ProviderUnavailable):
        provider(platform, attempt=0.3).fetch("retirement_status", DEMO_RESIDENT, deadline_s=1.0)


@pytest.mark.parametrize(
    ("status", "error"), [(404, RecordNotFound), (401, ProviderError), (400, ProviderError)]
)
def test_http_statuses_map_to_typed_errors(
    platform: Platform, status: int, error: type[Exception]
) -> None:
    platform.script = [status]
    with pytest.raises(error):
        provider(platform).fetch("retirement_status", DEMO_RESIDENT, deadline_s=3)


def test_http_unreachable_and_health() -> None:
    dead = HttpProvider("http://127.0.0.1:9", attempt_timeout_s=0.3, backoff_s=0.01)
    assert dead.health().state is DeviceState.OFFLINE
    with pytest.raises(ProviderUnavailable):
        dead.fetch("retirement_status", DEMO_RESIDENT, deadline_s=0.8)
    with pytest.raises(ConfigError):
        HttpProvider("file:///etc/passwd")


def test_the_dataset_file_holds_no_names_or_id_numbers(demo: DemoProvider) -> None:
    data = demo.dataset.read_bytes()
    for person in SYNTHETIC_RESIDENTS:
        for secret in (person.name, person.id_number, person.address):
            for encoding in ("utf-8", "utf-16-le"):
                assert secret.encode(encoding) not in data
    record = demo.fetch("residence_certificate", DEMO_RESIDENT, deadline_s=2)
    assert ("住址 Address", DEMO_RESIDENT.address) in record.fields  # filled in from the card
