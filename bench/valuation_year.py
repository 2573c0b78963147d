"""Values and net worth over a year of history and a year of 5-minute prices.

    python bench/valuation_year.py [--days 365] [--accounts 20] [--assets 30]
                                   [--database sqlite|postgresql|both] [--runs 20]
                                   [--long-runs 3] [--profile] [--keep] [--reuse]
                                   [--pg-url URL] [--pg-name NAME] [--sqlite-path PATH]

The holdings are ``bench/history_year.py``'s year (its ``Year`` generator and loaders:
20 accounts x 30 assets, 1-minute polls over ``--days`` days). On top of it, a year of
prices for every asset they hold, generated straight into ``price_fetches`` and
``price_observations`` the way ``aggregator.storage.price_writes.record_fetch`` stores
what the fetchers of ``aggregator/prices/`` observe, from two ``[[prices]]`` sources:

- ``bitopro``, live: one ``/tickers`` fetch every 5 minutes (``kind = live``) giving 30
  pairs, the 30 crypto assets of the history: 25 in TWD (USDT/TWD among them) and 5 in
  USDT only (valued through the USDT pivot), each observed when fetched; daily: one
  fetch a few minutes after midnight UTC with yesterday's close of each pair, observed
  at the end of the day (a close is the last live price of the day).
- ``yahoo``, live: one fetch of ``TWD=X`` (USD/TWD) every 5 minutes, observed at its
  market time (up to a minute before the fetch); FX does not trade on Saturdays and
  Sundays, so there the answer repeats Friday's last point and stores nothing new (the
  fetch row is kept), and USD falls back on Friday's close. Daily: one fetch after
  midnight with the weekday closes of the 29 stocks PiTrade holds, in USD, and of
  USD/TWD (stocks valued through the USD pivot: a daily close times a live FX rate).

Prices are integer random walks (up to +-0.2 % per 5 minutes, +-2 % per trading day for
stocks) written as canonical decimal text with about 7 significant digits, so every stored
price is exact. About 0.5 % of the fetches fail (timeout, server_error, rate_limited: no
observations, the error kind and message kept). Not generated: the raw answers of the
fetches (``price_fetch_responses`` and their ``raw_responses``, which the real writer
keeps), so the sizes printed count the price log and observations only. Bulk-loaded like
the history: SQLite ``executemany`` in transactions of ``--chunk-days`` days, PostgreSQL
``COPY``, then ``ANALYZE`` (``VACUUM ANALYZE``).

The value rule's settings: ``ValuationSettings(currency="TWD", sources=("bitopro",
"yahoo"))`` with the default pivots (USDT, USD) and maximum ages (1 h live, 4 days
daily). Measured afterwards through the project's own functions, warm cache (one run
first, not counted), the median (max) of ``--runs`` runs, ``--long-runs`` for the
year-long ones, with the number of SQL statements each run sends:

- ``value --at``: ``valuation.value.value_at(engine, settings, at)`` at a new random
  instant each run;
- ``networth`` for the last 365 days (or ``--days``): ``valuation.value.networth``;
- storing them: ``valuation.daily.store_days`` for the same days (once), then the same
  net worth read back from the ``networth_daily`` view (one SELECT, values as Decimal);
- the nightly report of the last day (the one with a year behind it, so its net-worth
  chart covers 365 days): ``reports.build.build_report`` valued with
  ``reports.worth.with_worth`` when that exists (else unvalued, and said so), then each
  renderer.

``--profile`` runs each year-long measurement once more under cProfile and prints where
the time goes. ``--reuse`` with ``--sqlite-path``/``--pg-name`` and ``--keep`` measures
a database a previous run kept instead of building it again.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import inspect
import io
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import history_year as hy
from sqlalchemy import Date, Engine, bindparam, create_engine, event, text
from sqlalchemy.engine import make_url

from aggregator.reports.build import build_report
from aggregator.storage import database
from aggregator.valuation.daily import store_days
from aggregator.valuation.rule import ValuationSettings, exact_total
from aggregator.valuation.value import networth, value_at

CURRENCY = "TWD"
SETTINGS = ValuationSettings(currency=CURRENCY, sources=("bitopro", "yahoo"))
SEED = hy.SEED + 7
TICK = 5 * hy.MINUTE
P_FETCH_FAIL = 0.005
FETCH_FAILURES = (  # kind, message, share
    ("timeout", "no answer within 10s: ReadTimeout", 0.5),
    ("server_error", "HTTP 502 from {path}: Bad Gateway", 0.3),
    ("rate_limited", "HTTP 429 from {path}: too many requests", 0.2),
)
PATHS = {("bitopro", "live"): "/tickers", ("bitopro", "daily"): "/trading-history/btc_twd",
         ("yahoo", "live"): "/v8/finance/chart/TWD=X",
         ("yahoo", "daily"): "/v8/finance/chart/AAPL"}
# Rough prices in USD: where each walk starts (crypto in history_year.CRYPTO's order).
CRYPTO_USD = {
    "BTC": "94000", "ETH": "3300", "USDT": "1", "USDC": "1", "BNB": "690", "XRP": "2.2",
    "ADA": "0.9", "SOL": "190", "DOGE": "0.32", "TRX": "0.25", "DOT": "6.8",
    "MATIC": "0.45", "LTC": "100", "SHIB": "0.000021", "AVAX": "36", "LINK": "21",
    "ATOM": "6.5", "XLM": "0.42", "ETC": "26", "BCH": "430", "FIL": "5", "APT": "9",
    "NEAR": "5", "ARB": "0.75", "OP": "1.8", "UNI": "13", "AAVE": "320", "ALGO": "0.38",
    "SAND": "0.55", "MANA": "0.5",
}
USDT_ONLY = ("UNI", "AAVE", "ALGO", "SAND", "MANA")  # listed against USDT only
STOCK_USD = {
    "AAPL": "250", "MSFT": "420", "NVDA": "135", "AMZN": "220", "GOOGL": "190",
    "META": "590", "TSLA": "400", "AVGO": "230", "TSM": "200", "JPM": "240", "V": "315",
    "WMT": "90", "XOM": "107", "UNH": "505", "MA": "525", "PG": "168", "JNJ": "145",
    "HD": "390", "COST": "915", "ORCL": "167", "KO": "62", "PEP": "152", "BAC": "44",
    "NFLX": "890", "ADBE": "445", "CRM": "335", "AMD": "120", "INTC": "20", "CSCO": "59",
    "QCOM": "154",
}
USD_TWD = "32.8"
FETCH_COLUMNS = ("id", "source", "kind", "started_at", "finished_at", "status",
                 "error_kind", "error_message", "attempt")
OBSERVATION_COLUMNS = ("id", "source", "base", "quote", "kind", "observed_at", "price",
                       "fetch_id")


# ------------------------------------------------------------------ the prices


@dataclass
class Walk:
    """One pair's price as an integer number of 10**-scale units."""

    source: str
    base: str
    quote: str
    units: int
    scale: int

    @classmethod
    def start(cls, source: str, base: str, quote: str, price: Decimal) -> Walk:
        # About 7 significant digits, as exchanges quote them.
        scale = max(0, 7 - price.adjusted() - 1)
        return cls(source, base, quote, int(price.scaleb(scale)), scale)

    def text(self) -> str:
        whole, frac = divmod(self.units, 10**self.scale)
        if not frac:
            return str(whole)
        return f"{whole}.{frac:0{self.scale}d}".rstrip("0")

    def step(self, rng: random.Random, per_ten_thousand: int) -> None:
        move = self.units * rng.randrange(-per_ten_thousand, per_ten_thousand + 1) // 10_000
        self.units = max(1, self.units + move)


