"""End-to-end fixtures: a sandbox with one account per source and auth scheme, a config
pointing at it, and the real command line run in-process."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from aggregator.amounts import canonical
from aggregator.cli import main
from aggregator.sandbox import FakeAccount, FakeBalance, Sandbox, account_tables

TINY = Decimal("0.000000000000000001")
HUGE = Decimal("123456789.123456789012345678")


def accounts(tag: str = "") -> list[FakeAccount]:
    """One account per source and auth scheme; ``tag`` goes into every credential."""
    return [
        FakeAccount("bp", "bitopro",
                    {"api_key": f"bp-key{tag}", "api_secret": f"bp-secret{tag}",
                     "identity": "me@example.com"},
                    {"btc": FakeBalance(HUGE, available=HUGE - 1),
                     "eth": FakeBalance(TINY), "twd": FakeBalance(Decimal("152340.5"))}),
        FakeAccount("bz", "bitz", {"api_key": f"bz-key{tag}", "api_secret": f"bz-secret{tag}"},
                    {"usdt": FakeBalance(Decimal("500.25"), Decimal("400.25"), Decimal(100)),
                     "btc": FakeBalance(TINY)}),
        FakeAccount("zb", "bitzoom", {"auth": "bearer", "user_id": f"4242{tag}"},
                    {"USDT": FakeBalance(HUGE), "BTC": FakeBalance(TINY, TINY)}),
        FakeAccount("zh", "bitzoom",
                    {"auth": "hmac", "api_key": f"zh-key{tag}", "api_secret": f"zh-secret{tag}"},
                    {"USDT": FakeBalance(Decimal("250.75"), Decimal("200.75"))},
                    envelope="success"),
        FakeAccount("pt", "pitrade", {"client_id": "partner-1", "secret": f"pt-secret{tag}"},
                    {"AAPL": FakeBalance(Decimal(10)), "VOO": FakeBalance(HUGE)},
                    cash=Decimal("2500.50"), cost_basis={"AAPL": Decimal("145.00"),
                                                         "VOO": TINY}),
    ]


def expected_holdings(account: FakeAccount) -> list[dict[str, str | None]]:
    """What `holdings --format json` must show for ``account``, per SOURCES.md's mapping."""
    rows: list[dict[str, str | None]] = []

    def row(asset: str, kind: str, total: Decimal, available: Decimal | None,
            locked: Decimal | None) -> None:
        rows.append({"account": account.name, "source": account.source, "asset": asset,
                     "kind": kind, "total": canonical(total),
                     "available": None if available is None else canonical(available),
                     "locked": None if locked is None else canonical(locked)})

    for asset, balance in account.balances.items():
        total, available, locked = balance.resolved()
        symbol = asset.upper()
        if account.source == "bitopro":
            row(symbol, "fiat" if symbol == "TWD" else "crypto", total, available, locked)
        elif account.source == "bitz":
            row(symbol, "crypto", total, available, locked)
        elif account.source == "bitzoom":
            row(symbol, "crypto", total, available, None)
        else:
            row(symbol, "stock", total, total, Decimal(0))
    if account.source == "pitrade":
        row(account.currency, "fiat", account.cash, account.cash, None)
    return sorted(rows, key=lambda r: (str(r["account"]), str(r["asset"])))


@dataclass
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run `aggregator ARGS...` in-process and capture what it prints."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(accounts()) as running:
        yield running


def write_config(path: Path, sandbox: Sandbox, db_url: str, fakes: list[FakeAccount],
                 extra: str = "") -> Path:
    path.write_text(f'[database]\nurl = "{db_url}"\n[poll]\ndeadline = "10s"\n{extra}\n'
                    + account_tables(sandbox, fakes))
    return path


@pytest.fixture
def config(tmp_path: Path, sandbox: Sandbox, db_url: str) -> Path:
    return write_config(tmp_path / "config.toml", sandbox, db_url, sandbox.accounts())


def token_command(token: str) -> str:
    """A TOML array for a token_command that prints ``token``."""
    return f'["{sys.executable}", "-c", "print(\'{token}\')"]'
