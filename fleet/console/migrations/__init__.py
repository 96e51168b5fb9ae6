"""Alembic migrations of the console's database (run by ``fleet.console.store.Store.migrate``)."""
