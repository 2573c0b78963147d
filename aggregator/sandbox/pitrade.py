"""PiTrade partner API: /portfolio and /portfolio-properties behind a self-signed HS256 JWT."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from aggregator.sandbox import jwt_hs256
from aggregator.sandbox.accounts import FakeAccount, FakeBalance
from aggregator.sandbox.fake import (
    HUGE,
    TINY,
    Expected,
    Fake,
    balances,
    holding,
    parameter_error,
    required,
)
from aggregator.sandbox.faults import fault_reply
from aggregator.sandbox.state import State
from aggregator.sandbox.wire import Reply, Request, json_reply

PREFIX = "/pitrade/api"
PORTFOLIO_PATH = PREFIX + "/portfolio"
PROPERTIES_PATH = PREFIX + "/portfolio-properties"
MAX_LIFETIME = 900  # the seed's 15 minutes
FUTURE_IAT = 60  # seconds of clock difference tolerated on iat


def _unauthorized(message: str, outcome: str, account: str | None = None) -> Reply:
    return json_reply(401, {"error": message}, account=account, outcome=outcome)


def handle(state: State, request: Request) -> Reply:
    if request.path not in (PORTFOLIO_PATH, PROPERTIES_PATH):
        return json_reply(404, {"error": "Not Found"}, outcome="not_found")
    if request.method != "GET":
        return json_reply(405, {"error": "Method Not Allowed"}, outcome="bad_method")
    result = authenticate(state, request)
    if isinstance(result, Reply):
        return result
    account = result
    fault = state.take_fault(account.name)
    if fault is not None:
        return fault_reply(state, account, fault, state.clock(), request)
    body = portfolio(state, account) if request.path == PORTFOLIO_PATH else properties(account)
    return json_reply(200, body, account=account.name)


def authenticate(state: State, request: Request) -> FakeAccount | Reply:
    header = request.header("Authorization")
    if not header:
        return _unauthorized("Unauthorized", "missing_auth")
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer" or not token:
        return _unauthorized("Invalid Token", "bad_token")
    token = token.strip()
    try:
        _, unverified = jwt_hs256.unverified(token)
    except jwt_hs256.InvalidToken:
        return _unauthorized("Invalid Token", "bad_token")
    client_id = unverified.get("clientId")
    account = state.find("pitrade", "client_id", client_id) if isinstance(client_id, str) else None
    if account is None:
        return _unauthorized("Invalid Token", "unknown_key")
    name = account.name
    try:
        claims = jwt_hs256.verify(token, account.credentials["secret"].encode())
        iat = jwt_hs256.numeric_claim(claims, "iat")
        exp = jwt_hs256.numeric_claim(claims, "exp")
    except jwt_hs256.InvalidToken:
        return _unauthorized("Invalid Token", "bad_signature", name)
    if not 0 < exp - iat <= MAX_LIFETIME:
        return _unauthorized("Invalid Token", "bad_lifetime", name)
    now = state.clock()
    if iat > now + FUTURE_IAT:
        return _unauthorized("Invalid Token", "clock_skew", name)
    if now >= exp:
        return _unauthorized("Token Expired", "expired_token", name)
    return account


def portfolio(state: State, account: FakeAccount) -> list[dict[str, object]]:
    # Decimals stay Decimals: the JSON writer emits their exact text as JSON numbers.
    rows: list[dict[str, object]] = []
    for ticker, balance in state.snapshot(account).items():
        rows.append(
            {
                "ticker": ticker,
                "quantity": balance.total,
                "averagePurchasePrice": account.cost_basis.get(ticker),
            }
        )
    return rows


def account_id(account: FakeAccount) -> str:
    """A stable made-up partner account id."""
    return "PT-" + hashlib.sha256(account.name.encode()).hexdigest()[:10].upper()


def properties(account: FakeAccount) -> dict[str, object]:
    cash: Decimal = account.cash
    return {
        "availableBalance": cash,
        "currency": account.currency,
        "accountId": account_id(account),
        "updatedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }


CREDENTIALS = ("client_id", "secret")
TICKERS = ("AAPL", "MSFT", "VOO", "NVDA", "GOOGL", "TSLA", "AMZN", "META")


def config_items(account: FakeAccount) -> list[tuple[str, str]]:
    return required(account, CREDENTIALS)


def expected_holdings(account: FakeAccount) -> list[Expected]:
    rows = [holding(account, ticker.upper(), "stock", b.total, b.total, Decimal(0))
            for ticker, b in account.balances.items()]
    rows.append(holding(account, account.currency, "fiat", account.cash, account.cash, None))
    return rows


def with_amount(account: FakeAccount, amount: str, now: float) -> Reply:
    # Every request counts, so /portfolio-properties gets the same (wrong) list.
    return json_reply(200, [{"ticker": "AAPL", "quantity": amount}])


def demo_accounts() -> list[FakeAccount]:
    return [FakeAccount(
        name="demo-pitrade",
        source="pitrade",
        credentials={
            "client_id": "demo-pitrade-client",
            "secret": "demo-pitrade-secret-3f61ab92c4e0d7a5",
        },
        balances={
            "AAPL": FakeBalance(Decimal("10")),
            "MSFT": FakeBalance(Decimal("4")),
            "VOO": FakeBalance(Decimal("2.5")),
        },
        cash=Decimal("2500.50"),
        currency="USD",
        cost_basis={"AAPL": Decimal("145.00"), "MSFT": Decimal("310.25"),
                    "VOO": Decimal("402.17")},
    )]


def e2e_accounts(tag: str) -> list[FakeAccount]:
    return [FakeAccount(
        "pt", "pitrade", {"client_id": "partner-1", "secret": f"pt-secret{tag}"},
        {"AAPL": FakeBalance(Decimal(10)), "VOO": FakeBalance(HUGE)},
        cash=Decimal("2500.50"), cost_basis={"AAPL": Decimal("145.00"), "VOO": TINY},
    )]


def make(variant: str, name: str, tag: str, amounts: Sequence[Decimal]) -> FakeAccount:
    held = balances(TICKERS, amounts)
    return FakeAccount(
        name, "pitrade",
        # HS256 wants a secret of at least 32 bytes.
        {"client_id": f"{tag}-pitrade-client", "secret": f"{tag}-pitrade-secret-4b1d8e2f0a9c"},
        held,
        cash=Decimal(1000) + sum(amounts, Decimal(0)),
        cost_basis={t: Decimal(100 + 10 * j) + amounts[j] for j, t in enumerate(held)},
    )


FAKE = Fake(
    source="pitrade",
    prefix=PREFIX,
    handle=handle,
    key_fields=("client_id",),
    config_items=config_items,
    poll_paths=(PORTFOLIO_PATH.removeprefix(PREFIX), PROPERTIES_PATH.removeprefix(PREFIX)),
    expected_holdings=expected_holdings,
    api_error=parameter_error,
    with_amount=with_amount,
    demo_accounts=demo_accounts,
    e2e_accounts=e2e_accounts,
    variants=("",),
    make=make,
)
