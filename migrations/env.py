"""Alembic environment: runs on the connection ``aggregator db upgrade`` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from aggregator.storage.database import normalize_url
from aggregator.storage.tables import metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite can alter tables only by copying them; batch mode does that for later
        # migrations.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    # Plain `alembic -x url=... upgrade head` for developers writing a migration.
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database with: alembic -x url=sqlite:///path ...")
    with create_engine(normalize_url(url)).connect() as conn:
        _run(conn)
        conn.commit()
