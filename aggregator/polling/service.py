"""Poll accounts and store what they answered: the step `poll`, `demo` and `run` share."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from aggregator.model import PollRecord
from aggregator.polling.body import MAX_ANSWER_BYTES
from aggregator.polling.client import MAX_CONNECTIONS, RequestSlots, make_client
from aggregator.polling.poller import Account, poll_until_deadline, prepare
from aggregator.polling.ratelimit import Rate, RateLimits
from aggregator.sources.base import AccountConfig
from aggregator.storage.writer import PollWriter, Stored
from aggregator.storage.writes import PollWriteResult

log = logging.getLogger("aggregator.poll")


@dataclass(frozen=True)
class PollSettings:
    """What polling needs to know; the config builds it (polling never reads the config)."""

    deadline: float = 60.0  # seconds for one poll with its retries
    rate_limits: Mapping[str, Rate] = field(default_factory=dict)
    max_answer_bytes: int = MAX_ANSWER_BYTES  # one answer, after decompression


@dataclass(frozen=True)
class PollOutcome:
    """One account's poll: its attempts and where they were stored."""

    account: str
    records: list[PollRecord]
    stored: Stored  # of the last attempt
    seconds: float

    @property
    def final(self) -> PollRecord:
        return self.records[-1]

    @property
    def written(self) -> PollWriteResult | None:
        """What the database write changed; None while the poll waits in the spool."""
        written = self.stored.written
        return written if isinstance(written, PollWriteResult) else None

    @property
    def ok(self) -> bool:
        """The poll succeeded and is kept (in the database or, for now, the spool)."""
        return self.final.error_kind is None and self.stored.kept


class PollService:
    """Owns the HTTP client and the prepared accounts; hands every record to the writer."""

    def __init__(self, accounts: Sequence[AccountConfig], settings: PollSettings,
                 writer: PollWriter) -> None:
        self.settings = settings
        self.writer = writer
        self.limits = RateLimits(settings.rate_limits)
        self.accounts = {a.name: prepare(a, self.limits) for a in accounts}
        self._client: httpx.AsyncClient | None = None
        self._slots: RequestSlots | None = None

    async def __aenter__(self) -> PollService:
        self._client = make_client(MAX_CONNECTIONS)
        self._slots = RequestSlots()
        return self

    def http(self) -> tuple[httpx.AsyncClient, RequestSlots]:
        """The shared client and request slots, for other fetches (prices)."""
        assert self._client is not None and self._slots is not None, \
            "use PollService as an async context manager"
        return self._client, self._slots

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def poll(self, account: Account, deadline: float | None = None) -> PollOutcome:
        """Poll with retries until ``deadline`` seconds (default: the configured one)."""
        assert self._client is not None, "use PollService as an async context manager"
        began = time.monotonic()
        records = await poll_until_deadline(
            self._client, account, deadline or self.settings.deadline, slots=self._slots,
            max_answer_bytes=self.settings.max_answer_bytes,
        )
        # Every attempt is kept, in order: failed attempts are visible in the poll log.
        for record in records:
            stored = await self.writer.store(record)
        outcome = PollOutcome(account.name, records, stored, time.monotonic() - began)
        level = (logging.INFO if outcome.final.error_kind is None else logging.WARNING) \
            if stored.kept else logging.ERROR
        log.log(level, "%s", describe(outcome), extra={"poll": fields(outcome)})
        return outcome

    async def poll_all(self, names: Sequence[str] = ()) -> list[PollOutcome]:
        chosen = [a for a in self.accounts.values() if not names or a.name in names]
        return list(await asyncio.gather(*(self.poll(a) for a in chosen)))


def fields(outcome: PollOutcome) -> dict[str, object]:
    """The poll line as data, for --log-format json."""
    final = outcome.final
    written = outcome.written
    return {
        "account": outcome.account,
        "source": final.source,
        "outcome": final.status if outcome.stored.kept else "not_stored",
        "stored": outcome.stored.where,
        "seconds": round(outcome.seconds, 3),
        "attempts": len(outcome.records),
        "holdings": None if final.holdings is None else len(final.holdings),
        "changed": None if written is None else written.opened + written.closed,
        "error_kind": final.error_kind,
    }


def describe(outcome: PollOutcome) -> str:
    """One line per poll: account, outcome, duration, changes, error kind, where kept."""
    final, stored = outcome.final, outcome.stored
    tries = f", {len(outcome.records)} attempts" if len(outcome.records) > 1 else ""
    if outcome.written is not None:
        kept = ""
    elif stored.kept:
        kept = ", spooled" if stored.where == "spool" else ", held in memory"
    else:
        kept = ", NOT STORED (database, spool and memory queue full)"
    if final.error_kind is None:
        count = len(final.holdings or ())
        written = outcome.written
        changed = ("" if written is None
                   else f", {written.opened + written.closed} interval changes")
        return (f"{outcome.account}: ok, {count} holdings{changed}, "
                f"{outcome.seconds:.2f}s{tries}{kept}")
    return (f"{outcome.account}: failed [{final.error_kind}] {final.error_message}, "
            f"{outcome.seconds:.2f}s{tries}{kept}")
