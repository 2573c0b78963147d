"""Locks shared by auth flows, safe across threads and event loops."""

from __future__ import annotations

import asyncio
import threading
from weakref import WeakKeyDictionary


class LoopLocks:
    """One ``asyncio.Lock`` per (running event loop, name).

    An asyncio lock binds to the loop that first waits on it, so a lock kept in a
    long-lived object would break the next loop (each test, each ``asyncio.run``).
    Keying by loop, weakly, also lets a closed loop's locks go away with it.
    """

    def __init__(self) -> None:
        # Loops may run in different threads; the registry itself needs a thread lock.
        self._guard = threading.Lock()
        self._locks: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
            WeakKeyDictionary()
        )

    def get(self, name: str = "") -> asyncio.Lock:
        """The lock for ``name`` in the running loop (call from a coroutine)."""
        loop = asyncio.get_running_loop()
        with self._guard:
            per_loop = self._locks.get(loop)
            if per_loop is None:
                per_loop = self._locks[loop] = {}
            lock = per_loop.get(name)
            if lock is None:
                lock = per_loop[name] = asyncio.Lock()
            return lock


class ThreadLocks:
    """One ``threading.Lock`` per name, for the synchronous flows."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, name: str = "") -> threading.Lock:
        with self._guard:
            lock = self._locks.get(name)
            if lock is None:
                lock = self._locks[name] = threading.Lock()
            return lock