@dataclass
class PriceChunk:
    fetches: list[tuple[Any, ...]] = field(default_factory=list)
    observations: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class PriceStats:
    fetches: int = 0
    failed: int = 0
    live: int = 0
    daily: int = 0


class Prices:
    """Seeded price walks for the assets ``year`` holds, fetch by fetch in time order."""

    def __init__(self, year: hy.Year) -> None:
        self.year = year
        held = {asset for account in year.accounts for asset, _ in account.assets}
        rate = Decimal(USD_TWD)
        self.tickers = [  # bitopro's live pairs
            Walk.start("bitopro", asset, "USDT", Decimal(usd)) if asset in USDT_ONLY
            else Walk.start("bitopro", asset, CURRENCY, Decimal(usd) * rate)
            for asset, usd in CRYPTO_USD.items() if asset in held
        ]
        self.fx = Walk.start("yahoo", "USD", CURRENCY, rate)
        self.stocks = [Walk.start("yahoo", asset, "USD", Decimal(usd))
                       for asset, usd in STOCK_USD.items() if asset in held]
        self.unpriced = sorted(held - {w.base for w in self.tickers + self.stocks}
                               - {"USD", CURRENCY})
        self.rng = random.Random(SEED)
        self.stats = PriceStats()
        self._fetch_id = 0
        self._observation_id = 0

    def _fetch(self, chunk: PriceChunk, source: str, kind: str, started: int,
               duration: int) -> int | None:
        """A fetch row; its id, or None when it failed (then it observed nothing)."""
        self._fetch_id += 1
        self.stats.fetches += 1
        if self.rng.random() >= P_FETCH_FAIL:
            chunk.fetches.append((self._fetch_id, source, kind, started, started + duration,
                                  "ok", None, None, 1))
            return self._fetch_id
        self.stats.failed += 1
        error_kind, message, _ = self.rng.choices(
            FETCH_FAILURES, [f[2] for f in FETCH_FAILURES])[0]
        if error_kind == "timeout":
            duration = 10_000
        chunk.fetches.append((self._fetch_id, source, kind, started, started + duration,
                              "failed", error_kind,
                              message.format(path=PATHS[source, kind]), 1))
        return None

    def _observe(self, chunk: PriceChunk, walk: Walk, kind: str, at: int,
                 fetch_id: int) -> None:
        self._observation_id += 1
        chunk.observations.append((self._observation_id, walk.source, walk.base, walk.quote,
                                   kind, at, walk.text(), fetch_id))
        if kind == "live":
            self.stats.live += 1
        else:
            self.stats.daily += 1

    def chunks(self, chunk_days: int) -> Iterator[PriceChunk]:
        rng = self.rng
        year = self.year
        ticks_per_day = hy.DAY // TICK
        prev_weekday = False
        for first in range(0, year.days, chunk_days):
            chunk = PriceChunk()
            for day in range(first, min(first + chunk_days, year.days)):
                day_ms = year.start_ms + day * hy.DAY
                weekday = datetime.fromtimestamp(day_ms / 1000, UTC).weekday() < 5
                if day:  # yesterday's closes, fetched a few minutes after midnight
                    self._closes(chunk, day_ms, prev_weekday)
                for tick in range(ticks_per_day):
                    at = day_ms + tick * TICK
                    started = at + rng.randrange(0, 2000)
                    fetch_id = self._fetch(chunk, "bitopro", "live", started,
                                           80 + rng.randrange(0, 300))
                    for walk in self.tickers:
                        walk.step(rng, 20)
                        if fetch_id is not None:
                            self._observe(chunk, walk, "live", chunk.fetches[-1][4], fetch_id)
                    started = at + 2000 + rng.randrange(0, 2000)
                    fetch_id = self._fetch(chunk, "yahoo", "live", started,
                                           150 + rng.randrange(0, 450))
                    if weekday:
                        self.fx.step(rng, 5)
                        if fetch_id is not None:
                            market_time = (started - rng.randrange(0, 60_000)) // 1000 * 1000
                            self._observe(chunk, self.fx, "live", market_time, fetch_id)
                prev_weekday = weekday
            yield chunk
        final = PriceChunk()
        self._closes(final, year.end_ms, prev_weekday)
        yield final

    def _closes(self, chunk: PriceChunk, midnight: int, weekday: bool) -> None:
        """The closes of the day ending at ``midnight``, observed then."""
        rng = self.rng
        fetch_id = self._fetch(chunk, "bitopro", "daily", midnight + 600_000 +
                               rng.randrange(0, 5000), 200 + rng.randrange(0, 800))
        if fetch_id is not None:
            for walk in self.tickers:
                self._observe(chunk, walk, "daily", midnight, fetch_id)
        fetch_id = self._fetch(chunk, "yahoo", "daily", midnight + 610_000 +
                               rng.randrange(0, 5000), 300 + rng.randrange(0, 1200))
        if weekday:
            for walk in self.stocks:
                walk.step(rng, 200)
            # A failed backfill leaves the close out; its walk goes on.
            if fetch_id is not None:
                for walk in [*self.stocks, self.fx]:
                    self._observe(chunk, walk, "daily", midnight, fetch_id)


