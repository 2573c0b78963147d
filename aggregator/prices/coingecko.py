"""CoinGecko v3: GET /simple/price (live) and /coins/{id}/market_chart/range (daily).

``/simple/price?ids=zper&vs_currencies=twd,usd&include_last_updated_at=true`` answers
``{"zper": {"twd": 0.1234, "usd": 4.1234e-05, "last_updated_at": 1711356300}}``: JSON
numbers, taken exactly as written; observed at ``last_updated_at`` (never later than
the fetch), else when fetched. An id it does not know is simply left out of the answer,
and that is a failed fetch: the config named it. ``market_chart/range`` with
``interval=daily`` answers ``{"prices": [[<ms>, <price>], ...], ...}``: each point is
observed at its own timestamp (00:00 UTC, and the last one near now); an unknown id is
HTTP 404 ``{"error": "coin not found"}``. Errors come as ``{"status": {"error_code": 429,
"error_message": "..."}}``. The optional key goes in ``x-cg-demo-api-key``, or in
``x-cg-pro-api-key`` when ``base_url`` is the pro host.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import urlsplit

import httpx

from aggregator import errors
from aggregator.model import RawResponse, Secret
from aggregator.prices.base import Answers, PriceConfig, PriceQuery, PriceRequest, PriceSource
from aggregator.prices.model import Observation, PriceKind
from aggregator.prices.parsing import (
    check,
    dig,
    end_of_day,
    pairs,
    price,
    start_of_day,
    unix,
    unix_millis,
    unix_seconds,
)
from aggregator.sources.base import (
    MAX_SYMBOL,
    Rate,
    endpoint_url,
    envelope_error,
    expect,
    json_body,
    reason,
    require_list,
    require_object,
)

PRICE_PATH = "/simple/price"
PRO_HOST = "pro-api.coingecko.com"
DEMO_HEADER = "x-cg-demo-api-key"
PRO_HEADER = "x-cg-pro-api-key"
COIN_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,%d}" % (MAX_SYMBOL - 1))  # noqa: UP031


@dataclass(frozen=True, kw_only=True)
class CoinGeckoPrices(PriceConfig):
    ids: dict[str, str]  # asset -> CoinGecko coin id
    quotes: list[str] | None = None  # vs_currencies; None: the reference currency
    api_key: Secret | None = None

    def problems(self) -> list[tuple[str, str]]:
        found = [("ids", f"{asset!r} is not an upper-case symbol") for asset in self.ids
                 if not SYMBOL.fullmatch(asset)]
        found += [("ids", f"{coin!r} is not a CoinGecko coin id such as 'bitcoin'")
                  for coin in self.ids.values() if not COIN_ID.fullmatch(coin)]
        found += [("quotes", f"{q!r} is not an upper-case symbol") for q in self.quotes or ()
                  if not SYMBOL.fullmatch(q)]
        return found


def quotes_of(config: CoinGeckoPrices, query: PriceQuery) -> list[str]:
    """The vs_currencies asked: the configured ones, else the reference currency."""
    return list(config.quotes) if config.quotes else list(query.quotes[:1])


def asked(config: CoinGeckoPrices, query: PriceQuery) -> list[tuple[str, str]]:
    """(asset, coin id) for every configured asset the query wants."""
    return [(asset, coin) for asset, coin in config.ids.items() if asset in query.assets]


def live_requests(config: CoinGeckoPrices, query: PriceQuery) -> list[PriceRequest]:
    coins = sorted({coin for _, coin in asked(config, query)})
    quotes = quotes_of(config, query)
    if not coins or not quotes:
        return []
    params = {"ids": ",".join(coins), "vs_currencies": ",".join(q.lower() for q in quotes),
              "include_last_updated_at": "true", "precision": "full"}
    return [PriceRequest(httpx.Request("GET", endpoint_url(config.base_url, PRICE_PATH),
                                       params=params))]


def history_requests(config: CoinGeckoPrices, query: PriceQuery, first: date, last: date
                     ) -> list[PriceRequest]:
    coin_of = dict(asked(config, query))
    params = {"from": str(unix(start_of_day(first))), "to": str(unix(end_of_day(last))),
              "interval": "daily", "precision": "full"}
    return [
        PriceRequest(
            httpx.Request("GET", endpoint_url(
                config.base_url, f"/coins/{url_quote(coin_of[base], safe='')}/market_chart/range"),
                params={"vs_currency": quote.lower(), **params}),
            base=base, quote=quote)
        for base, quote in pairs(coin_of, quotes_of(config, query))
    ]


def provider_reason(body: Any) -> Any:
    return (dig(body, "status", "error_message") or dig(body, "error", "status", "error_message")
            or dig(body, "error", "error_message"))


def _body(response: RawResponse) -> dict[str, Any]:
    check(response, provider_reason)
    body = require_object(json_body(response), "body")
    envelope_error(body, "body")
    status = dig(body, "status", "error_code")
    if status is not None:  # an error, even on HTTP 200
        raise errors.ApiError(f"{response.endpoint}: CoinGecko error {reason(status)[:20]}: "
                              f"{reason(provider_reason(body))}",
                              code=status if isinstance(status, int | str) else None)
    return body


def parse_live(config: CoinGeckoPrices, answers: Answers, fetched_at: datetime
               ) -> list[Observation]:
    expect(len(answers) <= 1, f"expected at most 1 answer, got {len(answers)}")
    observations: list[Observation] = []
    for request, response in answers:
        body = _body(response)
        params = request.request.url.params
        coins = params.get("ids", "").split(",")
        quotes = [q.upper() for q in params.get("vs_currencies", "").split(",") if q]
        for asset, coin in config.ids.items():
            if coin not in coins:
                continue
            if coin not in body:
                raise errors.ApiError(f"CoinGecko does not know the coin id {coin!r} "
                                      f"(asset {asset}): it is not in the answer")
            entry = require_object(body[coin], coin)
            observed = fetched_at
            if entry.get("last_updated_at") is not None:
                observed = min(fetched_at, unix_seconds(entry["last_updated_at"],
                                                        f"{coin}.last_updated_at"))
            for quote in quotes:
                value = price(entry.get(quote.lower()), f"{coin}.{quote.lower()}")
                if value is not None and quote != asset:
                    observations.append(Observation(asset, quote, PriceKind.LIVE, observed,
                                                    value))
    return observations


def parse_history(config: CoinGeckoPrices, answers: Answers, fetched_at: datetime
                  ) -> list[Observation]:
    observations: list[Observation] = []
    for request, response in answers:
        body = _body(response)
        base, quote = request.base, request.quote
        if base is None or quote is None:
            raise errors.SchemaMismatch(f"{response.endpoint}: not a market_chart request")
        points = require_list(body.get("prices"), f"{response.endpoint}: prices")
        for i, point in enumerate(points):
            where = f"{response.endpoint}: prices[{i}]"
            point = require_list(point, where)
            expect(len(point) == 2, f"{where}: expected [timestamp, price]")
            observed = unix_millis(point[0], f"{where}[0]")
            value = price(point[1], f"{where}[1]")
            if value is not None and observed <= fetched_at:
                observations.append(Observation(base, quote, PriceKind.DAILY, observed, value))
    return observations


class KeyHeader(httpx.Auth):
    """The API key in the header CoinGecko reads for the host (none without a key)."""

    def __init__(self, header: str, key: Secret | None) -> None:
        self.header = header
        self.key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.key is not None:
            request.headers[self.header] = self.key.reveal()
        yield request


def key_header(config: CoinGeckoPrices) -> str:
    return PRO_HEADER if urlsplit(config.base_url).hostname == PRO_HOST else DEMO_HEADER


def make_auth(config: CoinGeckoPrices) -> httpx.Auth:
    return KeyHeader(key_header(config), config.api_key)


SOURCE = PriceSource(
    name="coingecko",
    title="CoinGecko",
    config=CoinGeckoPrices,
    default_base_url="https://api.coingecko.com/api/v3",
    # The keyless public API allows "5 to 15 calls per minute depending on usage"; a
    # demo key 30. The lowest, so that no setup trips it; [rate_limits] raises it.
    rate_limit=Rate(5, 60.0),
    live_requests=live_requests,
    parse_live=parse_live,
    history_requests=history_requests,
    parse_history=parse_history,
    auth=make_auth,
)
