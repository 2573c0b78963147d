"""Yahoo Finance chart API: GET /v8/finance/chart/{symbol} for stocks, funds and FX.

The answer is ``{"chart": {"result": [{"meta": {...}, "timestamp": [...], "indicators":
{"quote": [{"close": [...]}]}}], "error": null}}``. Live: ``meta.regularMarketPrice``
observed at ``meta.regularMarketTime`` (never later than the fetch), in
``meta.currency``. Daily: each bar's ``close`` (nulls skipped), dated by its trading day
in ``meta.exchangeTimezoneName`` and observed at the end of that day, UTC; the bar of a
day not yet over is the price so far, not a close, and is left out. ``symbols`` maps an
asset to its Yahoo symbol: ``USD = "TWD=X"`` reads 1 USD in TWD. An unknown symbol is
HTTP 404 with ``chart.error`` ("No data found, symbol may be delisted"): a failed fetch.

Yahoo quotes London, Johannesburg and Tel Aviv listings in minor units (``GBp`` pence,
``ZAc`` cents, ``ILA`` agorot): those prices are divided by 100, exactly, and quoted in
GBP, ZAR and ILS, so a pence price is never taken for pounds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote as url_quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from aggregator import errors
from aggregator.model import RawResponse
from aggregator.prices.base import Answers, PriceConfig, PriceQuery, PriceRequest, PriceSource
from aggregator.prices.model import Observation, PriceKind
from aggregator.prices.parsing import (
    check,
    daily,
    dig,
    end_of_day,
    in_major_units,
    price,
    start_of_day,
    unix,
    unix_seconds,
)
from aggregator.sources.base import (
    MAX_SYMBOL,
    Rate,
    endpoint_url,
    expect,
    json_body,
    reason,
    require_list,
    require_object,
    require_str,
)

CHART_PATH = "/v8/finance/chart/"
# Five days of daily bars: the live price, and the closes of the last trading days (over
# a weekend too) from the same answer.
LIVE_PARAMS = {"range": "5d", "interval": "1d"}
# Yahoo refuses clients that do not look like a browser (HTTP 429 to python-httpx).
HEADERS = {"User-Agent": "Mozilla/5.0 (compatible; aggregator)"}
MINOR_UNITS = {"GBp": "GBP", "GBX": "GBP", "ZAc": "ZAR", "ILA": "ILS"}
ASSET = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,%d}" % (MAX_SYMBOL - 1))  # noqa: UP031
YAHOO_SYMBOL = re.compile(r"[A-Za-z0-9^][A-Za-z0-9.=^&_-]{0,31}")
MAX_ZONE = 64
CURRENCY = re.compile(r"[A-Za-z]{3,10}")


@dataclass(frozen=True, kw_only=True)
class YahooPrices(PriceConfig):
    symbols: dict[str, str]  # asset -> Yahoo symbol ("AAPL", "VOO", "TWD=X")

    def problems(self) -> list[tuple[str, str]]:
        found = [("symbols", f"{asset!r} is not an upper-case symbol")
                 for asset in self.symbols if not ASSET.fullmatch(asset)]
        found += [("symbols", f"{symbol!r} is not a Yahoo symbol such as 'AAPL' or 'TWD=X'")
                  for symbol in self.symbols.values() if not YAHOO_SYMBOL.fullmatch(symbol)]
        return found


def _chart(config: YahooPrices, asset: str, params: dict[str, str]) -> PriceRequest:
    path = CHART_PATH + url_quote(config.symbols[asset], safe="=^")
    return PriceRequest(httpx.Request("GET", endpoint_url(config.base_url, path),
                                      params=params, headers=HEADERS), base=asset)


def _assets(config: YahooPrices, query: PriceQuery) -> list[str]:
    return [asset for asset in config.symbols if asset in query.assets]


def live_requests(config: YahooPrices, query: PriceQuery) -> list[PriceRequest]:
    return [_chart(config, asset, LIVE_PARAMS) for asset in _assets(config, query)]


def history_requests(config: YahooPrices, query: PriceQuery, first: date, last: date
                     ) -> list[PriceRequest]:
    # A trading day is in the exchange's zone: a day either side covers every zone.
    params = {"period1": str(unix(start_of_day(first)) - 86400),
              "period2": str(unix(end_of_day(last)) + 86400), "interval": "1d"}
    return [_chart(config, asset, params) for asset in _assets(config, query)]


def provider_reason(body: Any) -> Any:
    return dig(body, "chart", "error", "description") or dig(body, "chart", "error", "code")


def _result(request: PriceRequest, response: RawResponse, symbols: dict[str, str]
            ) -> tuple[str, dict[str, Any]]:
    """The asset asked about and the answer's one result."""
    check(response, provider_reason)
    chart = require_object(require_object(json_body(response), "body").get("chart"), "chart")
    error = chart.get("error")
    if error is not None:
        raise errors.ApiError(f"{response.endpoint}: chart.error: "
                              f"{reason(provider_reason({'chart': chart}) or error)}")
    results = require_list(chart.get("result"), "chart.result")
    expect(len(results) == 1, f"chart.result: expected 1 result, got {len(results)}")
    result = require_object(results[0], "chart.result[0]")
    asset = request.base
    if asset is None or asset not in symbols:
        raise errors.SchemaMismatch(f"{response.endpoint}: not a chart request of the config")
    meta = require_object(result.get("meta"), "meta")
    answered = require_str(meta.get("symbol"), "meta.symbol")
    expect(answered.upper() == symbols[asset].upper(),
           f"meta.symbol: asked {symbols[asset]!r}, the answer is about {answered[:40]!r}")
    return asset, result


