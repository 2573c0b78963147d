"""The registry of price fakes (one line per module), their routing, the ``[[prices]]``
tables that point a config at them, the manual price file, and the demo's prices.

A new price fake is a module beside these with ``PREFIX``, ``ROUTES`` (the paths it
answers, under the sandbox's one host), ``handle(board, request)`` and
``config_items(board)``, and one line below. The manual source has no server: the board
writes its file.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from aggregator.amounts import canonical
from aggregator.sandbox import price_bitopro, price_coingecko, price_yahoo
from aggregator.sandbox.price_board import PriceBoard
from aggregator.sandbox.tables import toml_string
from aggregator.sandbox.wire import Reply, Request

if TYPE_CHECKING:
    from aggregator.sandbox.core import Sandbox

BARE_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass(frozen=True)
class PriceFake:
    """One price API's fake, as a module declares it."""

    source: str  # its key in aggregator.prices.registry.PRICE_SOURCES
    prefix: str  # base URL = sandbox URL + prefix
    routes: tuple[str, ...]
    handle: Callable[[PriceBoard, Request], Reply]
    config_items: Callable[[PriceBoard], list[tuple[str, object]]]

    @classmethod
    def of(cls, source: str, module: ModuleType) -> PriceFake:
        return cls(source, module.PREFIX, module.ROUTES, module.handle, module.config_items)


PRICE_FAKES: dict[str, PriceFake] = {
    fake.source: fake
    for fake in (
        PriceFake.of("bitopro", price_bitopro),
        PriceFake.of("coingecko", price_coingecko),
        PriceFake.of("yahoo", price_yahoo),
    )
}


def dispatch(board: PriceBoard, request: Request) -> Reply | None:
    """The price fake's answer, or None when no price fake serves the path."""
    for fake in PRICE_FAKES.values():
        if any(request.path == r or request.path.startswith(r + "/") for r in fake.routes):
            return fake.handle(board, request)
    return None


def price_base_url(sandbox_url: str, source: str) -> str:
    if source not in PRICE_FAKES:
        raise ValueError(f"no price fake for {source!r}; one of {', '.join(PRICE_FAKES)}")
    return sandbox_url + PRICE_FAKES[source].prefix


def toml_value(value: object) -> str:
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, Mapping):
        items = (f"{k if k and set(k) <= BARE_KEY else toml_string(k)} = {toml_value(v)}"
                 for k, v in value.items())
        return "{ " + ", ".join(items) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def price_tables(sandbox: Sandbox, sources: Sequence[str] = ("bitopro", "coingecko", "yahoo"),
                 *, manual_file: str | Path | None = None, interval: str | None = None) -> str:
    """``[[prices]]`` tables pointing at ``sandbox``'s price fakes, in this order of
    preference, each configured for what the board serves (the manual source after them
    when ``manual_file`` is given; see ``write_manual_file``)."""
    tables = []
    for source in sources:
        items: list[tuple[str, object]] = [
            ("name", source), ("source", source), ("base_url", sandbox.price_base_url(source)),
            *PRICE_FAKES[source].config_items(sandbox.prices)]
        tables.append(items)
    if manual_file is not None:
        tables.append([("name", "manual"), ("source", "manual"), ("file", str(manual_file))])
    lines = []
    for items in tables:
        if interval is not None:
            items.append(("interval", interval))
        lines.append("\n".join(["[[prices]]"]
                               + [f"{k} = {toml_value(v)}" for k, v in items]) + "\n")
    return "\n".join(lines)


def write_manual_file(board: PriceBoard, path: str | Path) -> Path:
    """The board's manual series as the manual source's CSV: closes, then live prices."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["base", "quote", "time", "price"])
        for (asset, quote), series in sorted(board.of("manual").items()):
            for day in sorted(series.closes):
                out.writerow([asset, quote, day.isoformat(), canonical(series.closes[day])])
            if series.live is not None:
                at = datetime.fromtimestamp(board.updated(series), UTC)
                out.writerow([asset, quote, at.isoformat().replace("+00:00", "Z"),
                              canonical(series.live)])
    return path


# The demo: every asset the demo accounts hold, in TWD, through each source's own path.
DEMO_LIVE: list[tuple[str, str, str, str]] = [
    ("bitopro", "BTC", "TWD", "3052811"), ("bitopro", "ETH", "TWD", "98123.5"),
    ("bitopro", "USDT", "TWD", "31.79"), ("bitopro", "BITO", "TWD", "2.345"),
    ("bitopro", "BTC", "USDT", "96031.27"), ("bitopro", "ETH", "USDT", "3086.64"),
    ("coingecko", "ZPR", "TWD", "0.0013258"), ("coingecko", "ZPR", "USD", "0.000041234"),
    ("coingecko", "USDT", "USD", "1.0002"), ("coingecko", "USDT", "TWD", "31.78"),
    ("yahoo", "AAPL", "USD", "232.78"), ("yahoo", "MSFT", "USD", "421.35"),
    ("yahoo", "VOO", "USD", "543.21"), ("yahoo", "USD", "TWD", "31.765"),
]
WEEKDAYS_ONLY = frozenset({"yahoo"})
STEADY = frozenset({"USDT", "USD"})  # a stablecoin and a currency move by tenths of a percent


def demo_prices(board: PriceBoard, days: int = 35, seed: int = 7) -> None:
    """Live prices of the demo's assets and ``days`` days of closes before today (a
    random walk back from today's price, at most 2 % a day, 0.2 % for USDT and USD;
    stock markets closed at weekends)."""
    rng = random.Random(seed)
    board.coin_ids.update({"ZPR": "zper", "USDT": "tether"})
    board.list_on_yahoo("USD", "TWD=X", zone="Europe/London", opens=clock_time(0))
    today = board.now().date()
    for source, asset, quote, text in DEMO_LIVE:
        live = Decimal(text)
        board.set_price(source, asset, quote, live)
        board.set_closes(source, asset, quote, walk(
            live, today, days, rng, weekdays=source in WEEKDAYS_ONLY,
            most=20 if asset in STEADY else 200))


def walk(live: Decimal, today: date, days: int, rng: random.Random, *, weekdays: bool,
         most: int) -> dict[date, Decimal]:
    """Closes going back from ``live`` by up to ``most`` basis points a day."""
    exponent = live.as_tuple().exponent
    assert isinstance(exponent, int)
    unit = Decimal(1).scaleb(min(exponent, -2))
    closes, price = {}, live
    for back in range(1, days + 1):
        day = today - timedelta(days=back)
        price = (price * (1 + Decimal(rng.randint(-most, most)) / 10000)).quantize(unit)
        if not weekdays or day.weekday() < 5:
            closes[day] = price
    return closes