# ------------------------------------------------------------------ loading


@dataclass
class PriceLoad:
    seconds: float = 0.0
    generate_seconds: float = 0.0
    rows: int = 0
    stats: PriceStats = field(default_factory=PriceStats)


def _timed(prices: Prices, chunk_days: int, load: PriceLoad) -> Iterator[PriceChunk]:
    chunks = prices.chunks(chunk_days)
    while True:
        began = time.perf_counter()
        chunk = next(chunks, None)
        load.generate_seconds += time.perf_counter() - began
        if chunk is None:
            load.stats = prices.stats
            return
        load.rows += len(chunk.fetches) + len(chunk.observations)
        yield chunk


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return (f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})")


def load_prices_sqlite(engine: Engine, prices: Prices, chunk_days: int) -> PriceLoad:
    load = PriceLoad()
    began = time.perf_counter()
    raw = engine.raw_connection()
    try:
        con: Any = raw.driver_connection  # sqlite3.Connection, autocommit (isolation None)
        con.execute("PRAGMA synchronous=OFF")  # bulk load only, as history_year does
        con.execute("PRAGMA cache_size=-262144")
        for chunk in _timed(prices, chunk_days, load):
            con.execute("BEGIN")
            con.executemany(_insert("price_fetches", FETCH_COLUMNS), chunk.fetches)
            con.executemany(_insert("price_observations", OBSERVATION_COLUMNS),
                            chunk.observations)
            con.execute("COMMIT")
        con.execute("ANALYZE")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA synchronous=NORMAL")
    finally:
        raw.close()
    engine.dispose()
    load.seconds = time.perf_counter() - began
    return load


