"""GA 467 ID-card readers (SAM over serial): protocol, synthetic cards, driver, pty simulator.

``reader.SamReader`` implements ``flows.ports.IdentityReader``; ``simulator.SamSimulator`` is the
real peer the tests and ``make run`` use; ``cards`` holds the invented demo cards.
"""
