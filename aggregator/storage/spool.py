"""The local spool: polls that could not be written wait here, on disk, in order.

One SQLite file (stdlib ``sqlite3``, synchronous=FULL: an append is on disk when it
returns), one row per poll record in arrival order. Bounded in bytes: an append that
would pass ``max_bytes`` is refused with ``SpoolFull`` and the caller keeps the poll in
memory instead (see ``storage.writer``). A row is deleted only after the database has
committed it, so a crash at any point replays it again, and the writer's idempotent
insert makes that harmless.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aggregator.storage import codec
from aggregator.storage.types import from_millis, to_millis

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
FILE_PREFIX = "spool-"


class SpoolError(Exception):
    """The spool file cannot be written (disk full, read-only, gone)."""


class SpoolFull(SpoolError):
    """The spool holds ``max_bytes`` already."""


@dataclass(frozen=True)
class Entry:
    seq: int
    record: codec.Record


def default_path(database: str, environ: Mapping[str, str] = os.environ,
                 sqlite_file: str | None = None) -> Path:
    """Where the spool of ``database`` lives when the config does not say.

    ``$STATE_DIRECTORY`` (systemd's StateDirectory=), else the SQLite file's folder, else
    ``~/.local/state/aggregator``. The name carries a digest of the database so two
    databases never share a spool (and replay into the wrong one).
    """
    digest = hashlib.sha256(database.encode()).hexdigest()[:12]
    name = f"{FILE_PREFIX}{digest}.db"
    state = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        return Path(state) / name
    if sqlite_file:
        return Path(sqlite_file).expanduser().resolve().parent / name
    return Path(environ.get("XDG_STATE_HOME") or Path.home() / ".local/state") \
        / "aggregator" / name


class Spool:
    """An append-only queue of poll records on local disk. Thread-safe."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._count = 0
        self._bytes = 0
        self._oldest: datetime | None = None

    def _open(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=5.0)
            # FULL: the append is durable when it returns, which is the spool's whole point.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY "
                         "AUTOINCREMENT, finished_ms INTEGER NOT NULL, record BLOB NOT NULL)")
            row = conn.execute("SELECT count(*), coalesce(sum(length(record)), 0) "
                               "FROM spool").fetchone()
        except (sqlite3.Error, OSError) as exc:
            raise SpoolError(f"cannot open the spool {self.path}: {_reason(exc)}") from None
        self._conn = conn
        self._count, self._bytes = int(row[0]), int(row[1])
        self._oldest = self._first(conn)
        return conn

    @staticmethod
    def _first(conn: sqlite3.Connection) -> datetime | None:
        # The head of the queue: polls arrive about in time order, and this stays O(log n).
        row = conn.execute("SELECT finished_ms FROM spool ORDER BY seq LIMIT 1").fetchone()
        return None if row is None else from_millis(int(row[0]))

    def exists(self) -> bool:
        return self._conn is not None or self.path.exists()

    def append(self, record: codec.Record) -> None:
        blob = codec.encode(record)
        with self._lock:
            conn = self._open()
            if self._bytes + len(blob) > self.max_bytes:
                raise SpoolFull(f"the spool {self.path} is full ({self._bytes} bytes)")
            try:
                conn.execute("INSERT INTO spool (finished_ms, record) VALUES (?, ?)",
                             (to_millis(record.finished_at), blob))
            except (sqlite3.Error, OSError) as exc:
                raise SpoolError(f"cannot write the spool {self.path}: {_reason(exc)}") \
                    from None
            self._count += 1
            self._bytes += len(blob)
            if self._oldest is None:
                self._oldest = record.finished_at

    def peek(self, limit: int = 100) -> list[Entry]:
        """The oldest ``limit`` entries, in order; nothing is removed."""
        with self._lock:
            if not self.exists():
                return []
            conn = self._open()
            try:
                rows = conn.execute("SELECT seq, record FROM spool ORDER BY seq LIMIT ?",
                                    (limit,)).fetchall()
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot read the spool {self.path}: {_reason(exc)}") \
                    from None
        return [Entry(int(seq), codec.decode(bytes(blob))) for seq, blob in rows]

    def remove(self, seqs: list[int]) -> None:
        """Forget entries once the database holds them (one fsync for all of them)."""
        with self._lock:
            conn = self._open()
            try:
                conn.execute("BEGIN")
                for seq in seqs:
                    row = conn.execute("DELETE FROM spool WHERE seq = ? "
                                       "RETURNING length(record)", (seq,)).fetchone()
                    if row is not None:
                        self._count -= 1
                        self._bytes -= int(row[0])
                conn.execute("COMMIT")
                self._oldest = self._first(conn)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise SpoolError(f"cannot update the spool {self.path}: {_reason(exc)}") \
                    from None

    @property
    def count(self) -> int:
        return self._count

    @property
    def size(self) -> int:
        return self._bytes

    @property
    def oldest(self) -> datetime | None:
        return self._oldest

    def load(self) -> None:
        """Open (or create) the spool and read what an earlier run left in it.

        At start-up, so that a spool that cannot be written is said before it is needed.
        """
        with self._lock:
            self._open()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
