"""Ready-made account sets: a small realistic demo portfolio and a benchmark fleet."""

from __future__ import annotations

from decimal import Decimal

from aggregator.sandbox.accounts import FakeAccount, FakeBalance

D = Decimal


def demo_accounts() -> list[FakeAccount]:
    """Five accounts, one per source and Bitzoom auth, with plausible amounts."""
    return [
        FakeAccount(
            name="demo-bitopro",
            source="bitopro",
            credentials={
                "api_key": "demo-bitopro-key-4c1e9a",
                "api_secret": "demo-bitopro-secret-8b2f71d0",
                "identity": "demo@example.com",
            },
            balances={
                "btc": FakeBalance(D("0.04815162"), D("0.04015162")),
                "eth": FakeBalance(D("1.25030000")),
                "twd": FakeBalance(D("152340"), D("150000")),
                "bito": FakeBalance(D("10001.5"), D("1.5"), D("10000")),
            },
        ),
        FakeAccount(
            name="demo-bitz",
            source="bitz",
            credentials={
                "api_key": "demo-bitz-key-2f9c7e31",
                "api_secret": "demo-bitz-secret-5a8d03b6",
            },
            balances={
                "btc": FakeBalance(D("0.01200000"), D("0.01000000")),
                "usdt": FakeBalance(D("845.37250000")),
                "eth": FakeBalance(D("0.50000000"), D("0.35000000")),
            },
        ),
        FakeAccount(
            name="demo-bitzoom",
            source="bitzoom",
            credentials={"auth": "bearer", "user_id": "demo-user-10086"},
            balances={
                "USDT": FakeBalance(D("1000.50000000"), D("900.50000000")),
                "BTC": FakeBalance(D("0.00250000")),
            },
        ),
        FakeAccount(
            name="demo-bitzoom-hmac",
            source="bitzoom",
            credentials={
                "auth": "hmac",
                "api_key": "demo-bitzoom-key-6d2a94",
                "api_secret": "demo-bitzoom-secret-0e7b35c8",
            },
            balances={
                "USDT": FakeBalance(D("250.75"), D("200.75")),
                "ETH": FakeBalance(D("0.8123")),
            },
            envelope="success",
        ),
        FakeAccount(
            name="demo-pitrade",
            source="pitrade",
            credentials={
                "client_id": "demo-pitrade-client",
                "secret": "demo-pitrade-secret-3f61ab92c4e0d7a5",
            },
            balances={
                "AAPL": FakeBalance(D("10")),
                "MSFT": FakeBalance(D("4")),
                "VOO": FakeBalance(D("2.5")),
            },
            cash=D("2500.50"),
            currency="USD",
            cost_basis={"AAPL": D("145.00"), "MSFT": D("310.25"), "VOO": D("402.17")},
        ),
    ]


_CRYPTO = ("btc", "eth", "usdt", "ltc", "xrp")
_TICKERS = ("AAPL", "MSFT", "VOO", "NVDA", "GOOGL")


def bench_accounts(n: int) -> list[FakeAccount]:
    """``n`` accounts: bitopro, bitz, bitzoom bearer, bitzoom hmac, pitrade in turn; 5 assets."""
    accounts = []
    for i in range(n):
        kind = i % 5
        name = f"bench-{i:05d}"
        # Distinct, deterministic amounts so a mix-up between accounts shows in a comparison.
        amounts = [D(f"{j + 1}.{i:05d}{j}") for j in range(5)]
        if kind == 0:
            accounts.append(
                FakeAccount(
                    name=name,
                    source="bitopro",
                    credentials={
                        "api_key": f"bench-bitopro-key-{i}",
                        "api_secret": f"bench-bitopro-secret-{i}",
                        "identity": f"bench{i}@example.com",
                    },
                    balances={a: FakeBalance(x) for a, x in zip(_CRYPTO, amounts, strict=True)},
                )
            )
        elif kind == 1:
            accounts.append(
                FakeAccount(
                    name=name,
                    source="bitz",
                    credentials={
                        "api_key": f"bench-bitz-key-{i}",
                        "api_secret": f"bench-bitz-secret-{i}",
                    },
                    balances={a: FakeBalance(x) for a, x in zip(_CRYPTO, amounts, strict=True)},
                )
            )
        elif kind in (2, 3):
            credentials = (
                {"auth": "bearer", "user_id": f"bench-user-{i}"}
                if kind == 2
                else {
                    "auth": "hmac",
                    "api_key": f"bench-bitzoom-key-{i}",
                    "api_secret": f"bench-bitzoom-secret-{i}",
                }
            )
            accounts.append(
                FakeAccount(
                    name=name,
                    source="bitzoom",
                    credentials=credentials,
                    balances={
                        a.upper(): FakeBalance(x) for a, x in zip(_CRYPTO, amounts, strict=True)
                    },
                    envelope="code" if kind == 2 else "success",
                )
            )
        else:
            accounts.append(
                FakeAccount(
                    name=name,
                    source="pitrade",
                    credentials={
                        "client_id": f"bench-pitrade-client-{i}",
                        "secret": f"bench-pitrade-secret-{i:06d}-4b1d8e2f0a9c",
                    },
                    balances={
                        t: FakeBalance(D(j + 1 + i % 7)) for j, t in enumerate(_TICKERS)
                    },
                    cash=D(f"{1000 + i}.25"),
                    cost_basis={
                        t: D(f"{100 + 10 * j}.{i % 100:02d}") for j, t in enumerate(_TICKERS)
                    },
                )
            )
    return accounts
