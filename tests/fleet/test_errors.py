"""The fleet's errors are the operators' and technicians', never the resident's."""

from __future__ import annotations

import pytest

from fleet.console.rollout import RolloutError
from fleet.errors import FleetError
from fleet.trust.catalog_repo import RepositoryError
from fleet.trust.pki import PkiError
from flows.errors import KioskError
from sandbox.mosquitto import BrokerError
from sandbox.postgres import PostgresError


@pytest.mark.parametrize(
    "error", [BrokerError, RepositoryError, PkiError, RolloutError, PostgresError]
)
def test_fleet_errors_have_their_own_base(error: type[Exception]) -> None:
    assert issubclass(error, FleetError)
    assert not issubclass(error, KioskError)  # a kiosk screen never catches one as its own
