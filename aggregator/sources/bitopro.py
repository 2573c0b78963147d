"""BitoPro v3 balances: GET /accounts/balance, signed with HMAC-SHA384 payload headers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from aggregator import errors
from aggregator.amounts import canonical, parse_amount, subtract
from aggregator.auth.bitopro import BitoProAuth
from aggregator.model import Holding, Kind, RawResponse, Secret
from aggregator.sources.base import (
    AccountConfig,
    Rate,
    Source,
    check_status,
    checked,
    endpoint_url,
    envelope_error,
    expect,
    json_body,
    require_list,
    require_object,
    require_symbol,
)

BALANCE_PATH = "/accounts/balance"
FIAT = frozenset({"TWD"})

# 409 is BitoPro's "local machine time mismatch"; 400 also answers a refused nonce.
STATUS_ERRORS: dict[int, type[errors.SourceError]] = {409: errors.ClockSkew}


@dataclass(frozen=True, kw_only=True)
class BitoProConfig(AccountConfig):
    api_key: Secret
    api_secret: Secret
    identity: str  # the account's e-mail; the signed payload carries it


def balance_requests(config: BitoProConfig) -> list[httpx.Request]:
    return [httpx.Request("GET", endpoint_url(config.base_url, BALANCE_PATH))]


def make_auth(config: BitoProConfig) -> httpx.Auth:
    return BitoProAuth(config.api_key, config.api_secret, config.identity)


def parse_balances(responses: Sequence[RawResponse]) -> list[Holding]:
    # {"data":[{"currency":"bito","amount":"10001","available":"1.0","stake":"10000",
    #           "tradable":true}, ...]}
    (response,) = checked(responses, 1, lambda r: check_status(r, STATUS_ERRORS))
    body = require_object(json_body(response), "body")
    envelope_error(body, "body")
    expect("data" in body, "body: no 'data' list")
    holdings = []
    for i, row in enumerate(require_list(body["data"], "data")):
        where = f"data[{i}]"
        row = require_object(row, where)
        asset = require_symbol(row.get("currency"), f"{where}.currency")
        total = parse_amount(row.get("amount"), f"{where}.amount")
        available = parse_amount(row.get("available"), f"{where}.available")
        details: dict[str, str | bool | None] = {}
        if "stake" in row:
            details["stake"] = canonical(parse_amount(row["stake"], f"{where}.stake"))
        if isinstance(row.get("tradable"), bool):
            details["tradable"] = row["tradable"]
        holdings.append(
            Holding(
                asset=asset,
                kind=Kind.FIAT if asset in FIAT else Kind.CRYPTO,
                total=total,
                available=available,
                locked=subtract(total, available),
                details=details,
            )
        )
    return holdings


SOURCE = Source(
    name="bitopro",
    config=BitoProConfig,
    default_base_url="https://api.bitopro.com/v3",
    auth=make_auth,
    requests=balance_requests,
    parse=parse_balances,
    title="BitoPro",
    rate_limit=Rate(600, 60.0),
)
