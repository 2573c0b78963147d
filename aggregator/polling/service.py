"""Poll accounts and store what they answered: the step `poll`, `demo` and `run` share."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine

from aggregator.config import Settings
from aggregator.errors import StorageError
from aggregator.model import PollRecord
from aggregator.polling.client import MAX_CONNECTIONS, RequestSlots, make_client
from aggregator.polling.poller import Account, poll_until_deadline, prepare
from aggregator.polling.ratelimit import RateLimits
from aggregator.storage.writes import PollWriteResult, record_poll

log = logging.getLogger("aggregator.poll")


@dataclass(frozen=True)
class PollOutcome:
    """One account's poll as stored: its attempts and what the last one changed."""

    account: str
    records: list[PollRecord]
    written: PollWriteResult | None  # None when the database refused the poll
    seconds: float
    storage_error: str | None = None

    @property
    def final(self) -> PollRecord:
        return self.records[-1]

    @property
    def ok(self) -> bool:
        return self.final.error_kind is None and self.written is not None


class PollService:
    """Owns the HTTP client, the prepared accounts and the single database writer thread."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.limits = RateLimits(settings.rate_limits)
        self.accounts = {a.name: prepare(a, self.limits) for a in settings.accounts}
        self._client: httpx.AsyncClient | None = None
        self._slots: RequestSlots | None = None
        # One writer thread: SQLite allows one writer at a time anyway, and the event
        # loop never waits on a database lock.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")

    async def __aenter__(self) -> PollService:
        self._client = make_client(MAX_CONNECTIONS)
        self._slots = RequestSlots()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
        self._writer.shutdown(wait=True)

    async def poll(self, account: Account, deadline: float | None = None) -> PollOutcome:
        """Poll with retries until ``deadline`` seconds (default: the configured one)."""
        assert self._client is not None, "use PollService as an async context manager"
        began = time.monotonic()
        records = await poll_until_deadline(
            self._client, account, deadline or self.settings.poll_deadline.seconds,
            slots=self._slots,
        )
        loop = asyncio.get_running_loop()
        written: PollWriteResult | None = None
        problem = None
        try:
            for record in records:
                written = await loop.run_in_executor(self._writer, record_poll, self.engine,
                                                     record)
        except StorageError as exc:
            # The database is down or full: say so, keep polling the other accounts.
            written, problem = None, str(exc)
        outcome = PollOutcome(account.name, records, written, time.monotonic() - began,
                              problem)
        log.info("%s", describe(outcome), extra={"poll": fields(outcome)})
        return outcome

    async def poll_all(self, names: Sequence[str] = ()) -> list[PollOutcome]:
        chosen = [a for a in self.accounts.values() if not names or a.name in names]
        return list(await asyncio.gather(*(self.poll(a) for a in chosen)))


def fields(outcome: PollOutcome) -> dict[str, object]:
    """The poll line as data, for --log-format json."""
    final = outcome.final
    return {
        "account": outcome.account,
        "source": final.source,
        "outcome": final.status if outcome.written is not None else "not_stored",
        "seconds": round(outcome.seconds, 3),
        "attempts": len(outcome.records),
        "holdings": None if final.holdings is None else len(final.holdings),
        "changed": None if outcome.written is None
        else outcome.written.opened + outcome.written.closed,
        "error_kind": final.error_kind,
    }


def describe(outcome: PollOutcome) -> str:
    """One line per poll: account, outcome, duration, changes, error kind."""
    final = outcome.final
    if outcome.written is None:
        return f"{outcome.account}: not stored: {outcome.storage_error}"
    tries = f", {len(outcome.records)} attempts" if len(outcome.records) > 1 else ""
    if final.error_kind is None:
        count = len(final.holdings or ())
        changed = outcome.written.opened + outcome.written.closed
        return (f"{outcome.account}: ok, {count} holdings, {changed} interval changes, "
                f"{outcome.seconds:.2f}s{tries}")
    return (f"{outcome.account}: failed [{final.error_kind}] {final.error_message}, "
            f"{outcome.seconds:.2f}s{tries}")
