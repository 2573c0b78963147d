"""A built-in fake of every exchange, for the demo, end-to-end tests and benchmarks.

It checks every signature with its own code (never ``aggregator.auth``), so a client bug
shows as a refusal, exactly as it would against the real exchange.
"""

from aggregator.sandbox.accounts import FakeAccount, FakeBalance, RequestLog
from aggregator.sandbox.core import Sandbox
from aggregator.sandbox.fake import Fake
from aggregator.sandbox.price_board import PriceBoard
from aggregator.sandbox.price_fakes import (
    PRICE_FAKES,
    demo_prices,
    price_tables,
    write_manual_file,
)
from aggregator.sandbox.registry import FAKES
from aggregator.sandbox.scenarios import bench_accounts, demo_accounts, e2e_accounts
from aggregator.sandbox.tables import account_tables

__all__ = [
    "FAKES",
    "PRICE_FAKES",
    "Fake",
    "FakeAccount",
    "FakeBalance",
    "PriceBoard",
    "RequestLog",
    "Sandbox",
    "account_tables",
    "bench_accounts",
    "demo_accounts",
    "demo_prices",
    "e2e_accounts",
    "price_tables",
    "write_manual_file",
]
