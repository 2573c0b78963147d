"""The daemon a user would write instead of aggregator: CCXT async + SQLAlchemy snapshots.

    python bench/peer_ccxt.py --accounts ACCOUNTS.json --database URL --interval SECONDS

The peer of ``bench/peer_compare.py``. ACCOUNTS.json is ``{"base_url": ..., "accounts":
[{"name", "api_key", "api_secret"}, ...]}`` (BitoPro accounts). Each account gets its own
``ccxt.async_support.bitopro`` client, throttle off (``enableRateLimit: False``), and its
own task polling ``fetch_balance()`` on the same schedule as ``aggregator run`` (the first
poll within min(1 s, 10 % of the interval) of start-up, then every interval plus up to
10 % jitter), one request at a time per key (CCXT's nonce is plain milliseconds).
Every successful poll stores one row per asset (account, asset, total, free, used,
polled_at) through a SQLAlchemy ORM session, one transaction per poll. A failed poll is
counted and printed at exit, not stored.

The things a real script would do that the sandbox cannot serve are done once at
start-up instead: ``load_markets()`` is skipped (``markets = {}``: the fake serves only the
balance endpoint), and each client's aiohttp session is opened before the first poll.
SQLite gets the same settings as aggregator's (WAL, synchronous=NORMAL), so the two
programs differ in their code, not in fsync.

Needs the bench extra: ``pip install -e '.[bench]'``. SIGTERM or SIGINT stops it (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt
from sqlalchemy import DateTime, Engine, Integer, Numeric, String, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

JITTER = 0.1  # of the interval, at most: as aggregator's scheduler


class Base(DeclarativeBase):
    pass


class Snapshot(Base):
    """One asset of one account as one poll saw it."""

    __tablename__ = "balance_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(100), index=True)
    asset: Mapped[str] = mapped_column(String(40))
    total: Mapped[Any] = mapped_column(Numeric(38, 18), nullable=True)
    free: Mapped[Any] = mapped_column(Numeric(38, 18), nullable=True)
    used: Mapped[Any] = mapped_column(Numeric(38, 18), nullable=True)
    polled_at: Mapped[datetime] = mapped_column(DateTime, index=True)


def engine_for(url: str) -> Engine:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def pragmas(connection: Any, record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
    return engine


def create_schema(url: str) -> None:
    """The snapshot table (the bench calls this before a round, to measure growth only)."""
    engine = engine_for(url)
    Base.metadata.create_all(engine)
    engine.dispose()


def store(engine: Engine, account: str, balance: dict[str, Any], polled_at: datetime) -> None:
    totals, free, used = balance["total"], balance["free"], balance["used"]
    with Session(engine) as session, session.begin():
        session.add_all([
            Snapshot(account=account, asset=code, total=totals[code], free=free.get(code),
                     used=used.get(code), polled_at=polled_at)
            for code in totals
        ])


class Peer:
    def __init__(self, args: argparse.Namespace) -> None:
        spec = json.loads(Path(args.accounts).read_text(encoding="utf-8"))
        self.interval = float(args.interval)
        self.engine = engine_for(args.database)
        Base.metadata.create_all(self.engine)
        self.clients: dict[str, Any] = {}
        for account in spec["accounts"]:
            client = ccxt.bitopro({"apiKey": account["api_key"], "secret": account["api_secret"],
                                   "enableRateLimit": False})
            client.urls["api"] = {"rest": spec["base_url"]}
            client.markets = {}  # no load_markets(): the fake serves only the balance
            self.clients[account["name"]] = client
        self.stored = 0
        self.failed: dict[str, int] = {}
        self.stop = asyncio.Event()

    async def poll_forever(self, name: str, client: Any) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + random.uniform(0, min(1.0, JITTER * self.interval))
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), max(0.0, due - loop.time()))
            if self.stop.is_set():
                return
            try:
                balance = await client.fetch_balance()
            except ccxt.BaseError as exc:
                kind = type(exc).__name__
                self.failed[kind] = self.failed.get(kind, 0) + 1
            else:
                store(self.engine, name, balance, datetime.now(UTC).replace(tzinfo=None))
                self.stored += 1
            due += self.interval + random.uniform(0, JITTER * self.interval)
            due = max(due, loop.time())  # a late poll is not followed by a burst

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        for client in self.clients.values():
            client.open()  # the aiohttp session (and TLS context) of each: start-up work
        tasks = [asyncio.create_task(self.poll_forever(name, client))
                 for name, client in self.clients.items()]
        try:
            await self.stop.wait()
            # As aggregator: polls in flight get a few seconds, then are cancelled.
            _, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            await asyncio.gather(*(c.close() for c in self.clients.values()),
                                 return_exceptions=True)
            self.engine.dispose()
        print(json.dumps({"stored": self.stored, "failed": self.failed}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", required=True, help="the accounts JSON file")
    parser.add_argument("--database", required=True, help="a SQLAlchemy URL")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds (default 2)")
    args = parser.parse_args(argv)
    asyncio.run(Peer(args).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
