"""The state directory: where ``kiosk run`` and ``kiosk agent`` meet (DESIGN.md, "Processes").

The journal (:mod:`statedir.journal`, SQLite in WAL mode, its stores split by table family) and
the catalog store (:mod:`statedir.catalog_store`). It imports only the domain (``flows``) and
the standard library; the UI, the drivers and the agent build on it.
"""
