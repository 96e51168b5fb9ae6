"""The disk guard on a real, small filesystem (a tmpfs) with the station's real journal on it."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.shell.diskguard import MIB, DiskGuard, DiskPolicy
from statedir.journal import Journal

SIZE_MIB = 16
POLICY = DiskPolicy(low_mib=8, critical_mib=4, resume_mib=11, chatty_loggers=("kiosk.wire",))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of our own (needs root, as the terminal's installer has)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE_MIB}m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_to(mount: Path, free_mib: float) -> None:
    """Grow (or shrink) the ballast file until about ``free_mib`` is left."""
    ballast = mount / "ballast"
    have = ballast.stat().st_size if ballast.exists() else 0
    want = have + shutil.disk_usage(mount).free - int(free_mib * MIB)
    ballast.unlink(missing_ok=True)
    if want > 0:
        with ballast.open("wb") as f:
            os.posix_fallocate(f.fileno(), 0, want)


def alerts(journal: Journal) -> list[tuple[str, str]]:
    return [
        (e.payload["kind"], e.payload["detail"]["level"])
        for e in journal.pending_events(1000)
        if e.type == "alert"
    ]


@pytest.fixture
def wire() -> Iterator[logging.Logger]:
    logger = logging.getLogger("kiosk.wire")
    saved = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield logger
    finally:
        logger.setLevel(saved)


def test_low_then_critical_then_back(small_disk: Path, wire: logging.Logger) -> None:
    journal = Journal(small_disk / "journal.sqlite3")
    guard = DiskGuard(small_disk, journal, POLICY)
    essential = logging.getLogger("kiosk.shell.runtime").getEffectiveLevel()
    try:
        status = guard.check()
        assert (status.level, status.changed) == ("ok", False)
        assert alerts(journal) == [] and wire.isEnabledFor(logging.DEBUG)

        fill_to(small_disk, 6)
        status = guard.check()
        assert (status.level, status.changed) == ("low", True)
        assert 4 <= status.free_mib < 8
        assert not wire.isEnabledFor(logging.INFO) and wire.isEnabledFor(logging.WARNING)
        assert logging.getLogger("kiosk.shell.runtime").getEffectiveLevel() == essential  # kept
        assert alerts(journal) == [("disk_low", "low")]
        guard.check()
        assert alerts(journal) == [("disk_low", "low")]  # once per change, not per check

        # the journal still takes transactions while logging is quiet
        journal.begin_transaction("demo", lang="zh", elder=False)

        fill_to(small_disk, 2)
        assert guard.check().level == "critical"
        assert not wire.isEnabledFor(logging.WARNING) and wire.isEnabledFor(logging.ERROR)
        assert alerts(journal) == [("disk_low", "low"), ("disk_low", "critical")]

        fill_to(small_disk, 9)  # above low, below resume: stays quiet (no flapping)
        assert guard.check().level == "low"
        assert not wire.isEnabledFor(logging.INFO)

        fill_to(small_disk, 13)
        status = guard.check()
        assert (status.level, status.changed) == ("ok", True)
        assert wire.level == logging.DEBUG  # restored to what it was
        assert alerts(journal)[-1] == ("disk_ok", "ok")
    finally:
        journal.close()


def test_an_alert_that_cannot_be_written_is_written_later(
    small_disk: Path, wire: logging.Logger
) -> None:
    journal = Journal(small_disk / "journal.sqlite3")
    guard = DiskGuard(small_disk, journal, POLICY)
    try:
        fill_to(small_disk, 0)
        for i in range(2000):  # take the last pages too, through the journal itself
            try:
                journal.queue_event("filler", {"n": i, "pad": "x" * 4000})
            except Exception:
                break
        else:
            pytest.fail("the disk never filled up")
        status = guard.check()
        assert status.level == "critical"
        assert status.alert_pending  # SQLite: database or disk is full
        assert not wire.isEnabledFor(logging.WARNING)  # the quieting did not wait for the alert

        (small_disk / "ballast").unlink()
        status = guard.check()
        assert not status.alert_pending
        # the centre hears both: that it happened, and that it is over
        assert alerts(journal) == [("disk_low", "critical"), ("disk_ok", "ok")]
    finally:
        journal.close()


def test_policy_must_be_ordered() -> None:
    with pytest.raises(ValueError):
        DiskPolicy(low_mib=100, critical_mib=200)
