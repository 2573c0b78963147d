"""Bitz balances: POST /Assets/getUserAssets, form fields signed with MD5 over sorted params."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from aggregator import errors
from aggregator.amounts import canonical, parse_amount
from aggregator.auth.bitz import BitzAuth
from aggregator.model import Holding, Kind, RawResponse, Secret
from aggregator.sources.base import (
    AccountConfig,
    Rate,
    Source,
    checked,
    endpoint_url,
    envelope_error,
    json_body,
    reason,
    require_list,
    require_object,
    require_symbol,
)

BALANCE_PATH = "/Assets/getUserAssets"
# The exchange values every line itself: detail key -> the answer's field, whose name is
# the currency.
VALUATION = {"value_btc": "btc", "value_usd": "usd", "value_cny": "cny"}

# Bitz answers HTTP 200 and puts its error in "status" (codes as public clients mapped them).
STATUS_CODES: dict[int, type[errors.SourceError]] = {
    -103: errors.ClockSkew,  # timestamp out of range (or a reused nonce)
    -104: errors.Unreachable,
    -105: errors.BadCredentials,  # invalid signature
    -106: errors.Unreachable,
    -109: errors.BadCredentials,  # invalid API key
    -110: errors.RateLimited,
    -111: errors.PermissionDenied,  # IP not trusted
    -112: errors.ServerError,  # maintenance
    -117: errors.BadCredentials,  # key expired
}


@dataclass(frozen=True, kw_only=True)
class BitzConfig(AccountConfig):
    api_key: Secret
    api_secret: Secret


def balance_requests(config: BitzConfig) -> list[httpx.Request]:
    return [
        httpx.Request(
            "POST",
            endpoint_url(config.base_url, BALANCE_PATH),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            content=b"",
        )
    ]


def make_auth(config: BitzConfig) -> httpx.Auth:
    return BitzAuth(config.api_key, config.api_secret)


def parse_balances(responses: Sequence[RawResponse]) -> list[Holding]:
    # {"status":200,"msg":"","data":{"cny":"0","usd":"0","btc_total":"0","info":[
    #   {"name":"zpr","num":"37.49","over":"37.49","lock":"0","btc":"0","usd":"0","cny":"0"}]},
    #  "time":1532672546,"microtime":"0.94303600 1532672546","source":"api"}
    (response,) = checked(responses, 1)
    body = require_object(json_body(response), "body")
    status = body.get("status")
    if not isinstance(status, int) or isinstance(status, bool):
        raise errors.SchemaMismatch("body: no integer 'status'")
    if status != 200:
        message = f"Bitz status {status}: {reason(body.get('msg'))}".rstrip(": ")
        error = STATUS_CODES.get(status)
        if error is None:
            raise errors.ApiError(message, code=status)
        raise error(message)
    data = body.get("data")
    # A status of 200 with an integer data (e.g. -200031) is an error code too.
    if isinstance(data, int) and not isinstance(data, bool):
        raise errors.ApiError(f"Bitz status 200 with error data {data}", code=data)
    envelope_error(body, "body")
    data = require_object(data, "data")
    holdings = []
    for i, row in enumerate(require_list(data.get("info"), "data.info")):
        where = f"data.info[{i}]"
        row = require_object(row, where)
        valuation = {
            key: canonical(parse_amount(row[name], f"{where}.{name}"))
            for key, name in VALUATION.items()
            if name in row
        }
        holdings.append(
            Holding(
                asset=require_symbol(row.get("name"), f"{where}.name"),
                kind=Kind.CRYPTO,
                total=parse_amount(row.get("num"), f"{where}.num"),
                available=parse_amount(row.get("over"), f"{where}.over"),
                locked=parse_amount(row.get("lock"), f"{where}.lock"),
                details=valuation,
            )
        )
    return holdings


SOURCE = Source(
    name="bitz",
    config=BitzConfig,
    default_base_url="https://apiv2.bitz.com",
    auth=make_auth,
    requests=balance_requests,
    parse=parse_balances,
    title="Bitz",
    rate_limit=Rate(30, 1.0),
    valuation_details=VALUATION,
)
