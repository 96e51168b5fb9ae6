"""Alembic migrations of the console's database (run by ``fleet.web_store.Store.migrate``)."""