def load_prices_postgresql(engine: Engine, prices: Prices, chunk_days: int) -> PriceLoad:
    load = PriceLoad()
    began = time.perf_counter()
    ts = hy.PgTime()
    raw = engine.raw_connection()
    try:
        con: Any = raw.driver_connection  # psycopg.Connection
        for chunk in _timed(prices, chunk_days, load):
            formatting = time.perf_counter()
            fetches = "".join(
                f"{f[0]}\t{f[1]}\t{f[2]}\t{ts(f[3])}\t{ts(f[4])}\t{f[5]}\t"
                f"{hy._copy_text(f[6])}\t{hy._copy_text(f[7])}\t{f[8]}\n" for f in chunk.fetches)
            observations = "".join(
                f"{o[0]}\t{o[1]}\t{o[2]}\t{o[3]}\t{o[4]}\t{ts(o[5])}\t{o[6]}\t{o[7]}\n"
                for o in chunk.observations)
            load.generate_seconds += time.perf_counter() - formatting
            with con.cursor() as cur:
                for table, columns, data in (
                        ("price_fetches", FETCH_COLUMNS, fetches),
                        ("price_observations", OBSERVATION_COLUMNS, observations)):
                    if data:
                        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
                            cp.write(data)
            con.commit()
        with con.cursor() as cur:
            for table in ("price_fetches", "price_observations"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))")
        con.commit()
        con.autocommit = True
        con.execute("VACUUM ANALYZE price_fetches")
        con.execute("VACUUM ANALYZE price_observations")
        con.autocommit = False
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
    rows: int  # what the last run returned (rows, days, lines)
    runs: int
    statements: int  # SQL statements the last run sent


