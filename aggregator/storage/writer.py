"""The poll writer: every poll made reaches the database, now or after an outage.

::

    store(record) ─▶ database ──(unavailable)──▶ spool on disk ──(cannot write)──▶ memory
                        ▲                                                            │
                        └──────────── replay, oldest first, once it takes writes ◀───┘

While anything waits (the backlog is not empty), new polls join the end of the backlog,
so each account's polls reach the database in the order they were made, with their own
times. Every database call runs on one worker thread with a deadline; a call that passes
it is interrupted (``database.interrupter``), so a frozen server costs one deadline, not
a stall. A poll the database refuses as it is (``PollUnstorable``) is stored as a failed
poll of kind ``unstorable`` with its answers, never retried forever.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine

from aggregator.errors import (
    UNSTORABLE_KIND,
    DatabaseUnavailable,
    PollUnstorable,
    StorageError,
)
from aggregator.prices.model import FetchRecord
from aggregator.storage import codec, database
from aggregator.storage.price_writes import FetchWriteResult, record_fetch
from aggregator.storage.spool import DEFAULT_MAX_BYTES, Spool, SpoolError
from aggregator.storage.writes import PollWriteResult, record_poll

log = logging.getLogger("aggregator.storage")

T = TypeVar("T")

# How long an interrupted call may take to notice before its thread is given up on.
INTERRUPT_GRACE = 2.0
REPLAY_BATCH = 64
RETRY_FIRST, RETRY_MAX = 0.5, 5.0


@dataclass(frozen=True)
class WriterSettings:
    """How the writer waits, and where and how much it keeps while the database is away."""

    spool_path: Path
    timeout: float = 10.0  # seconds one database call may take
    spool_max_bytes: int = DEFAULT_MAX_BYTES
    memory_polls: int = 10_000  # polls held in memory when the spool cannot be written


@dataclass(frozen=True)
class Stored:
    """Where a poll went: the database (``written``), the backlog, or nowhere."""

    written: PollWriteResult | FetchWriteResult | None
    where: str  # "database" | "spool" | "memory" | "lost"
    problem: str | None = None  # why it is not in the database yet

    @property
    def kept(self) -> bool:
        return self.where != "lost"


@dataclass(frozen=True)
class Health:
    database_up: bool
    down_since: datetime | None
    reason: str | None
    spooled: int  # polls waiting, on disk and in memory
    spool_bytes: int
    in_memory: int
    oldest: datetime | None
    replayed: int  # since start
    lost: int  # since start


Record = codec.Record
Written = PollWriteResult | FetchWriteResult


def _record(engine: Engine, record: Record, watch: _Watch) -> Written:
    if isinstance(record, FetchRecord):
        return record_fetch(engine, record, watch)
    return record_poll(engine, record, watch)


def _failed(record: Record, message: str) -> Record:
    if isinstance(record, FetchRecord):
        return dataclasses.replace(record, observations=None, error_kind=UNSTORABLE_KIND,
                                   error_message=message)
    return dataclasses.replace(record, holdings=None, error_kind=UNSTORABLE_KIND,
                               error_message=message)


def _what(record: Record) -> str:
    if isinstance(record, FetchRecord):
        return f"price fetch of {record.source}"
    return f"poll of {record.account}"


class _Worker:
    """One daemon thread running database calls in order (a stuck one never blocks exit)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]
                                      | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            call, future = job
            if not future.set_running_or_notify_cancel():
                continue  # given up on while it waited: never run it late
            try:
                future.set_result(call())
            except BaseException as exc:
                future.set_exception(exc)

    def submit(self, call: Callable[[], T]) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((call, future))
        return future

    def stop(self) -> None:
        self._jobs.put(None)


class _Watch:
    """Learns the connection a call uses, so the call can be interrupted from outside."""

    def __init__(self) -> None:
        self._interrupt: Callable[[], None] | None = None

    def __call__(self, dbapi_connection: Any) -> None:
        self._interrupt = database.interrupter(dbapi_connection)

    def interrupt(self) -> None:
        if self._interrupt is not None:
            self._interrupt()


