"""The fleet protocol (DESIGN.md, "Fleet protocol (MQTT v5)"), shared by both sides.

:mod:`fleet.protocol.topics` names the topics and encodes payloads; :mod:`fleet.protocol.models`
types every message with its limits; :mod:`fleet.protocol.commands` is the one list of remote
commands with where they run and their default timeouts. The agent and the simulated terminals
build what they send through these models, and tests read what they sent back through them.
"""
