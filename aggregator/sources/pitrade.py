"""PiTrade partner API: stock holdings with cost basis plus cash, self-signed HS256 JWT."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import httpx

from aggregator.amounts import canonical, parse_amount
from aggregator.auth.pitrade_jwt import PiTradeJwtAuth
from aggregator.model import Detail, Holding, Kind, RawResponse, Secret
from aggregator.sources.base import (
    AccountConfig,
    Source,
    check_status,
    endpoint_url,
    expect,
    json_body,
    require_list,
    require_object,
    require_str,
)

PORTFOLIO_PATH = "/portfolio"
PROPERTIES_PATH = "/portfolio-properties"


@dataclass(frozen=True, kw_only=True)
class PiTradeConfig(AccountConfig):
    client_id: str
    secret: Secret


def portfolio_requests(config: PiTradeConfig) -> list[httpx.Request]:
    return [
        httpx.Request("GET", endpoint_url(config.base_url, PORTFOLIO_PATH)),
        httpx.Request("GET", endpoint_url(config.base_url, PROPERTIES_PATH)),
    ]


def make_auth(config: PiTradeConfig) -> httpx.Auth:
    return PiTradeJwtAuth(config.client_id, config.secret)


def _detail(value: object) -> Detail:
    if isinstance(value, Decimal):
        return canonical(value)
    if value is None or isinstance(value, str | bool | int):
        return value
    return _compact_json(value)  # nested objects and lists are kept as JSON text


def _compact_json(value: object) -> str:
    """JSON text with exact numbers: json.dumps cannot write a Decimal without a float."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_compact_json(v)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_compact_json(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return canonical(value)
    return json.dumps(value)


def parse_portfolio(responses: Sequence[RawResponse]) -> list[Holding]:
    # /portfolio: [{"ticker":"AAPL","quantity":10,"averagePurchasePrice":145.00}, ...]
    # /portfolio-properties: {"availableBalance": 2500.5, "currency": "USD", ...}
    expect(len(responses) == 2, f"expected 2 answers, got {len(responses)}")
    for response in responses:
        check_status(response)
    portfolio, properties = (json_body(r) for r in responses)
    holdings = []
    for i, row in enumerate(require_list(portfolio, "portfolio")):
        where = f"portfolio[{i}]"
        row = require_object(row, where)
        quantity = parse_amount(row.get("quantity"), f"{where}.quantity")
        price = row.get("averagePurchasePrice")
        holdings.append(
            Holding(
                asset=require_str(row.get("ticker"), f"{where}.ticker").upper(),
                kind=Kind.STOCK,
                total=quantity,
                available=quantity,
                locked=Decimal(0),
                details={
                    "averagePurchasePrice": None
                    if price is None
                    else canonical(parse_amount(price, f"{where}.averagePurchasePrice"))
                },
            )
        )
    properties = require_object(properties, "portfolio-properties")
    cash = properties.get("availableBalance")
    if cash is not None:
        amount = parse_amount(cash, "portfolio-properties.availableBalance")
        currency = properties.get("currency") or "USD"
        holdings.append(
            Holding(
                asset=require_str(currency, "portfolio-properties.currency").upper(),
                kind=Kind.FIAT,
                total=amount,
                available=amount,
                locked=None,
                details={
                    k: _detail(v)
                    for k, v in properties.items()
                    if k not in ("availableBalance", "currency")
                },
            )
        )
    return holdings


SOURCE = Source(
    name="pitrade",
    config=PiTradeConfig,
    default_base_url=None,
    auth=make_auth,
    requests=portfolio_requests,
    parse=parse_portfolio,
)