class PollWriter:
    """Stores poll records; owns the worker thread, the spool and the memory queue.

    Use from one event loop: ``await start()``, ``await store(record)``, ``await close()``.
    """

    def __init__(self, engine: Engine, settings: WriterSettings,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.settings = settings
        self.spool = Spool(settings.spool_path, settings.spool_max_bytes)
        self._clock = clock
        self._worker = _Worker()
        self._memory: collections.deque[Record] = collections.deque()
        self._backlogged = False  # True while anything waits or the database is down
        self._lock = asyncio.Lock()  # orders backlog changes
        self._drain: asyncio.Task[None] | None = None
        self._down_since: datetime | None = None
        self._down_at = 0.0
        self._reason: str | None = None
        self._spool_failing = False
        self._schema_checked = False
        self._replayed = self._replayed_this_outage = self._lost = 0
        self.on_change: Callable[[Health], None] | None = None
        # The oldest replayed record's time: what was valued before it may have changed.
        # Whoever acts on it sets it back to None.
        self.replayed_since: datetime | None = None

    # lifecycle

    async def start(self) -> None:
        """Bring the schema up to date if the database answers; pick up an old spool.

        Polls left in the spool by an earlier run are replayed before anything new.
        """
        try:
            await asyncio.to_thread(self.spool.load)
        except SpoolError as exc:
            log.warning("%s", exc)
        try:
            await self._submit(self._check_schema)
        except DatabaseUnavailable as exc:
            self._went_down(str(exc))
        if self.spool.count:
            log.info("%d polls from an earlier run wait in %s; replaying them first",
                     self.spool.count, self.spool.path)
            self._backlogged = True
        if self._backlogged:
            self._ensure_drain()

    async def close(self, timeout: float = 5.0) -> None:
        """Replay what can be replayed within ``timeout``; keep the rest on disk."""
        if self._drain is not None and not self._drain.done():
            with_deadline = asyncio.wait_for(asyncio.shield(self._drain), timeout)
            try:
                await with_deadline
            except TimeoutError:
                self._drain.cancel()
                await asyncio.gather(self._drain, return_exceptions=True)
        if self._memory:
            await self._flush_memory()
        if self._memory:
            log.error("%d polls held in memory are lost at exit: neither the database nor "
                      "the spool %s could take them", len(self._memory), self.spool.path)
        self._worker.stop()
        self.spool.close()

    # storing

    async def store(self, record: Record) -> Stored:
        """Write ``record`` now, or keep it for the replay. Never raises StorageError."""
        if not self._backlogged:
            try:
                return Stored(await self._write(record), "database")
            except DatabaseUnavailable as exc:
                self._went_down(str(exc))
                problem = str(exc)
        else:
            problem = self._reason or "polls before it wait to be stored"
        where = await self._enqueue(record)
        return Stored(None, where, problem)

    async def _write(self, record: Record) -> Written:
        """One record into the database; an unstorable one as a failed one instead."""
        try:
            return await self._call(lambda watch: _record(self.engine, record, watch))
        except PollUnstorable as exc:
            reason = str(exc)
        log.error("the %s cannot be stored as it is (%s): storing it as failed",
                  _what(record), reason)
        degraded = _failed(record, f"could not be stored: {reason}"[:1000])
        try:
            return await self._call(lambda watch: _record(self.engine, degraded, watch))
        except PollUnstorable:
            bare = dataclasses.replace(degraded, responses=())
            return await self._call(lambda watch: _record(self.engine, bare, watch))

    async def _call(self, call: Callable[[_Watch], T]) -> T:
        """Run ``call`` on the worker; past the deadline interrupt it, raise unavailable."""
        if not self._schema_checked:
            await self._submit(self._check_schema)
        watch = _Watch()
        return await self._submit(lambda: call(watch), watch)

    async def _submit(self, call: Callable[[], T], watch: _Watch | None = None) -> T:
        future = self._worker.submit(call)
        waiting = asyncio.wrap_future(future)
        timeout = self.settings.timeout
        try:
            return await asyncio.wait_for(asyncio.shield(waiting), timeout)
        except TimeoutError:
            pass
        if not future.cancel():
            if watch is not None:
                watch.interrupt()
            try:
                await asyncio.wait_for(asyncio.shield(waiting), INTERRUPT_GRACE)
            except TimeoutError:
                # Stuck beyond interruption: leave that thread to its fate, use a new one.
                self._worker.stop()
                self._worker = _Worker()
            except Exception:
                pass  # the interrupted call failed, as it should
        raise DatabaseUnavailable(f"no answer from the database within {timeout:g}s")

    def _check_schema(self) -> None:
        try:
            database.upgrade(self.engine)
        except StorageError as exc:
            raise DatabaseUnavailable(str(exc)) from None
        self._schema_checked = True

    # the backlog

    async def _enqueue(self, record: Record) -> str:
        async with self._lock:
            self._backlogged = True
            self._ensure_drain()
            if self._memory:
                await self._flush_memory()
            if not self._memory:
                try:
                    await asyncio.to_thread(self.spool.append, record)
                    self._spool_ok()
                    self._changed()
                    return "spool"
                except SpoolError as exc:
                    self._spool_failed(exc)
            if len(self._memory) < self.settings.memory_polls:
                self._memory.append(record)
                self._changed()
                return "memory"
            self._lost += 1
            log.error("the %s is lost: the database, the spool %s and the memory "
                      "queue (%d polls) are all full", _what(record), self.spool.path,
                      len(self._memory))
            return "lost"

    async def _flush_memory(self) -> None:
        """Move polls held in memory to the spool, oldest first, while it takes them."""
        while self._memory:
            try:
                await asyncio.to_thread(self.spool.append, self._memory[0])
            except SpoolError as exc:
                self._spool_failed(exc)
                return
            self._memory.popleft()
            self._spool_ok()

    def _spool_failed(self, exc: SpoolError) -> None:
        if not self._spool_failing:
            self._spool_failing = True
            log.warning("%s: holding up to %d polls in memory until the database or the "
                        "spool takes writes again (lost only if the process dies meanwhile)",
                        exc, self.settings.memory_polls)

    def _spool_ok(self) -> None:
        if self._spool_failing:
            self._spool_failing = False
            log.info("the spool %s takes writes again", self.spool.path)

    def _ensure_drain(self) -> None:
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._replay(), name="replay-spool")

    async def _replay(self) -> None:
        """Write the backlog to the database, oldest first, until it is empty."""
        delay = RETRY_FIRST
        while True:
            try:
                progressed = await self._replay_some()
            except DatabaseUnavailable as exc:
                self._went_down(str(exc))
                progressed = None
            except SpoolError as exc:
                log.warning("%s", exc)
                progressed = None
            if progressed is None:
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_FIRST
            if not progressed:
                async with self._lock:
                    if not self.spool.count and not self._memory:
                        self._came_back()
                        return

    async def _replay_some(self) -> bool:
        """One batch; False when there was nothing to replay."""
        entries = await asyncio.to_thread(self.spool.peek, REPLAY_BATCH)
        done: list[int] = []
        try:
            for entry in entries:
                await self._write(entry.record)
                done.append(entry.seq)
                self._replayed_one(entry.record)
        finally:
            # A crash before this replays them again: found in the database, skipped.
            if done:
                await asyncio.to_thread(self.spool.remove, done)
        if entries:
            return True
        # Only once the spool is empty: everything in memory is newer than the spool. Under
        # the lock, so that a flush to the spool cannot move the head meanwhile.
        async with self._lock:
            if not self._memory:
                return False
            record = self._memory[0]
            await self._write(record)
            self._memory.popleft()
        self._replayed_one(record)
        return True

    def _replayed_one(self, record: Record) -> None:
        self._replayed += 1
        self._replayed_this_outage += 1
        if self.replayed_since is None or record.started_at < self.replayed_since:
            self.replayed_since = record.started_at
        self._changed()

    # health

    def _went_down(self, reason: str) -> None:
        self._backlogged = True
        if self._down_since is None:
            self._down_since = self._clock()
            self._down_at = time.monotonic()
            self._replayed_this_outage = 0
            log.warning("database unavailable: %s; polls are spooled to %s until it is back",
                        reason, self.spool.path)
        self._reason = reason
        self._changed()

    def _came_back(self) -> None:
        self._backlogged = False
        if self._down_since is not None:
            log.info("database available again after %.0fs: %d spooled polls replayed",
                     time.monotonic() - self._down_at, self._replayed_this_outage)
        elif self._replayed_this_outage:
            log.info("%d spooled polls replayed", self._replayed_this_outage)
        self._down_since, self._reason = None, None
        self._replayed_this_outage = 0
        self._changed()

    def health(self) -> Health:
        return Health(
            database_up=self._down_since is None,
            down_since=self._down_since,
            reason=self._reason,
            spooled=self.spool.count + len(self._memory),
            spool_bytes=self.spool.size,
            in_memory=len(self._memory),
            oldest=self.spool.oldest or (self._memory[0].finished_at if self._memory
                                         else None),
            replayed=self._replayed,
            lost=self._lost,
        )

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.health())
