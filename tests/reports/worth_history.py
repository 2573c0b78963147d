"""A few days of holdings and prices at chosen times, and what they are worth, by hand.

The report's zone is Asia/Taipei (UTC+8), so its days end at 16:00 UTC: a poll and a
price just after a local midnight (still the same UTC day) must not reach the day
before. Every expected figure below is written out or computed here from the tables,
never by the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from aggregator.model import Holding, Kind, PollRecord
from aggregator.prices.model import FetchRecord, Observation, PriceKind
from aggregator.storage.price_writes import record_fetch
from aggregator.storage.writes import record_poll
from aggregator.valuation.rule import ValuationSettings

ZONE = ZoneInfo("Asia/Taipei")
FIRST = date(2024, 3, 1)
DAYS = [FIRST + timedelta(days=n) for n in range(4)]
SETTINGS = ValuationSettings(currency="TWD", sources=("ex", "fx"))
D = Decimal

SOURCES = {"bp": "bitopro", "bz": "bitz", "pt": "pitrade"}
KINDS = {"BTC": Kind.CRYPTO, "ETH": Kind.CRYPTO, "USDT": Kind.CRYPTO, "DOGE": Kind.CRYPTO,
         "TWD": Kind.FIAT, "USD": Kind.FIAT, "AAPL": Kind.STOCK}

# What each account holds from local noon of each day on (a poll is a whole snapshot).
HELD: list[dict[tuple[str, str], Decimal]] = [
    {("bp", "BTC"): D("0.5"), ("bp", "TWD"): D(10000), ("bz", "USDT"): D(100),
     ("bz", "DOGE"): D(1000), ("pt", "AAPL"): D(10), ("pt", "USD"): D(50)},
    # BTC bought
    {("bp", "BTC"): D("0.75"), ("bp", "TWD"): D(10000), ("bz", "USDT"): D(100),
     ("bz", "DOGE"): D(1000), ("pt", "AAPL"): D(10), ("pt", "USD"): D(50)},
    # ETH new, TWD spent, USDT and AAPL up; no BTC price near the day's end
    {("bp", "BTC"): D("0.75"), ("bp", "TWD"): D(8000), ("bp", "ETH"): D(2),
     ("bz", "USDT"): D("150.5"), ("bz", "DOGE"): D(1000), ("pt", "AAPL"): D(12),
     ("pt", "USD"): D(50)},
    # DOGE gone, USD down to zero (held zero: no value, not counted), BTC sold a little
    {("bp", "BTC"): D("0.7"), ("bp", "TWD"): D("8000.75"), ("bp", "ETH"): D(2),
     ("bz", "USDT"): D("150.5"), ("pt", "AAPL"): D(12), ("pt", "USD"): D(0)},
]
# Polled at local 02:00 after the last day (still its UTC day): not in its report.
LATE: dict[tuple[str, str], Decimal] = {("bp", "BTC"): D(9)}

# (source, base, quote) -> price per day, observed live at local 23:30 (30 min before
# the day ends, within the 1 h max age); None: nothing that day.
PRICES: dict[tuple[str, str, str], list[str | None]] = {
    ("ex", "BTC", "TWD"): ["2000000", "2100000", None, "1950000.5"],
    ("ex", "ETH", "TWD"): [None, None, "100000", "110000"],
    ("ex", "TWD", "USDT"): ["0.03125", "0.03125", "0.03125", "0.032"],  # inverse: 32, 31.25
    ("fx", "AAPL", "USD"): ["180", "181.5", "182", "179.25"],
    ("fx", "USD", "TWD"): ["32", "32.1", "32.2", "31.9"],
    ("fx", "BTC", "TWD"): ["1", None, None, None],  # "ex" comes first: not used
}
# Observed at local 00:30 after the last day: too late for it (no look-ahead).
LATE_PRICE = ("ex", "BTC", "TWD", "9999999")

# The rates the rule must find at the end of each day, worked out by hand: direct,
# inverse (1/0.03125 = 32 and 1/0.032 = 31.25, exact), through USD, or none.
RATES: list[dict[str, Decimal | None]] = [
    {"TWD": D(1), "BTC": D(2000000), "ETH": None, "USDT": D(32), "USD": D(32),
     "AAPL": D("5760"), "DOGE": None},
    {"TWD": D(1), "BTC": D(2100000), "ETH": None, "USDT": D(32), "USD": D("32.1"),
     "AAPL": D("5826.15"), "DOGE": None},
    {"TWD": D(1), "BTC": None, "ETH": D(100000), "USDT": D(32), "USD": D("32.2"),
     "AAPL": D("5860.4"), "DOGE": None},
    {"TWD": D(1), "BTC": D("1950000.5"), "ETH": D(110000), "USDT": D("31.25"),
     "USD": D("31.9"), "AAPL": D("5718.075"), "DOGE": None},
]


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), ZONE).astimezone(UTC)


def _poll(engine: Engine, account: str, at: datetime,
          held: dict[tuple[str, str], Decimal]) -> None:
    holdings = [Holding(asset, KINDS[asset], amount, amount, D(0))
                for (name, asset), amount in sorted(held.items()) if name == account]
    record_poll(engine, PollRecord(account, SOURCES[account], at - timedelta(seconds=1), at,
                                   holdings))


def _fetch(engine: Engine, source: str, at: datetime,
           points: list[tuple[str, str, str]]) -> None:
    record_fetch(engine, FetchRecord(
        source, PriceKind.LIVE, at - timedelta(seconds=1), at,
        [Observation(base, quote, PriceKind.LIVE, at, D(price)) for base, quote, price in points]))


def write_history(engine: Engine) -> None:
    for n, day in enumerate(DAYS):
        for account in SOURCES:
            _poll(engine, account, local(day, 12), HELD[n])
        at = local(day, 23, 30)
        for source in ("ex", "fx"):
            _fetch(engine, source, at, [(base, quote, prices[n]) for (s, base, quote), prices
                                        in PRICES.items() if s == source and prices[n]])
    after = DAYS[-1] + timedelta(days=1)
    _poll(engine, "bp", local(after, 2), {**HELD[-1], **LATE})
    source, base, quote, price = LATE_PRICE
    _fetch(engine, source, local(after, 0, 30), [(base, quote, price)])


@dataclass(frozen=True)
class Expected:
    """One day's figures by hand: non-zero holdings, their values, the split."""

    value: Decimal
    unpriced: list[tuple[str, str]]
    change: Decimal
    price_effect: Decimal
    quantity_effect: Decimal
    apart: dict[tuple[str, str], tuple[str, Decimal]]  # holding -> (change, counted)
    values: dict[tuple[str, str], Decimal | None]


