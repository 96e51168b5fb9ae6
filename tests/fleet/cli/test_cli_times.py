"""The fleet commands print times in the stations' zone ($FLEET_TIMEZONE, default Asia/Shanghai)
with its offset, whatever the host's zone."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.cli import main
from fleet.console.store import Alert, Station, Store


@pytest.fixture
def utc_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.delenv("FLEET_TIMEZONE", raising=False)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_alerts_are_printed_in_the_stations_zone(
    tmp_path: Path,
    utc_host: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite:///{tmp_path / 'console.sqlite3'}"
    store = Store(url)
    store.migrate()
    raised = dt.datetime(2026, 12, 5, 13, 3, tzinfo=dt.UTC).timestamp()
    with store.session() as db:
        row = Station(site="zibo-gx", station="st-1")
        db.add(row)
        db.flush()
        db.add(Alert(station_id=row.id, kind="offline", raised_at=raised, last_at=raised))
    store.close()
    assert main(["alerts", "list", "--db", url]) == 0
    assert "2026-12-05 21:03 +08:00" in capsys.readouterr().out
    monkeypatch.setenv("FLEET_TIMEZONE", "UTC")
    assert main(["alerts", "list", "--db", url]) == 0
    assert "2026-12-05 13:03 +00:00" in capsys.readouterr().out
    monkeypatch.setenv("FLEET_TIMEZONE", "Mars/Olympus")
    with pytest.raises(SystemExit) as exit_:
        main(["alerts", "list", "--db", url])
    assert exit_.value.code == 2 and "unknown time zone" in capsys.readouterr().err


def test_the_console_refuses_an_unknown_zone(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["console", "--broker", "127.0.0.1:1", "--timezone", "Mars/Olympus"])
    err = capsys.readouterr().err
    assert code == 2 and "--timezone must be an IANA time zone name" in err
    assert "got `Mars/Olympus`" in err
    # the old name still works for the same setting
    code = main(["console", "--broker", "127.0.0.1:1", "--duty-timezone", "Mars/Olympus"])
    assert code == 2 and "--timezone must be an IANA time zone name" in capsys.readouterr().err
