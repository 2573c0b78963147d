from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from aggregator.sandbox import FakeAccount, FakeBalance, Sandbox

BITOPRO = FakeAccount(
    name="bp",
    source="bitopro",
    credentials={"api_key": "bp-key", "api_secret": "bp-secret", "identity": "me@example.com"},
    balances={
        "btc": FakeBalance(Decimal("0.000000000000000001")),
        "twd": FakeBalance(Decimal("123456789.123456789012345678"), Decimal("100")),
        "bito": FakeBalance(Decimal("10001"), Decimal("1.0"), Decimal("10000")),
    },
)
BITZ = FakeAccount(
    name="bz",
    source="bitz",
    credentials={"api_key": "bz-key", "api_secret": "bz-secret"},
    balances={
        "btc": FakeBalance(Decimal("0.5"), Decimal("0.4")),
        "usdt": FakeBalance(Decimal("123456789.123456789012345678")),
    },
)
BITZOOM_BEARER = FakeAccount(
    name="zb",
    source="bitzoom",
    credentials={"auth": "bearer", "user_id": "user-42"},
    balances={"USDT": FakeBalance(Decimal("1000.5"), Decimal("900.5"))},
)
BITZOOM_HMAC = FakeAccount(
    name="zh",
    source="bitzoom",
    credentials={"auth": "hmac", "api_key": "zh-key", "api_secret": "zh-secret"},
    balances={
        "USDT": FakeBalance(Decimal("0.000000000000000001")),
        "ETH": FakeBalance(Decimal("2")),
    },
    envelope="success",
)
PITRADE = FakeAccount(
    name="pt",
    source="pitrade",
    credentials={"client_id": "pt-client", "secret": "pt-secret-0123456789abcdef0123456789"},
    balances={
        "AAPL": FakeBalance(Decimal("10")),
        "TINY": FakeBalance(Decimal("0.000000000000000001")),
    },
    cash=Decimal("123456789.123456789012345678"),
    cost_basis={"AAPL": Decimal("145.00"), "TINY": Decimal("123456789.123456789012345678")},
)


def fresh_accounts() -> list[FakeAccount]:
    # Copies, so one test's changes never leak into the next.
    import copy

    return [copy.deepcopy(a) for a in (BITOPRO, BITZ, BITZOOM_BEARER, BITZOOM_HMAC, PITRADE)]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(fresh_accounts()) as sb:
        yield sb


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c