def _currency(meta: dict[str, Any]) -> tuple[str, int]:
    """The quote currency, and the power of ten the prices are divided by."""
    currency = require_str(meta.get("currency"), "meta.currency")
    if currency in MINOR_UNITS:
        return MINOR_UNITS[currency], 2
    expect(CURRENCY.fullmatch(currency) is not None,
           f"meta.currency: {currency[:40]!r} is not a currency code")
    return currency.upper(), 0


def _zone(meta: dict[str, Any]) -> ZoneInfo:
    name = require_str(meta.get("exchangeTimezoneName"), "meta.exchangeTimezoneName")
    try:
        if len(name) > MAX_ZONE or not name.isprintable():
            raise ValueError(name)
        return ZoneInfo(name)
    except (ValueError, OSError, ZoneInfoNotFoundError):
        raise errors.SchemaMismatch(f"meta.exchangeTimezoneName: {name[:40]!r} is not a "
                                    "time zone") from None


def _closes(asset: str, result: dict[str, Any], fetched_at: datetime) -> list[Observation]:
    meta = result["meta"]
    quote, minor = _currency(meta)
    if result.get("timestamp") is None:  # a symbol with no trade in the range
        return []
    times = require_list(result["timestamp"], "timestamp")
    quotes = require_list(dig(result, "indicators", "quote"), "indicators.quote")
    expect(len(quotes) >= 1, "indicators.quote: empty")
    closes = require_list(require_object(quotes[0], "indicators.quote[0]").get("close"),
                          "indicators.quote[0].close")
    expect(len(closes) == len(times),
           f"indicators.quote[0].close: {len(closes)} closes for {len(times)} timestamps")
    if not times:
        return []
    zone = _zone(meta)
    by_day: dict[date, Observation] = {}
    for i, (stamp, value) in enumerate(zip(times, closes, strict=True)):
        day = unix_seconds(stamp, f"timestamp[{i}]").astimezone(zone).date()
        close = price(value, f"close[{i}]")
        if close is None or end_of_day(day) > fetched_at:
            continue  # no close, or the day is not over yet
        # Yahoo sometimes repeats the last day (its bar, then the price so far): the
        # later one is the one it ended with.
        by_day[day] = daily(asset, quote, day, in_major_units(close, minor, f"close[{i}]"))
    return list(by_day.values())


def _live(asset: str, meta: dict[str, Any], fetched_at: datetime) -> list[Observation]:
    value = price(meta.get("regularMarketPrice"), "meta.regularMarketPrice")
    if value is None:
        return []
    quote, minor = _currency(meta)
    observed = unix_seconds(meta.get("regularMarketTime"), "meta.regularMarketTime")
    return [Observation(asset, quote, PriceKind.LIVE, min(observed, fetched_at),
                        in_major_units(value, minor, "meta.regularMarketPrice"))]


def _same_quote(asset: str, observations: list[Observation]) -> list[Observation]:
    # "TWD=X" configured for TWD itself would give 1 TWD = x TWD: no rate ever assumed.
    return [o for o in observations if o.quote != asset]


def parse_live(config: YahooPrices, answers: Answers, fetched_at: datetime
               ) -> list[Observation]:
    """The live price, and the closes of the answer's finished days."""
    observations: list[Observation] = []
    for request, response in answers:
        asset, result = _result(request, response, config.symbols)
        observations += _same_quote(asset, _live(asset, result["meta"], fetched_at)
                                    + _closes(asset, result, fetched_at))
    return observations


def parse_history(config: YahooPrices, answers: Answers, fetched_at: datetime
                  ) -> list[Observation]:
    observations: list[Observation] = []
    for request, response in answers:
        asset, result = _result(request, response, config.symbols)
        observations += _same_quote(asset, _closes(asset, result, fetched_at))
    return observations


SOURCE = PriceSource(
    name="yahoo",
    title="Yahoo Finance",
    config=YahooPrices,
    default_base_url="https://query1.finance.yahoo.com",
    # Yahoo publishes no limit and answers 429 to clients it finds too busy: at most 30
    # requests a minute.
    rate_limit=Rate(30, 60.0),
    live_requests=live_requests,
    parse_live=parse_live,
    history_requests=history_requests,
    parse_history=parse_history,
)
