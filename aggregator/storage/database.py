"""Open the database and bring its schema up to date with the packaged migrations."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
from collections.abc import Callable
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
SCHEMA_REVISION = "0004"


def normalize_url(url: str) -> URL:
    """A SQLAlchemy URL; plain ``postgresql://`` means psycopg 3, the driver we ship."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(f"not a database URL: {_hide(url)}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot open a SQLite or PostgreSQL database here, or None.

    Connects to nothing, and never quotes the URL: it may carry a password.
    """
    shape = "expected sqlite:///PATH or postgresql://USER@HOST/DBNAME"
    try:
        parsed = normalize_url(url)
    except (StorageError, ValueError):  # ValueError: a port that is not a number
        return f"not a database URL; {shape}"
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        return f"{backend!r} databases are not supported; {shape}"
    try:
        dialect = parsed.get_dialect()
        dialect.import_dbapi()
    except (SQLAlchemyError, ImportError):
        return f"the driver {parsed.get_driver_name()!r} is not installed; {shape}"
    if dialect.is_async:
        return f"the driver {parsed.get_driver_name()!r} is asynchronous; {shape}"
    if backend == "sqlite":
        if parsed.host or parsed.port or parsed.username or parsed.password:
            return "a SQLite URL names a file, not a host: sqlite:///relative/path or " \
                   "sqlite:////absolute/path"
        return None
    if parsed.port is not None and not 0 < parsed.port < 65536:
        return "the port must be between 1 and 65535"
    if parsed.get_driver_name() == "psycopg":
        from psycopg import Error as PsycopgError
        from psycopg.conninfo import make_conninfo

        _, options = dialect().create_connect_args(parsed)
        try:
            make_conninfo("", **options)  # libpq checks the option names
        except PsycopgError as exc:
            # libpq names the option, not its value: 'invalid connection option "x"'.
            return f"{str(exc).strip().splitlines()[0]} in the URL's query"
    return None


def open_database(url: str, write_timeout: float | None = None, **engine_options: Any
                  ) -> Engine:
    """An engine for ``url``; a SQLite file's folder is created when missing.

    With ``write_timeout`` (seconds) it is the poll writer's engine: every wait on the
    server is bounded by about that long (connecting, locks, statements, a dead TCP
    peer), and no pre-ping, so that the writer can interrupt a hanging call itself
    (see ``interrupter``).
    """
    parsed = normalize_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            busy = 30.0 if write_timeout is None else max(0.5, write_timeout * 0.8)
            return _sqlite_engine(parsed, busy, **engine_options)
        if parsed.get_backend_name() == "postgresql":
            engine_options.setdefault("connect_args", _pg_timeouts(write_timeout))
        return create_engine(parsed, pool_pre_ping=write_timeout is None, **engine_options)
    except (SQLAlchemyError, ImportError) as exc:
        raise StorageError(f"cannot open {describe(parsed)}: {exc}") from None


def _pg_timeouts(write_timeout: float | None) -> dict[str, Any]:
    if write_timeout is None:
        # A database that stops answering must fail a new connection, not hang it.
        return {"connect_timeout": 10}
    ms = max(500, int(write_timeout * 1000))
    return {
        "connect_timeout": max(2, int(write_timeout)),
        # A peer that vanished (packets dropped) is noticed by the kernel within the
        # timeout; a frozen server's kernel still ACKs, which only the writer's own
        # deadline catches.
        "keepalives": 1, "keepalives_idle": max(1, int(write_timeout)),
        "keepalives_interval": 1, "keepalives_count": 3, "tcp_user_timeout": ms,
        "options": f"-c statement_timeout={ms} -c lock_timeout={ms} "
                   f"-c idle_in_transaction_session_timeout={ms * 6}",
    }


def interrupter(dbapi_connection: Any) -> Callable[[], None]:
    """A function that makes a call hanging on ``dbapi_connection`` fail promptly.

    Safe from another thread: SQLite's own ``interrupt()``; for a network database the
    socket is shut down (not closed, so its descriptor cannot be reused meanwhile), which
    wakes the blocked read with an error.
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        return dbapi_connection.interrupt
    fileno = getattr(dbapi_connection, "fileno", None)

    def shut_down() -> None:
        if fileno is None:
            return
        with contextlib.suppress(OSError, ValueError):
            duplicate = socket.socket(fileno=os.dup(fileno()))
            try:
                duplicate.shutdown(socket.SHUT_RDWR)
            finally:
                duplicate.close()

    return shut_down


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL; None for other databases and in-memory ones."""
    try:
        parsed = normalize_url(url)
    except StorageError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database \
            or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return parsed.database


def describe(url: URL | str) -> str:
    """The URL as it may be shown: never with its password."""
    parsed = url if isinstance(url, URL) else normalize_url(url)
    return parsed.render_as_string(hide_password=True)


def _hide(url: str) -> str:
    # Not parseable, so the password cannot be located: show only the scheme.
    return url.split(":", 1)[0] + ":…" if ":" in url else "…"


def _sqlite_engine(url: URL, busy_timeout: float, **engine_options: Any) -> Engine:
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
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
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


def one_line(exc: BaseException) -> str:
    """The driver's own first line, without SQLAlchemy's SQL, parameters and links."""
    inner = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    return (lines[0] if lines else type(inner).__name__)[:300]


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
        raise StorageError(f"migrating {describe(engine.url)} failed: {one_line(exc)}") \
            from None


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
        raise StorageError(f"reading the schema revision of {describe(engine.url)}: "
                           f"{one_line(exc)}") from None