def expected(n: int) -> Expected:
    now = {k: a for k, a in HELD[n].items() if a != 0}
    then = {k: a for k, a in (HELD[n - 1] if n else {}).items() if a != 0}
    rate, rate_then = RATES[n], RATES[n - 1] if n else {}

    def value(held: dict[tuple[str, str], Decimal], rates: dict[str, Decimal | None],
              key: tuple[str, str]) -> Decimal | None:
        r = rates.get(key[1])
        return None if r is None else held[key] * r

    values = {k: value(now, rate, k) for k in now}
    before = {k: value(then, rate_then, k) for k in then}
    price_effect = quantity_effect = D(0)
    apart: dict[tuple[str, str], tuple[str, Decimal]] = {}
    for key in now.keys() | then.keys():
        counted = (values.get(key) or D(0)) - (before.get(key) or D(0))
        if key not in then:
            apart[key] = ("new", counted)
        elif key not in now:
            apart[key] = ("gone", counted)
        elif values[key] is None or before[key] is None:
            apart[key] = ("unpriced", counted)
        else:
            r1, r0 = rate[key[1]], rate_then[key[1]]
            assert r1 is not None and r0 is not None
            price_effect += then[key] * (r1 - r0)
            quantity_effect += (now[key] - then[key]) * r1
    total = sum((v for v in values.values() if v is not None), D(0))
    total_then = sum((v for v in before.values() if v is not None), D(0))
    return Expected(total, sorted(k for k, v in values.items() if v is None),
                    total - total_then, price_effect, quantity_effect, apart, values)
