"""Bitzoom Futures balances: GET /api/v1/balance, bearer JWT (v1.0) or HMAC-SHA256 API keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx

from aggregator import errors
from aggregator.amounts import canonical, parse_amount
from aggregator.auth.bitzoom_bearer import (
    BitzoomBearerAuth,
    CommandToken,
    FixedToken,
    TestTokenEndpoint,
    TokenProvider,
)
from aggregator.auth.bitzoom_hmac import BitzoomHmacAuth
from aggregator.model import Holding, Kind, RawResponse, Secret
from aggregator.sources.base import (
    AccountConfig,
    Rate,
    Source,
    checked,
    endpoint_url,
    envelope_error,
    expect,
    json_body,
    reason,
    require_list,
    require_object,
    require_symbol,
    safe_text,
)

BALANCE_PATH = "/api/v1/balance"
AUTH_SCHEMES = ("bearer", "hmac")

# Codes carried in the envelope, even on HTTP 200.
CODES: dict[int, type[errors.SourceError]] = {
    -1001: errors.Unreachable,  # disconnected
    # Unauthorized: the token expired (the bearer auth already refreshed once) or the
    # key is unknown.
    -1002: errors.TokenExpired,
    -1003: errors.RateLimited,
    -1021: errors.ClockSkew,  # timestamp outside the receive window
    -1022: errors.BadCredentials,  # invalid signature or malformed token
}


@dataclass(frozen=True, kw_only=True)
class BitzoomConfig(AccountConfig):
    auth: str = "bearer"
    # bearer: exactly one way to get a token
    user_id: Secret | None = None  # anyone holding it can fetch a test token
    token: Secret | None = None
    token_command: list[str] | None = None
    # hmac
    api_key: Secret | None = None
    api_secret: Secret | None = None
    recv_window: int | None = 5000

    def problems(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if self.auth not in AUTH_SCHEMES:
            return [("auth", f"must be one of {', '.join(AUTH_SCHEMES)}, not {self.auth!r}")]
        if self.auth == "bearer":
            given = [k for k in ("user_id", "token", "token_command") if getattr(self, k)]
            if len(given) != 1:
                found.append(
                    ("user_id", "bearer auth needs exactly one of user_id, token, token_command")
                )
        else:
            found += [(k, "required for hmac auth") for k in ("api_key", "api_secret")
                      if getattr(self, k) is None]
        if self.recv_window is not None and not 1 <= self.recv_window <= 60000:
            found.append(("recv_window", "must be between 1 and 60000 milliseconds"))
        return found


def balance_requests(config: BitzoomConfig) -> list[httpx.Request]:
    return [httpx.Request("GET", endpoint_url(config.base_url, BALANCE_PATH))]


def make_auth(config: BitzoomConfig) -> httpx.Auth:
    if config.auth == "hmac":
        assert config.api_key is not None and config.api_secret is not None
        return BitzoomHmacAuth(config.api_key, config.api_secret, recv_window=config.recv_window)
    provider: TokenProvider
    if config.token is not None:
        provider = FixedToken(config.token)
    elif config.token_command:
        provider = CommandToken(config.token_command)
    else:
        assert config.user_id is not None
        provider = TestTokenEndpoint(config.base_url, config.user_id.reveal())
    return BitzoomBearerAuth(provider)


def unwrap(body: Any) -> Any:
    """The ``data`` of either documented envelope; raise for any error envelope.

    Every error signal counts, whichever envelope it comes in: a body carrying both a
    ``code`` and a ``success`` must pass both.
    """
    body = require_object(body, "body")
    if "code" not in body and "success" not in body:
        raise errors.SchemaMismatch("body: neither a 'code' nor a 'success' envelope")
    if "code" in body:
        # {"code":0,"msg":"success","data":...}
        code, message = body["code"], body.get("msg")
        if not (_integer(code) and code == 0):  # False == 0 in Python: not a success
            _refuse(code, message)
    if "success" in body:
        # {"traceid":..,"errorCode":200,"errorMessage":..,"success":true,"data":..,...}
        code, message = body.get("errorCode"), body.get("errorMessage")
        if not (body["success"] is True and _integer(code) and code == 200):
            _refuse(code, message)
    envelope_error(body, "body")
    expect("data" in body, "body: envelope without 'data'")
    return body["data"]


def _refuse(code: object, message: object) -> NoReturn:
    text = f"Bitzoom code {safe_text(str(code)[:40])}: {reason(message)}".rstrip(": ")
    if isinstance(code, int) and not isinstance(code, bool):
        if code in CODES:
            raise CODES[code](text)
        raise errors.ApiError(text, code=code)
    raise errors.ApiError(text, code=safe_text(code[:40]) if isinstance(code, str) else None)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_balances(responses: Sequence[RawResponse]) -> list[Holding]:
    # {"code":0,"msg":"success","data":[{"asset":"USDT","walletBalance":"1000.5",
    #   "availableBalance":"900.5","unrealizedProfit":"-3.2","marginBalance":"997.3"}]}
    (response,) = checked(responses, 1)
    data = unwrap(json_body(response))
    if isinstance(data, dict) and "asset" in data:
        data = [data]  # one asset, as asked for with ?AssetID=
    holdings = []
    for i, row in enumerate(require_list(data, "data")):
        where = f"data[{i}]"
        row = require_object(row, where)
        wallet_key = next((k for k in ("walletBalance", "balance") if k in row), None)
        expect(wallet_key is not None, f"{where}: neither walletBalance nor balance")
        assert wallet_key is not None
        available = row.get("availableBalance")
        locked = row.get("locked")
        # Unrealized profit is not a holding: kept beside the row, never added to total.
        details = {
            key: canonical(parse_amount(row[key], f"{where}.{key}"))
            for key in ("unrealizedProfit", "marginBalance")
            if row.get(key) is not None
        }
        holdings.append(
            Holding(
                asset=require_symbol(row.get("asset"), f"{where}.asset"),
                kind=Kind.CRYPTO,
                total=parse_amount(row[wallet_key], f"{where}.{wallet_key}"),
                available=None
                if available is None
                else parse_amount(available, f"{where}.availableBalance"),
                locked=None if locked is None else parse_amount(locked, f"{where}.locked"),
                details=details,
            )
        )
    return holdings


SOURCE = Source(
    name="bitzoom",
    config=BitzoomConfig,
    default_base_url="https://api.bitzoom.com",
    auth=make_auth,
    requests=balance_requests,
    parse=parse_balances,
    title="Bitzoom",
    rate_limit=Rate(5, 1.0),
)
