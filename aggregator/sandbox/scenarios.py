"""Ready-made account sets, from every registered fake: a demo portfolio and a benchmark fleet."""

from __future__ import annotations

from decimal import Decimal

from aggregator.sandbox.accounts import FakeAccount
from aggregator.sandbox.registry import FAKES

BENCH_ASSETS = 5


def demo_accounts() -> list[FakeAccount]:
    """Each fake's demo accounts (one per variant, plausible amounts), in registry order."""
    return [account for fake in FAKES.values() for account in fake.demo_accounts()]


def e2e_accounts(tag: str = "") -> list[FakeAccount]:
    """Each fake's end-to-end test accounts (amounts at the edges), ``tag`` in credentials."""
    return [account for fake in FAKES.values() for account in fake.e2e_accounts(tag)]


def bench_accounts(n: int) -> list[FakeAccount]:
    """``n`` accounts of every fake and variant in turn, 5 balance lines each."""
    kinds = [(fake, variant) for fake in FAKES.values() for variant in fake.variants]
    accounts = []
    for i in range(n):
        fake, variant = kinds[i % len(kinds)]
        name = f"bench-{i:05d}"
        # Distinct, deterministic amounts so a mix-up between accounts shows in a comparison.
        amounts = [Decimal(f"{j + 1}.{i:05d}{j}") for j in range(BENCH_ASSETS)]
        accounts.append(fake.make(variant, name, name, amounts))
    return accounts
