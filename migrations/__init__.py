"""Alembic migrations, shipped inside the package as ``aggregator.migrations``."""
