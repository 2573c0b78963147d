"""Open the database and bring its schema up to date with the packaged migrations."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from aggregator.errors import StorageError

# Transactions that write take the SQLite write lock at BEGIN, so two writers (the daemon
# and a manual `poll`) queue on busy_timeout instead of failing on a lock upgrade.
WRITE = {"aggregator_write": True}

# The newest migration. Checked against the scripts by tests/storage, so that a current
# database is recognised without importing alembic (12 MiB of the daemon's memory).
SCHEMA_REVISION = "0002"


def normalize_url(url: str) -> URL:
    """A SQLAlchemy URL; plain ``postgresql://`` means psycopg 3, the driver we ship."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(f"not a database URL: {_hide(url)}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def open_database(url: str, **engine_options: Any) -> Engine:
    """An engine for ``url``; a SQLite file's folder is created when missing."""
    parsed = normalize_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, **engine_options)
        if parsed.get_backend_name() == "postgresql":
            # A database that stops answering must fail the write, not hang the writer
            # thread forever (the polls go on and say "not stored").
            engine_options.setdefault("connect_args", {"connect_timeout": 10})
        return create_engine(parsed, pool_pre_ping=True, **engine_options)
    except (SQLAlchemyError, ImportError) as exc:
        raise StorageError(f"cannot open {describe(parsed)}: {exc}") from None


def describe(url: URL | str) -> str:
    """The URL as it may be shown: never with its password."""
    parsed = url if isinstance(url, URL) else normalize_url(url)
    return parsed.render_as_string(hide_password=True)


def _hide(url: str) -> str:
    # Not parseable, so the password cannot be located: show only the scheme.
    return url.split(":", 1)[0] + ":…" if ":" in url else "…"


def _sqlite_engine(url: URL, **engine_options: Any) -> Engine:
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        try:
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the folder of {url.database}: {exc}") from None
    engine = create_engine(url, **engine_options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event, not the driver, decide where transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("aggregator_write")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("aggregator.migrations")))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    """Apply every migration not yet applied; a no-op when the schema is current."""
    if current_revision(engine) == SCHEMA_REVISION:
        return
    from alembic import command

    try:
        with engine.connect() as connection:
            command.upgrade(_alembic_config(connection), "head")
            connection.commit()
    except SQLAlchemyError as exc:
        raise StorageError(f"migrating {describe(engine.url)} failed: {exc}") from None


def current_revision(engine: Engine) -> str | None:
    """The schema's alembic revision, None for an empty database."""
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            found: str | None = connection.execute(
                text("SELECT version_num FROM alembic_version")).scalar()
            return found
    except SQLAlchemyError as exc:
        raise StorageError(f"reading the schema revision of {describe(engine.url)}: {exc}") \
            from None
