"""The fleet's own errors: the broker, the PKI, the catalog repository, rollouts, the console's
database. They are said to operators and technicians in plain words, at a command line or on
a console page; they never reach a resident, so they do not derive from
:class:`flows.errors.KioskError`, whose translation keys are the kiosk screen's."""

from __future__ import annotations


class FleetError(Exception):
    """Base of every error the fleet code raises on purpose."""

    translation_key: str = "error.fleet"  # a stable name for logs and the console's pages
