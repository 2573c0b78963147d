"""Quintet balances: GET /v1/wallets, signed with HMAC-SHA256 over time, method and path."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import httpx

from aggregator.amounts import exact_sum, parse_amount
from aggregator.model import Holding, Kind, RawResponse, Secret
from aggregator.sources.base import (
    AccountConfig,
    Rate,
    Source,
    checked,
    endpoint_url,
    json_body,
    require_list,
    require_object,
    require_symbol,
)

WALLETS_PATH = "/v1/wallets"


@dataclass(frozen=True, kw_only=True)
class QuintetConfig(AccountConfig):
    api_key: Secret
    api_secret: Secret


def signed_text(timestamp: str, method: str, path: str) -> str:
    return f"{timestamp}\n{method.upper()}\n{path}"


def signature(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


class QuintetAuth(httpx.Auth):
    def __init__(self, api_key: Secret, api_secret: Secret) -> None:
        self._api_key = api_key
        self._api_secret = api_secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        timestamp = str(int(time.time() * 1000))
        path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        request.headers["X-QT-KEY"] = self._api_key.reveal()
        request.headers["X-QT-TS"] = timestamp
        request.headers["X-QT-SIGN"] = signature(
            self._api_secret.reveal(), signed_text(timestamp, request.method, path))
        yield request


def wallet_requests(config: QuintetConfig) -> list[httpx.Request]:
    return [httpx.Request("GET", endpoint_url(config.base_url, WALLETS_PATH))]


def make_auth(config: QuintetConfig) -> httpx.Auth:
    return QuintetAuth(config.api_key, config.api_secret)


def parse_wallets(responses: Sequence[RawResponse]) -> list[Holding]:
    # {"wallets": [{"coin": "BTC", "free": "1.5", "frozen": "0.25"}, ...]}
    (response,) = checked(responses, 1)
    body = require_object(json_body(response), "body")
    holdings = []
    for i, row in enumerate(require_list(body.get("wallets"), "wallets")):
        where = f"wallets[{i}]"
        row = require_object(row, where)
        free = parse_amount(row.get("free"), f"{where}.free")
        frozen = parse_amount(row.get("frozen"), f"{where}.frozen")
        holdings.append(Holding(asset=require_symbol(row.get("coin"), f"{where}.coin"),
                                kind=Kind.CRYPTO, total=exact_sum([free, frozen]), available=free,
                                locked=frozen, details={}))
    return holdings


SOURCE = Source(
    name="quintet",
    config=QuintetConfig,
    default_base_url="https://api.quintet.example",
    auth=make_auth,
    requests=wallet_requests,
    parse=parse_wallets,
    title="Quintet",
    rate_limit=Rate(7, 1.0),
)
