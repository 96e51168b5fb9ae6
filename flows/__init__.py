"""The domain of the station kiosk: catalog, session state chart, documents, journal, ports.

Nothing in this package does I/O with devices, the network or the screen; it imports only the
standard library and pure libraries (enforced by import-linter, see pyproject.toml).
"""