class StatementCount:
    """Counts the statements an engine sends, to say how chatty each read is."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1


def measure(runs: int, counter: StatementCount, action: Callable[[random.Random], int]
            ) -> Timing:
    rng = random.Random(SEED + 1)
    action(rng)  # warm up
    times = []
    rows = statements = 0
    for _ in range(runs):
        before = counter.count
        began = time.perf_counter()
        rows = action(rng)
        times.append((time.perf_counter() - began) * 1000)
        statements = counter.count - before
    return Timing(statistics.median(times), max(times), rows, runs, statements)


def once(counter: StatementCount, action: Callable[[], int]) -> Timing:
    before = counter.count
    began = time.perf_counter()
    rows = action()
    elapsed = (time.perf_counter() - began) * 1000
    return Timing(elapsed, elapsed, rows, 1, counter.count - before)


def valuer() -> tuple[Callable[..., Any] | None, str]:
    """How to value a report, as far as the tree has it: (function, how it is called)."""
    if "valuation" in inspect.signature(build_report).parameters:
        return None, "build_report(..., valuation=settings)"
    try:
        worth = importlib.import_module("aggregator.reports.worth")
    except ImportError:
        return None, "unvalued: aggregator.reports has no valuation yet"
    with_worth = getattr(worth, "with_worth", None)
    if with_worth is None:
        return None, "unvalued: aggregator.reports.worth has no with_worth"
    return with_worth, "build_report + reports.worth.with_worth"


def profile(label: str, action: Callable[[], Any], top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    action()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return f"\n===== profile: {label}\n{out.getvalue()}"


@dataclass
class Reads:
    timings: dict[str, Timing]
    report_how: str
    checks: list[str]
    profiles: list[str]


def measure_reads(engine: Engine, year: hy.Year, args: argparse.Namespace) -> Reads:
    counter = StatementCount(engine)
    start = hy.END - timedelta(days=year.days)
    span_ms = year.end_ms - year.start_ms
    last = (hy.END - timedelta(days=1)).date()
    first = max(start.date(), last - timedelta(days=364))
    days = (last - first).days + 1
    timings: dict[str, Timing] = {}
    checks: list[str] = []
    profiles: list[str] = []

    def value(rng: random.Random) -> int:
        at = start + timedelta(milliseconds=rng.randrange(0, span_ms))
        return len(value_at(engine, SETTINGS, at))

    computed: list[Any] = []

    def worth(_rng: random.Random) -> int:
        computed[:] = networth(engine, SETTINGS, first, last)
        return len(computed)

    print("  value --at", file=sys.stderr, flush=True)
    timings["value --at a random instant"] = measure(args.runs, counter, value)
    print(f"  networth, {days} days", file=sys.stderr, flush=True)
    timings[f"networth, {days} days (computed)"] = measure(args.long_runs, counter, worth)
    unpriced = sum(d.unpriced for d in computed)
    checks.append(f"networth: {len(computed)} days, {computed[-1].holdings} holdings on the "
                  f"last, {unpriced} unpriced holding-days, last {computed[-1].value} "
                  f"{CURRENCY}")

    print(f"  store_days, {days} days", file=sys.stderr, flush=True)
    all_days = [first + timedelta(days=n) for n in range(days)]
    timings[f"store_days, {days} days (once)"] = once(
        counter, lambda: store_days(engine, SETTINGS, all_days))
    read_sql = text("SELECT day, value, holdings, unpriced FROM networth_daily "
                    "WHERE currency = :currency AND day >= :first AND day <= :last "
                    "ORDER BY day").bindparams(bindparam("first", type_=Date),
                                               bindparam("last", type_=Date))
    stored: list[tuple[date, Decimal, int, int]] = []

    def read_back(_rng: random.Random) -> int:
        with engine.connect() as conn:
            stored[:] = [(r.day if isinstance(r.day, date) else date.fromisoformat(r.day),
                          Decimal(r.value), int(r.holdings), int(r.unpriced))
                         for r in conn.execute(read_sql, {"currency": CURRENCY,
                                                          "first": first, "last": last})]
        return len(stored)

    timings[f"networth, {days} days (read from networth_daily)"] = measure(
        args.runs, counter, read_back)
    same = stored == [(d.day, d.value, d.holdings, d.unpriced) for d in computed]
    checks.append(f"networth_daily {'matches' if same else 'DIFFERS FROM'} networth "
                  "day for day")

    with_worth, how = valuer()
    generated_at = hy.END + timedelta(hours=1)
    built: list[Any] = []

    def report(_rng: random.Random) -> int:
        one = build_report(engine, last, ZoneInfo("UTC"), now=generated_at)
        if with_worth is not None:
            one = with_worth(engine, one, SETTINGS)
        built[:] = [one]
        return len(one.lines)

    print(f"  report of {last} ({how})", file=sys.stderr, flush=True)
    name = f"nightly report of {last}: build"
    timings[name] = measure(args.long_runs, counter, report)
    found = getattr(built[0], "worth", None)
    if found is not None:
        checks.append(f"report: net worth {found.previous.value} -> "
                      f"{exact_total([r.value for r in found.rows])} {found.currency}, "
                      f"chart of {len(found.history)} days")
    rendered = 0.0
    render = hy.renderers()
    for render_name, function in render.items():
        timing = measure(args.runs, counter, lambda _rng, f=function: len(f(built[0])))
        timings[f"  ... {render_name}"] = timing
        rendered += timing.median_ms
    total = timings[name].median_ms + rendered
    timings["  ... build + render all (sum of medians)"] = Timing(total, total, 0, 0, 0)

    if args.profile:
        rng = random.Random(SEED + 2)
        profiles.append(profile("value --at", lambda: value(rng), args.profile_top))
        profiles.append(profile(f"networth, {days} days", lambda: worth(rng),
                                args.profile_top))
        profiles.append(profile("nightly report", lambda: report(rng), args.profile_top))
    return Reads(timings, how, checks, profiles)


# ------------------------------------------------------------------ running


@dataclass
class Result:
    history_seconds: float
    prices: PriceLoad | None
    size: int
    tables: dict[str, int]
    reads: Reads


PRICE_TABLES = ("price_fetches", "price_observations", "valuations", "networth")


def run_sqlite(args: argparse.Namespace) -> Result:
    folder = None
    if args.sqlite_path:
        path = Path(args.sqlite_path)
    else:
        folder = Path(tempfile.mkdtemp(prefix="valuation-year-"))
        path = folder / "holdings.db"
    url = f"sqlite:///{path}"
    history_seconds, prices = 0.0, None
    if not (args.reuse and path.exists()):
        for old in path.parent.glob(path.name + "*"):
            old.unlink()
        print(f"sqlite: {path}", file=sys.stderr)
        year = make_year(args)
        engine = database.open_database(url)
        database.upgrade(engine)
        history_seconds = hy.load_sqlite(engine, year, args.chunk_days).seconds
        prices = load_prices_sqlite(database.open_database(url), Prices(year),
                                    args.chunk_days)
    else:
        print(f"sqlite: reusing {path}", file=sys.stderr)
    engine = database.open_database(url)
    reads = measure_reads(engine, make_year(args), args)
    size, tables = hy.sqlite_size(path), hy.sqlite_tables(engine)
    engine.dispose()
    if not args.keep:
        for old in path.parent.glob(path.name + "*"):
            old.unlink()
        if folder is not None:
            folder.rmdir()
    return Result(history_seconds, prices, size, tables, reads)


def run_postgresql(args: argparse.Namespace) -> Result:
    admin_url = database.normalize_url(args.pg_url)
    name = args.pg_name or f"aggregator_valuation_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": name}).first() is not None
        if exists and not args.reuse:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        if not (exists and args.reuse):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    print(f"postgresql: {'reusing ' if exists and args.reuse else ''}"
          f"{make_url(url).render_as_string(hide_password=True)}", file=sys.stderr)
    history_seconds, prices = 0.0, None
    try:
        if not (exists and args.reuse):
            year = make_year(args)
            engine = database.open_database(url)
            database.upgrade(engine)
            history_seconds = hy.load_postgresql(engine, year, args.chunk_days).seconds
            prices = load_prices_postgresql(database.open_database(url), Prices(year),
                                            args.chunk_days)
        engine = database.open_database(url)
        reads = measure_reads(engine, make_year(args), args)
        size, tables = hy.pg_tables(engine)
        engine.dispose()
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return Result(history_seconds, prices, size, tables, reads)


def make_year(args: argparse.Namespace) -> hy.Year:
    return hy.Year(args.days, args.accounts, args.assets)


def print_table(results: dict[str, Result], args: argparse.Namespace) -> None:
    names = list(results)
    prices = Prices(make_year(args))
    loaded = next((r.prices for r in results.values() if r.prices is not None), None)
    print(f"\n{args.days} days of history_year ({args.accounts} accounts x {args.assets} "
          f"assets, 1-minute polls); prices: {len(prices.tickers)} bitopro pairs "
          f"({len(USDT_ONLY)} in USDT) and USD/TWD every 5 minutes, daily closes of those "
          f"and of {len(prices.stocks)} stocks in USD; unpriced held assets: "
          f"{', '.join(prices.unpriced) or 'none'}")
    if loaded is not None:
        s = loaded.stats
        print(f"{s.fetches:,} price fetches ({s.failed / s.fetches:.2%} failed), "
              f"{s.live:,} live and {s.daily:,} daily observations")
    for name in names:
        reads = results[name].reads
        print(f"{name}: report valued by {reads.report_how}; " + "; ".join(reads.checks))
    header = ["", *names]
    rows: list[list[str]] = []
    if all(results[n].prices is not None for n in names):
        rows += [
            ["history load (history_year)", *(f"{results[n].history_seconds:,.0f} s"
                                              for n in names)],
            ["price load (generation included)", *(
                f"{results[n].prices.seconds:,.0f} s" for n in names)],
        ]
    keys = list(results[names[0]].reads.timings)
    for key in keys:
        first = results[names[0]].reads.timings[key]
        label = f"{key}, ms median (max) of {first.runs}" if first.runs > 1 else f"{key}, ms"
        rows.append([label, *(_cell(results[n].reads.timings.get(key)) for n in names)])
    rows.append(["database size", *(hy.mb(results[n].size) for n in names)])
    for table in PRICE_TABLES:
        rows.append([f"  table {table} (with indexes)", *(
            hy.mb(results[n].tables[table]) if table in results[n].tables else "-"
            for n in names)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    for name in names:
        for text_ in results[name].reads.profiles:
            print(f"\n[{name}]{text_}")


def _cell(timing: Timing | None) -> str:
    if timing is None:
        return "-"
    sql = f", {timing.statements:,} SQL" if timing.statements else ""
    if timing.runs <= 1:
        return f"{timing.median_ms:,.1f}{sql}"
    return f"{timing.median_ms:,.1f} ({timing.max_ms:,.1f}){sql}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--assets", type=int, default=30)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per short read")
    parser.add_argument("--long-runs", type=int, default=3,
                        help="timed runs of networth and the report")
    parser.add_argument("--chunk-days", type=int, default=5,
                        help="days of rows per transaction / COPY")
    parser.add_argument("--profile", action="store_true",
                        help="profile value, networth and the report once each")
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the database of --sqlite-path / --pg-name if it exists")
    parser.add_argument("--pg-url", default=hy.PG_ADMIN,
                        help="admin URL used to CREATE and DROP a throwaway database")
    parser.add_argument("--pg-name", help="the PostgreSQL database (default: a new name)")
    parser.add_argument("--sqlite-path", help="default: a temporary folder")
    args = parser.parse_args()
    if args.days < 2 or args.accounts < 1 or not 1 <= args.assets <= 30:
        parser.error("--days must be >= 2, --accounts >= 1, --assets 1..30")
    began = time.perf_counter()
    results: dict[str, Result] = {}
    if args.database in ("sqlite", "both"):
        results["SQLite"] = run_sqlite(args)
    if args.database in ("postgresql", "both"):
        results["PostgreSQL"] = run_postgresql(args)
    print_table(results, args)
    print(f"\ntotal run time {time.perf_counter() - began:,.0f} s; measured {date.today()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
