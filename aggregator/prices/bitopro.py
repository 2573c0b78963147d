"""BitoPro v3 public prices: GET /tickers (every pair, live) and /trading-history (daily).

``/tickers`` answers every pair BitoPro lists, ``{"data": [{"pair": "btc_twd",
"lastPrice": "1182449.00000000", ...}]}``, with no time: a live price is observed when
fetched. ``/trading-history/{pair}?resolution=1d&from=&to=`` (unix seconds) answers
``{"data": [{"timestamp": <ms of the bar's start>, "close": "3955.8", ...}]}``; a bar is
the close of the day it ends in (its start plus one day, less a millisecond, in UTC), so
it is observed at the end of that day whether BitoPro's days begin at 00:00 UTC or at
midnight in Taipei, and a bar still running is not a close yet. BitoPro has no
configured pairs: a pair it does not list is no data, never a failed fetch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import httpx

from aggregator import errors
from aggregator.model import RawResponse
from aggregator.prices.base import Answers, PriceConfig, PriceQuery, PriceRequest, PriceSource
from aggregator.prices.model import Observation, PriceKind
from aggregator.prices.parsing import (
    ONE_DAY,
    check,
    daily,
    end_of_day,
    pairs,
    price,
    start_of_day,
    unix,
    unix_millis,
)
from aggregator.sources.base import (
    Rate,
    endpoint_url,
    envelope_error,
    expect,
    json_body,
    require_list,
    require_object,
    require_str,
    require_symbol,
)

TICKERS_PATH = "/tickers"
HISTORY_PATH = "/trading-history/"
# What BitoPro answers for a pair it does not list (it publishes no error for it).
NOT_LISTED = frozenset({400, 404, 422})


@dataclass(frozen=True, kw_only=True)
class BitoProPrices(PriceConfig):
    """No keys of its own: the public API needs no credential."""


def live_requests(config: BitoProPrices, query: PriceQuery) -> list[PriceRequest]:
    return [PriceRequest(httpx.Request("GET", endpoint_url(config.base_url, TICKERS_PATH)))]


def pair_name(base: str, quote: str) -> str:
    return f"{base.lower()}_{quote.lower()}"


def history_requests(config: BitoProPrices, query: PriceQuery, first: date, last: date
                     ) -> list[PriceRequest]:
    """One request per (asset, quote) of the query: BitoPro says which pairs it lists
    only by answering them."""
    params = {"resolution": "1d", "from": str(unix(start_of_day(first))),
              "to": str(unix(end_of_day(last)))}
    return [
        PriceRequest(
            httpx.Request("GET", endpoint_url(config.base_url, HISTORY_PATH
                                              + pair_name(base, quote)), params=params),
            base=base, quote=quote, missing_ok=True)
        for base, quote in pairs(query.assets, query.quotes)
        # The pair goes into the path: BitoPro's symbols are letters and digits.
        if (base + quote).isascii() and (base + quote).isalnum()
    ]


def _data(response: RawResponse) -> list[object] | None:
    body = require_object(json_body(response), "body")
    envelope_error(body, "body")
    expect("data" in body, "body: no 'data' list")
    # {"data": null} is how trading-history says there were no trades in the range.
    return None if body["data"] is None else require_list(body["data"], "data")


def split_pair(value: object, where: str) -> tuple[str, str]:
    text = require_str(value, where)
    base, sep, quote = text.partition("_")
    expect(bool(sep) and "_" not in quote, f"{where}: {text[:40]!r} is not BASE_QUOTE")
    return require_symbol(base, where), require_symbol(quote, where)


def parse_live(config: BitoProPrices, answers: Answers, fetched_at: datetime
               ) -> list[Observation]:
    expect(len(answers) == 1, f"expected 1 answer, got {len(answers)}")
    ((_, response),) = answers
    check(response)
    observations: list[Observation] = []
    seen: set[tuple[str, str]] = set()
    for i, row in enumerate(_data(response) or []):
        where = f"data[{i}]"
        row = require_object(row, where)
        base, quote = split_pair(row.get("pair"), f"{where}.pair")
        expect((base, quote) not in seen, f"{where}.pair: {base}_{quote} listed twice")
        seen.add((base, quote))
        last = price(row.get("lastPrice"), f"{where}.lastPrice")
        if last is not None:  # "0": listed, never traded
            observations.append(Observation(base, quote, PriceKind.LIVE, fetched_at, last))
    return observations


def parse_history(config: BitoProPrices, answers: Answers, fetched_at: datetime
                  ) -> list[Observation]:
    observations: list[Observation] = []
    for request, response in answers:
        if request.missing_ok and response.status in NOT_LISTED:
            continue
        check(response)
        base, quote = request.base, request.quote
        if base is None or quote is None:
            raise errors.SchemaMismatch(f"{response.endpoint}: not a trading-history request")
        days: set[date] = set()
        for i, bar in enumerate(_data(response) or []):
            where = f"{response.endpoint}: data[{i}]"
            bar = require_object(bar, where)
            start = unix_millis(bar.get("timestamp"), f"{where}.timestamp")
            close = price(bar.get("close"), f"{where}.close")
            day = (start + ONE_DAY - timedelta(milliseconds=1)).date()
            if close is None or end_of_day(day) > fetched_at:
                continue  # no trade, or the day is not over: not a close yet
            expect(day not in days, f"{where}: a second bar for {day}")
            days.add(day)
            observations.append(daily(base, quote, day, close))
    return observations


SOURCE = PriceSource(
    name="bitopro",
    title="BitoPro",
    config=BitoProPrices,
    default_base_url="https://api.bitopro.com/v3",
    # "Open API: 600 requests per minute per IP", as for the private API.
    rate_limit=Rate(600, 60.0),
    live_requests=live_requests,
    parse_live=parse_live,
    history_requests=history_requests,
    parse_history=parse_history,
)
