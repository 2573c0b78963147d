"""PiTrade partner API: stock holdings with cost basis plus cash, self-signed HS256 JWT."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import httpx

from aggregator import errors
from aggregator.amounts import canonical, parse_amount
from aggregator.auth.pitrade_jwt import PiTradeJwtAuth
from aggregator.model import Detail, Holding, Kind, RawResponse, Secret
from aggregator.sources.base import (
    AccountConfig,
    Source,
    check_status,
    checked,
    endpoint_url,
    envelope_error,
    exchange_reason,
    expect,
    json_body,
    require_list,
    require_object,
    require_symbol,
    safe_text,
    status_message,
)

PORTFOLIO_PATH = "/portfolio"
PROPERTIES_PATH = "/portfolio-properties"
COST_BASIS = "averagePurchasePrice"  # a /portfolio field, kept as the detail of that name


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


def check_answer(response: RawResponse) -> None:
    """The HTTP status first; a 401 saying "expired" is our clock, not our key.

    The auth re-signs once on a 401, so any 401 the parser sees answered a token signed
    a moment ago: the server thinking it expired means the two clocks disagree.
    """
    if response.status == 401:
        reason = exchange_reason(response.body)
        if "expired" in reason.lower():
            raise errors.ClockSkew(
                status_message(response, reason)
                + " (a token signed just now was refused as expired: is this clock right?)")
    check_status(response)


def _detail(value: object, where: str) -> Detail:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Decimal | int):
        amount = parse_amount(value, where)  # bounded like every number we keep
        return value if isinstance(value, int) else canonical(amount)
    if isinstance(value, str):
        return safe_text(value)
    return _compact_json(value, where)  # nested objects and lists are kept as JSON text


def _compact_json(value: object, where: str) -> str:
    """JSON text with exact numbers: json.dumps cannot write a Decimal without a float.

    Written ASCII-only, so a lone surrogate or a NUL stays an escape, never a character.
    """
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_compact_json(v, where)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_compact_json(v, where) for v in value) + "]"
    if isinstance(value, Decimal):
        return canonical(parse_amount(value, where))
    return json.dumps(value)


def parse_portfolio(responses: Sequence[RawResponse]) -> list[Holding]:
    # /portfolio: [{"ticker":"AAPL","quantity":10,"averagePurchasePrice":145.00}, ...]
    # /portfolio-properties: {"availableBalance": 2500.5, "currency": "USD", ...}
    answers = checked(responses, 2, check_answer)
    portfolio, properties = (json_body(r) for r in answers)
    if isinstance(portfolio, dict):
        envelope_error(portfolio, "portfolio")
    holdings = []
    for i, row in enumerate(require_list(portfolio, "portfolio")):
        where = f"portfolio[{i}]"
        row = require_object(row, where)
        quantity = parse_amount(row.get("quantity"), f"{where}.quantity")
        price = row.get(COST_BASIS)
        holdings.append(
            Holding(
                asset=require_symbol(row.get("ticker"), f"{where}.ticker"),
                kind=Kind.STOCK,
                total=quantity,
                available=quantity,
                locked=Decimal(0),
                details={
                    COST_BASIS: None
                    if price is None
                    else canonical(parse_amount(price, f"{where}.{COST_BASIS}"))
                },
            )
        )
    properties = require_object(properties, "portfolio-properties")
    envelope_error(properties, "portfolio-properties")
    # An empty object says nothing at all, not "no cash": refuse it rather than close
    # the cash interval.
    expect(bool(properties), "portfolio-properties: an empty object")
    cash = properties.get("availableBalance")
    if cash is not None:
        amount = parse_amount(cash, "portfolio-properties.availableBalance")
        # Only a missing currency is the documented default; false, 0, [] or "" are not.
        currency = properties.get("currency")
        holdings.append(
            Holding(
                asset="USD" if currency is None
                else require_symbol(currency, "portfolio-properties.currency"),
                kind=Kind.FIAT,
                total=amount,
                available=amount,
                locked=None,
                details={
                    safe_text(k): _detail(v, f"portfolio-properties.{safe_text(k)[:40]}")
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
    title="PiTrade",
    rate_limit=None,  # none published
    cost_basis_detail=COST_BASIS,
)
