"""A year of 1-minute polls in the real schema: size, write time and the read paths.

    python bench/history_year.py [--days 365] [--accounts 20] [--assets 30]
                                 [--database sqlite|postgresql|both] [--runs 20]
                                 [--keep] [--pg-url URL] [--sqlite-path PATH]

Generates, for every account, one poll per minute over ``--days`` days (20 accounts ->
10.5 M polls a year) straight into the schema the migrations create, the way
``aggregator.storage.writes.record_poll`` would have stored them:

- a ``polls`` row per poll (``ok`` or ``failed`` with an error kind and message,
  attempt 1); ~0.5 % of the polls fail (timeout, server_error, rate_limited,
  unreachable);
- a ``poll_responses`` row ``(poll_id, seq, response_id)`` per HTTP answer (PiTrade:
  two per poll; timeouts and refused connections: none), pointing at a deduplicated
  ``raw_responses`` row: one per distinct (endpoint, status, content type, body), with
  ``sha256`` computed as ``writes._response_id`` does. The answers are a small fixed set
  (one per account and endpoint, one per failure status and failing endpoint), as for an
  exchange whose body is byte-identical from poll to poll; sources that put a timestamp
  in every body would add that answer's size to every poll (see docs/performance.md);
- ``holdings`` change intervals: per account 3 fast assets change with probability
  0.1 each per successful poll (~27 % of successful polls change at least one amount,
  as in STORAGE.md's simulation) and one of the other assets changes about once a week.
  A change closes the open interval (``valid_to`` = the poll's ``finished_at``) and
  opens a new one (``valid_from`` = ``finished_at``, ``poll_id`` = the poll);
- ``accounts.last_ok_at``: set once at the end of the load to the ``finished_at`` of
  each account's last successful poll (``record_poll`` updates it on every ok poll).

Writing 10.5 M polls through ``record_poll`` would take hours, so rows are generated in
Python and bulk-inserted: on SQLite with the raw sqlite3 connection's ``executemany``
in transactions of ``--chunk-days`` days, with ``PRAGMA synchronous=OFF`` and a 256 MB
page cache during the load (the daemon runs with synchronous=NORMAL); on PostgreSQL with
psycopg ``COPY ... FROM STDIN`` per table and chunk, indexes and foreign keys in place.
Then ``accounts.last_ok_at`` is set, the sequences are set past the generated ids
(PostgreSQL), ``ANALYZE`` runs
(PostgreSQL: ``VACUUM ANALYZE``, as autovacuum would do on a live database, so index-only
scans can work) and the WAL is checkpointed (SQLite).

Measured afterwards, warm cache, median of ``--runs`` runs (time.perf_counter, through
the project's own functions):

- ``holdings --at``: ``queries.holdings_at(engine, at)`` at a new random instant each run;
- ``history``: ``queries.history(engine, account, asset=fast asset, since, until)`` over
  the last 30 days of the data;
- nightly report: ``reports.build.build_report(engine, day, UTC)`` for a random day with
  30 days before it (its 30 chart lookups are ``holdings_at(..., observed=False)``), then
  each renderer that is importable (HTML, CSV, text);
- size: the SQLite file plus ``-wal`` after a checkpoint; PostgreSQL
  ``pg_database_size`` (and per table with its indexes).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from aggregator.reports.build import build_report
from aggregator.sandbox import FAKES
from aggregator.sources.registry import SOURCES
from aggregator.storage import database, queries

PG_ADMIN = os.environ.get("AGGREGATOR_TEST_PG_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")
END = datetime(2026, 1, 1, tzinfo=UTC)  # the data ends here; it starts --days before
SEED = 20261126
FAST_ASSETS = 3  # per account
P_FAST = 0.1  # per fast asset and successful poll
P_SLOW = 1 / (7 * 1440)  # per account and successful poll: one other asset changes
P_FAIL = 0.005
SCALE = 10**8  # amounts are generated as integers of 1e-8 units
MINUTE = 60_000
DAY = 86_400_000

# Each source as its fake exchange serves it: the endpoints of one poll, and the kinds
# and fiat currencies of its demo accounts' holdings.
NAMES = tuple(SOURCES)
ENDPOINTS = {name: FAKES[name].poll_paths for name in NAMES}
HELD = {name: [row for account in FAKES[name].demo_accounts()
               for row in FAKES[name].expected_holdings(account)] for name in NAMES}
# A made-up exchange valuation of a USD value in each currency: (times, divided by).
PER_USD = {"usd": (1, 1), "cny": (7, 1), "btc": (1, 90_000)}
CRYPTO = ("BTC", "ETH", "USDT", "USDC", "BNB", "XRP", "ADA", "SOL", "DOGE", "TRX", "DOT",
          "MATIC", "LTC", "SHIB", "AVAX", "LINK", "ATOM", "XLM", "ETC", "BCH", "FIL", "APT",
          "NEAR", "ARB", "OP", "UNI", "AAVE", "ALGO", "SAND", "MANA")
FIAT = ("TWD", "USD")
STOCKS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AVGO", "TSM", "JPM",
          "V", "WMT", "XOM", "UNH", "MA", "PG", "JNJ", "HD", "COST", "ORCL", "KO", "PEP",
          "BAC", "NFLX", "ADBE", "CRM", "AMD", "INTC", "CSCO", "QCOM")
# kind -> (share of failures, finished_at - started_at in ms, HTTP status or None, message)
FAILURES = {
    "timeout": (0.4, 10_000, None, "no answer within 10 s"),
    "server_error": (0.3, 400, 502, "HTTP 502 from {endpoint}: Bad Gateway"),
    "rate_limited": (0.2, 150, 429, "HTTP 429 from {endpoint}: too many requests"),
    "unreachable": (0.1, 5, None, "connection refused"),
}
FAILURE_BODIES = {  # status -> (body, content type)
    502: (b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
          b"Gateway</h1></center><hr><center>nginx</center></body></html>", "text/html"),
    429: (b'{"code":429,"message":"Too many requests, retry later"}', "application/json"),
}

POLL_COLUMNS = ("id", "account_id", "started_at", "finished_at", "status", "error_kind",
                "error_message", "attempt")
RESPONSE_COLUMNS = ("poll_id", "seq", "response_id")
RAW_RESPONSE_COLUMNS = ("id", "sha256", "endpoint", "http_status", "content_type", "body")
SET_LAST_OK = ("UPDATE accounts SET last_ok_at = (SELECT max(finished_at) FROM polls "
               "WHERE account_id = accounts.id AND status = 'ok')")
HOLDING_COLUMNS = ("series_id", "valid_from", "valid_to", "kind", "total", "available",
                   "locked", "details", "poll_id")


# ------------------------------------------------------------------ the simulated year


@dataclass
class Account:
    id: int
    name: str
    source: str
    offset_ms: int  # when in the minute this account is polled
    assets: list[tuple[str, str]]  # (asset, kind), series id = first_series + index
    first_series: int
    fast: list[int]  # indices into assets
    ok_responses: list[int]  # raw_responses id per endpoint (HTTP 200)


@dataclass
class Series:
    kind: str
    amount: int  # in 1e-8 units
    valid_from: int = -1  # ms; -1 = not opened yet
    poll_id: int = 0
    details: str = "{}"


@dataclass
class Chunk:
    polls: list[tuple[Any, ...]] = field(default_factory=list)
    responses: list[tuple[Any, ...]] = field(default_factory=list)
    holdings: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class Stats:
    polls: int = 0
    failed: int = 0
    changing: int = 0  # successful polls that changed at least one amount
    intervals: int = 0
    responses: int = 0


def amount_text(units: int) -> str:
    """Canonical decimal text of ``units`` 1e-8 (no exponent, no trailing zeros)."""
    whole, frac = divmod(units, SCALE)
    if not frac:
        return str(whole)
    return f"{whole}.{frac:08d}".rstrip("0")


class Year:
    """Deterministic (seeded) accounts, distinct answers and day-by-day rows."""

    def __init__(self, days: int, accounts: int, assets: int) -> None:
        self.days = days
        self.start_ms = int((END - timedelta(days=days)).timestamp() * 1000)
        self.end_ms = int(END.timestamp() * 1000)
        rng = random.Random(SEED)
        self.accounts: list[Account] = []
        # raw_responses rows: (id, sha256, endpoint, http_status, content_type, body)
        self.responses: list[tuple[int, bytes, str, int, str | None, bytes]] = []
        self._response_ids: dict[bytes, int] = {}
        self.series: list[Series] = []
        self.series_rows: list[tuple[int, int, str]] = []  # (id, account_id, asset)
        for index in range(accounts):
            source = NAMES[index % len(NAMES)]
            chosen = self._assets(source, assets)
            account = Account(
                id=index + 1, name=f"{source}-{index // len(NAMES) + 1}", source=source,
                offset_ms=rng.randrange(0, 50_000), assets=chosen,
                first_series=len(self.series) + 1,
                fast=rng.sample(range(len(chosen)), min(FAST_ASSETS, len(chosen))),
                ok_responses=[],
            )
            for asset, kind in chosen:
                self.series_rows.append((len(self.series) + 1, account.id, asset))
                units = rng.randrange(1, 1000) * SCALE if kind == "stock" else \
                    rng.randrange(1, 10**12)
                self.series.append(Series(kind, units))
            for endpoint in ENDPOINTS[source]:
                body = self._ok_body(account, endpoint)
                account.ok_responses.append(
                    self._response(endpoint, 200, "application/json", body))
            self.accounts.append(account)
        # (status, endpoint) -> raw_responses id; failures hit each source's first endpoint
        self.failure_responses = {
            (status, endpoints[0]): self._response(endpoints[0], status, content_type, body)
            for endpoints in ENDPOINTS.values()
            for status, (body, content_type) in FAILURE_BODIES.items()
        }
        self.rng = rng

    @staticmethod
    def _assets(source: str, assets: int) -> list[tuple[str, str]]:
        """The fiat currencies the source's fake holds, then stocks if it holds any, else
        crypto: ``assets`` of them."""
        held = HELD[source]
        fiat = sorted({(str(r["asset"]), "fiat") for r in held if r["kind"] == "fiat"})
        main = "stock" if any(r["kind"] == "stock" for r in held) else "crypto"
        symbols = STOCKS if main == "stock" else CRYPTO
        return (fiat + [(s, main) for s in symbols[:assets - len(fiat)]])[:assets]

    def _response(self, endpoint: str, status: int, content_type: str | None,
                  body: bytes) -> int:
        """The raw_responses id of this answer, hashed as ``writes._response_id`` does."""
        head = f"{endpoint}\n{status}\n{content_type or ''}\n"
        digest = hashlib.sha256(head.encode() + body).digest()
        found = self._response_ids.get(digest)
        if found is None:
            found = self._response_ids[digest] = len(self.responses) + 1
            self.responses.append((found, digest, endpoint, status, content_type, body))
        return found

    def _ok_body(self, account: Account, endpoint: str) -> bytes:
        rows = [
            {"currency": asset.lower(), "amount": amount_text(self.series[
                account.first_series - 1 + i].amount), "available": "0", "locked": "0"}
            for i, (asset, _) in enumerate(account.assets)
        ]
        return json.dumps({"endpoint": endpoint, "account": account.name, "data": rows},
                          separators=(",", ":")).encode()

    def chunks(self, chunk_days: int, stats: Stats) -> Iterator[Chunk]:
        """The rows of ``chunk_days`` days at a time, in poll order; open intervals last."""
        rng = self.rng
        rand = rng.random
        randrange = rng.randrange
        series = self.series
        failure_kinds = list(FAILURES)
        failure_weights = [FAILURES[k][0] for k in failure_kinds]
        poll_id = 0
        minutes = self.days * 1440
        per_chunk = chunk_days * 1440
        for first in range(0, minutes, per_chunk):
            chunk = Chunk()
            polls, responses, holdings = chunk.polls, chunk.responses, chunk.holdings
            for minute in range(first, min(first + per_chunk, minutes)):
                base = self.start_ms + minute * MINUTE
                for account in self.accounts:
                    poll_id += 1
                    started = base + account.offset_ms + randrange(0, 1000)
                    endpoints = ENDPOINTS[account.source]
                    if rand() < P_FAIL:
                        kind = rng.choices(failure_kinds, failure_weights)[0]
                        _, duration, status, message = FAILURES[kind]
                        finished = started + duration
                        polls.append((poll_id, account.id, started, finished, "failed", kind,
                                      message.format(endpoint=endpoints[0]), 1))
                        if status is not None:
                            responses.append((poll_id, 0, self.failure_responses[
                                (status, endpoints[0])]))
                        stats.failed += 1
                        continue
                    finished = started + 150 + randrange(0, 750)
                    polls.append((poll_id, account.id, started, finished, "ok", None, None, 1))
                    for seq, response_id in enumerate(account.ok_responses):
                        responses.append((poll_id, seq, response_id))
                    first_series = account.first_series
                    if series[first_series - 1].valid_from < 0:  # the first ok poll
                        for sid in range(first_series, first_series + len(account.assets)):
                            one = series[sid - 1]
                            one.valid_from, one.poll_id = finished, poll_id
                            one.details = self._details(account, one)
                        continue
                    changed = [i for i in account.fast if rand() < P_FAST]
                    if rand() < P_SLOW:
                        changed.append(randrange(0, len(account.assets)))
                    if not changed:
                        continue
                    stats.changing += 1
                    for index in set(changed):
                        sid = first_series + index
                        one = series[sid - 1]
                        holdings.append(self._interval(sid, one, finished))
                        step = randrange(1, 5) * SCALE if one.kind == "stock" else \
                            randrange(1, 10**7)
                        one.amount = max(1, one.amount + (step if rand() < 0.5 else -step))
                        one.valid_from, one.poll_id = finished, poll_id
                        one.details = self._details(account, one)
            stats.polls += len(polls)
            stats.responses += len(responses)
            stats.intervals += len(holdings)
            yield chunk
        last = Chunk()
        for sid, one in enumerate(series, start=1):
            if one.valid_from >= 0:
                last.holdings.append(self._interval(sid, one, None))
        stats.intervals += len(last.holdings)
        yield last

    def _details(self, account: Account, one: Series) -> str:
        # Only a source that values its holdings itself (Bitz) has details here.
        valued = SOURCES[account.source].valuation_details
        if not valued:
            return "{}"
        usd = one.amount // 1000
        details = {}
        for key, currency in sorted(valued.items()):
            times, divided_by = PER_USD.get(currency, (1, 1))
            details[key] = amount_text(usd * times // divided_by)
        return json.dumps(details)

    @staticmethod
    def _interval(sid: int, one: Series, valid_to: int | None) -> tuple[Any, ...]:
        total = amount_text(one.amount)
        if one.kind == "stock":
            available: str | None = None
            locked: str | None = None
        else:
            available, locked = total, "0"
        return (sid, one.valid_from, valid_to, one.kind, total, available, locked,
                one.details, one.poll_id)


# ------------------------------------------------------------------ loading


@dataclass
class Load:
    seconds: float = 0.0  # wall time of the whole load (generation included)
    generate_seconds: float = 0.0  # of which generating the rows in Python
    finish_seconds: float = 0.0  # last_ok_at, sequences, (VACUUM) ANALYZE, checkpoint
    rows: int = 0
    reported: int = 0  # polls at the last progress line
    stats: Stats = field(default_factory=Stats)


def _timed_chunks(year: Year, chunk_days: int, load: Load) -> Iterator[Chunk]:
    chunks = year.chunks(chunk_days, load.stats)
    while True:
        began = time.perf_counter()
        chunk = next(chunks, None)
        load.generate_seconds += time.perf_counter() - began
        if chunk is None:
            return
        load.rows += len(chunk.polls) + len(chunk.responses) + len(chunk.holdings)
        yield chunk


def _progress(label: str, load: Load, began: float, total_polls: int) -> None:
    done = load.stats.polls
    if done == load.reported:
        return
    load.reported = done
    print(f"  {label}: {done:,}/{total_polls:,} polls, {time.perf_counter() - began:.0f} s",
          file=sys.stderr, flush=True)


def _columns(names: tuple[str, ...]) -> str:
    return ", ".join(names)


def load_sqlite(engine: Engine, year: Year, chunk_days: int) -> Load:
    load = Load()
    began = time.perf_counter()
    raw = engine.raw_connection()
    try:
        con: Any = raw.driver_connection  # sqlite3.Connection, autocommit (isolation None)
        con.execute("PRAGMA synchronous=OFF")  # bulk load only; the daemon uses NORMAL
        con.execute("PRAGMA cache_size=-262144")
        con.execute("BEGIN")
        _small_tables(con.executemany, year, "?")
        con.execute("COMMIT")
        polls_sql = (f"INSERT INTO polls ({_columns(POLL_COLUMNS)}) VALUES "
                     f"({', '.join('?' * len(POLL_COLUMNS))})")
        responses_sql = (f"INSERT INTO poll_responses ({_columns(RESPONSE_COLUMNS)}) VALUES "
                         f"({', '.join('?' * len(RESPONSE_COLUMNS))})")
        holdings_sql = (f"INSERT INTO holdings ({_columns(HOLDING_COLUMNS)}) VALUES "
                        f"({', '.join('?' * len(HOLDING_COLUMNS))})")
        total = year.days * 1440 * len(year.accounts)
        for chunk in _timed_chunks(year, chunk_days, load):
            con.execute("BEGIN")
            con.executemany(polls_sql, chunk.polls)
            con.executemany(responses_sql, chunk.responses)
            con.executemany(holdings_sql, chunk.holdings)
            con.execute("COMMIT")
            _progress("sqlite", load, began, total)
        finishing = time.perf_counter()
        con.execute("BEGIN")
        con.execute(SET_LAST_OK)
        con.execute("COMMIT")
        con.execute("ANALYZE")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA synchronous=NORMAL")
        load.finish_seconds = time.perf_counter() - finishing
    finally:
        raw.close()
    engine.dispose()
    load.seconds = time.perf_counter() - began
    return load


def _small_tables(executemany: Callable[[str, Any], Any], year: Year, mark: str) -> None:
    executemany(f"INSERT INTO accounts (id, name, source) VALUES ({mark}, {mark}, {mark})",
                [(a.id, a.name, a.source) for a in year.accounts])
    executemany(f"INSERT INTO raw_responses ({_columns(RAW_RESPONSE_COLUMNS)}) "
                f"VALUES ({', '.join([mark] * len(RAW_RESPONSE_COLUMNS))})", year.responses)
    executemany(f"INSERT INTO holding_series (id, account_id, asset) "
                f"VALUES ({mark}, {mark}, {mark})", year.series_rows)


class PgTime:
    """Epoch milliseconds as timestamptz input text, fast (one date string per day)."""

    def __init__(self) -> None:
        self.days: dict[int, str] = {}

    def __call__(self, ms: int | None) -> str:
        if ms is None:
            return "\\N"
        day, rest = divmod(ms, DAY)
        prefix = self.days.get(day)
        if prefix is None:
            prefix = self.days[day] = (datetime(1970, 1, 1) + timedelta(days=day)) \
                .strftime("%Y-%m-%d ")
        hours, rest = divmod(rest, 3_600_000)
        minutes, rest = divmod(rest, MINUTE)
        seconds, millis = divmod(rest, 1000)
        return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}+00"


def _copy_text(value: Any) -> str:
    # Every generated text is free of tabs, newlines and backslashes.
    return "\\N" if value is None else str(value)


def load_postgresql(engine: Engine, year: Year, chunk_days: int) -> Load:
    load = Load()
    began = time.perf_counter()
    ts = PgTime()
    raw = engine.raw_connection()
    try:
        con: Any = raw.driver_connection  # psycopg.Connection
        with con.cursor() as cur:
            _small_tables(cur.executemany, year, "%s")
        con.commit()
        total = year.days * 1440 * len(year.accounts)
        for chunk in _timed_chunks(year, chunk_days, load):
            formatting = time.perf_counter()
            polls = "".join(
                f"{p[0]}\t{p[1]}\t{ts(p[2])}\t{ts(p[3])}\t{p[4]}\t{_copy_text(p[5])}\t"
                f"{_copy_text(p[6])}\t{p[7]}\n" for p in chunk.polls)
            responses = "".join(f"{r[0]}\t{r[1]}\t{r[2]}\n" for r in chunk.responses)
            holdings = "".join(
                f"{h[0]}\t{ts(h[1])}\t{ts(h[2])}\t{h[3]}\t{h[4]}\t{_copy_text(h[5])}\t"
                f"{_copy_text(h[6])}\t{h[7]}\t{h[8]}\n" for h in chunk.holdings)
            load.generate_seconds += time.perf_counter() - formatting
            with con.cursor() as cur:
                for table, columns, data in (("polls", POLL_COLUMNS, polls),
                                             ("poll_responses", RESPONSE_COLUMNS, responses),
                                             ("holdings", HOLDING_COLUMNS, holdings)):
                    if data:
                        with cur.copy(f"COPY {table} ({_columns(columns)}) FROM STDIN") as cp:
                            cp.write(data)
            con.commit()
            _progress("postgresql", load, began, total)
        finishing = time.perf_counter()
        with con.cursor() as cur:
            cur.execute(SET_LAST_OK)
            for table in ("accounts", "polls", "raw_responses", "holding_series"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))")
        con.commit()
        con.autocommit = True
        con.execute("VACUUM ANALYZE")
        con.autocommit = False
        load.finish_seconds = time.perf_counter() - finishing
    finally:
        raw.close()
    engine.dispose()
    load.seconds = time.perf_counter() - began
    return load


# ------------------------------------------------------------------ measuring


@dataclass
class Timing:
    median_ms: float
    max_ms: float
    rows: int  # rows returned by the last run (report: lines + history points)


def measure(runs: int, action: Callable[[random.Random], int]) -> Timing:
    rng = random.Random(SEED + 1)
    action(rng)  # warm up
    times = []
    rows = 0
    for _ in range(runs):
        began = time.perf_counter()
        rows = action(rng)
        times.append((time.perf_counter() - began) * 1000)
    return Timing(statistics.median(times), max(times), rows)


def renderers() -> dict[str, Callable[[Any], Any]]:
    found = {}
    for module, name in (("html_report", "render_html"), ("csv_report", "render_csv"),
                         ("text_report", "render_text")):
        try:
            found[name] = getattr(importlib.import_module(f"aggregator.reports.{module}"), name)
        except (ImportError, AttributeError) as exc:
            print(f"  {name} not available ({type(exc).__name__}: {exc}); "
                  "the report is timed without it", file=sys.stderr)
    return found


def measure_reads(engine: Engine, year: Year, runs: int) -> dict[str, Timing]:
    start = END - timedelta(days=year.days)
    span_ms = year.end_ms - year.start_ms
    account = year.accounts[0]
    asset = account.assets[account.fast[0]][0]
    results: dict[str, Timing] = {}

    def holdings_at(rng: random.Random) -> int:
        at = start + timedelta(milliseconds=rng.randrange(0, span_ms))
        return len(queries.holdings_at(engine, at))

    def history(_rng: random.Random) -> int:
        return len(queries.history(engine, account.name, asset=asset,
                                   since=END - timedelta(days=30), until=END))

    first_day = (start + timedelta(days=min(30, year.days - 1))).date()
    last_day = (END - timedelta(days=1)).date()
    report_days = (last_day - first_day).days + 1
    render = renderers()
    generated_at = END + timedelta(hours=1)
    built: list[Any] = []

    def build(rng: random.Random) -> int:
        day = first_day + timedelta(days=rng.randrange(0, report_days))
        report = build_report(engine, day, ZoneInfo("UTC"), now=generated_at)
        built.append(report)
        return len(report.lines) + len(report.history)

    results["holdings --at (random instant)"] = measure(runs, holdings_at)
    results[f"history {account.name} {asset}, last 30 days"] = measure(runs, history)
    results["report: build_report (random day)"] = measure(runs, build)
    for name, function in render.items():
        reports = iter(built * (runs + 1))
        results[f"report: {name}"] = measure(
            runs, lambda _rng, f=function, r=reports: len(f(next(r))))  # type: ignore[misc]
    if render:
        total = results["report: build_report (random day)"].median_ms + sum(
            results[f"report: {name}"].median_ms for name in render)
        results["report: build + render all (sum of medians)"] = Timing(total, total, 0)
    return results


def sqlite_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def sqlite_tables(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        try:
            rows = conn.execute(text(
                "SELECT coalesce(m.tbl_name, s.name), sum(s.pgsize) FROM dbstat s "
                "LEFT JOIN sqlite_master m ON m.name = s.name GROUP BY 1")).all()
        except Exception:  # dbstat is a compile-time option of SQLite
            return {}
    return {str(name): int(size) for name, size in rows}


def pg_tables(engine: Engine) -> tuple[int, dict[str, int]]:
    with engine.connect() as conn:
        size = int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
        rows = conn.execute(text(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'")).all()
    return size, {str(name): int(total) for name, total in rows}


# ------------------------------------------------------------------ running


@dataclass
class Result:
    load: Load
    size: int
    tables: dict[str, int]
    reads: dict[str, Timing]


def run_sqlite(args: argparse.Namespace, year: Year) -> Result:
    folder = None
    if args.sqlite_path:
        path = Path(args.sqlite_path)
        for old in path.parent.glob(path.name + "*"):
            old.unlink()
    else:
        folder = Path(tempfile.mkdtemp(prefix="history-year-"))
        path = folder / "holdings.db"
    print(f"sqlite: {path}", file=sys.stderr)
    url = f"sqlite:///{path}"
    engine = database.open_database(url)
    database.upgrade(engine)
    load = load_sqlite(engine, year, args.chunk_days)
    engine = database.open_database(url)
    size = sqlite_size(path)
    tables = sqlite_tables(engine)
    reads = measure_reads(engine, year, args.runs)
    engine.dispose()
    if not args.keep:
        for old in path.parent.glob(path.name + "*"):
            old.unlink()
        if folder is not None:
            folder.rmdir()
    return Result(load, size, tables, reads)


def run_postgresql(args: argparse.Namespace, year: Year) -> Result:
    admin_url = database.normalize_url(args.pg_url)
    name = f"aggregator_year_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name)
    print(f"postgresql: {url.render_as_string(hide_password=True)}", file=sys.stderr)
    try:
        engine = database.open_database(url.render_as_string(hide_password=False))
        database.upgrade(engine)
        load = load_postgresql(engine, year, args.chunk_days)
        engine = database.open_database(url.render_as_string(hide_password=False))
        size, tables = pg_tables(engine)
        reads = measure_reads(engine, year, args.runs)
        engine.dispose()
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return Result(load, size, tables, reads)


def mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def print_table(results: dict[str, Result], args: argparse.Namespace) -> None:
    names = list(results)
    first = results[names[0]]
    stats = first.load.stats
    ok = stats.polls - stats.failed
    print(f"\n{args.days} days, {args.accounts} accounts x {args.assets} assets: "
          f"{stats.polls:,} polls, {stats.failed / stats.polls:.2%} failed, "
          f"{stats.changing / max(ok, 1):.1%} of successful polls change an amount, "
          f"{stats.intervals:,} holding intervals, {stats.responses:,} poll responses, "
          f"{len(Year(1, args.accounts, args.assets).responses)} distinct raw responses")
    header = ["", *names]
    rows: list[list[str]] = [
        ["database size", *(mb(results[n].size) for n in names)],
        ["database bytes per poll", *(f"{results[n].size / stats.polls:,.0f}" for n in names)],
        ["write time (generation included)", *(f"{results[n].load.seconds:,.0f} s"
                                               for n in names)],
        ["  of which generating/formatting rows in Python",
         *(f"{results[n].load.generate_seconds:,.0f} s" for n in names)],
        ["  of which ANALYZE/VACUUM/checkpoint",
         *(f"{results[n].load.finish_seconds:,.0f} s" for n in names)],
        ["rows written per second (all tables)",
         *(f"{results[n].load.rows / results[n].load.seconds:,.0f}" for n in names)],
        ["polls written per second",
         *(f"{stats.polls / results[n].load.seconds:,.0f}" for n in names)],
    ]
    for key in first.reads:
        rows.append([f"{key}, ms median (max)", *(
            f"{results[n].reads[key].median_ms:,.1f} ({results[n].reads[key].max_ms:,.1f})"
            if key in results[n].reads else "-" for n in names)])
    rows.append(["rows returned: holdings --at / history / report lines+points", *(
        " / ".join(str(t.rows) for t in list(results[n].reads.values())[:3]) for n in names)])
    tables = sorted({t for n in names for t in results[n].tables})
    for table in tables:
        rows.append([f"  table {table} (with indexes)",
                     *(mb(results[n].tables[table]) if table in results[n].tables else "-"
                       for n in names)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--assets", type=int, default=30)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per read")
    parser.add_argument("--chunk-days", type=int, default=5,
                        help="days of rows per transaction / COPY")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--pg-url", default=PG_ADMIN,
                        help="admin URL used to CREATE and DROP a throwaway database")
    parser.add_argument("--sqlite-path", help="default: a temporary folder")
    args = parser.parse_args()
    if args.days < 1 or args.accounts < 1 or not 1 <= args.assets <= 30:
        parser.error("--days and --accounts must be >= 1, --assets 1..30")
    began = time.perf_counter()
    results: dict[str, Result] = {}
    if args.database in ("sqlite", "both"):
        results["SQLite"] = run_sqlite(args, Year(args.days, args.accounts, args.assets))
    if args.database in ("postgresql", "both"):
        results["PostgreSQL"] = run_postgresql(
            args, Year(args.days, args.accounts, args.assets))
    print_table(results, args)
    print(f"\ntotal run time {time.perf_counter() - began:,.0f} s; measured {date.today()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
