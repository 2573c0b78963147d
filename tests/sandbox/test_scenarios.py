from __future__ import annotations

import tomllib
from decimal import Decimal

import pytest

from aggregator.sandbox import (
    FakeAccount,
    FakeBalance,
    Sandbox,
    account_tables,
    bench_accounts,
    demo_accounts,
)
from aggregator.sandbox.tables import toml_string


def test_demo_accounts() -> None:
    accounts = demo_accounts()
    assert [a.source for a in accounts] == ["bitopro", "bitz", "bitzoom", "bitzoom", "pitrade"]
    assert {a.credentials.get("auth") for a in accounts if a.source == "bitzoom"} == {
        "bearer", "hmac"
    }
    hmac_account = next(a for a in accounts if a.credentials.get("auth") == "hmac")
    assert hmac_account.envelope == "success"
    assert set(hmac_account.balances) == {"USDT", "ETH"}
    bitopro = accounts[0]
    assert set(bitopro.balances) == {"btc", "eth", "twd", "bito"}
    assert bitopro.balances["bito"].resolved()[2] > 0
    pitrade = accounts[-1]
    assert pitrade.cash == Decimal("2500.50") and pitrade.currency == "USD"
    assert set(pitrade.cost_basis) == set(pitrade.balances) == {"AAPL", "MSFT", "VOO"}
    Sandbox(accounts)  # every account is servable


def test_bench_accounts_unique() -> None:
    accounts = bench_accounts(1000)
    assert len({a.name for a in accounts}) == 1000
    assert all(len(a.balances) == 5 for a in accounts)
    kinds = {(a.source, a.credentials.get("auth")) for a in accounts}
    assert kinds == {
        ("bitopro", None), ("bitz", None), ("bitzoom", "bearer"), ("bitzoom", "hmac"),
        ("pitrade", None),
    }
    secrets = [v for a in accounts for k, v in a.credentials.items() if k != "auth"]
    assert len(secrets) == len(set(secrets))
    Sandbox(accounts)  # no credential clashes


def test_duplicate_credential_refused() -> None:
    first, second = bench_accounts(6)[0], bench_accounts(6)[5]
    second.credentials["api_key"] = first.credentials["api_key"]
    with pytest.raises(ValueError, match="already used"):
        Sandbox([first, second])


def test_missing_credential_refused() -> None:
    with pytest.raises(ValueError, match="missing"):
        Sandbox([FakeAccount("x", "bitz", {"api_key": "k"}, {})])


def test_account_tables_round_trip() -> None:
    sandbox = Sandbox(demo_accounts())
    sandbox.url = "http://127.0.0.1:9"
    parsed = tomllib.loads(account_tables(sandbox, demo_accounts()))["accounts"]
    assert parsed[0] == {
        "name": "demo-bitopro",
        "source": "bitopro",
        "base_url": "http://127.0.0.1:9/bitopro/v3",
        "api_key": "demo-bitopro-key-4c1e9a",
        "api_secret": "demo-bitopro-secret-8b2f71d0",
        "identity": "demo@example.com",
    }
    assert parsed[2]["auth"] == "bearer" and "user_id" in parsed[2]
    assert parsed[3]["auth"] == "hmac" and {"api_key", "api_secret"} <= set(parsed[3])
    assert set(parsed[4]) == {"name", "source", "base_url", "client_id", "secret"}


@pytest.mark.parametrize(
    "value", ["plain", "it's", 'quote " and \\ back', "tab\tand\nnewline\x7f", "ünï"]
)
def test_toml_string_escaping(value: str) -> None:
    assert tomllib.loads(f"v = {toml_string(value)}")["v"] == value


def test_account_tables_load_in_aggregator_config(tmp_path: object) -> None:
    config = pytest.importorskip("aggregator.config")
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    sandbox = Sandbox(demo_accounts())
    sandbox.url = "http://127.0.0.1:9"
    path = tmp_path / "config.toml"
    path.write_text(account_tables(sandbox, demo_accounts()))
    settings = config.load_config(path, environ={})
    assert [a.name for a in settings.accounts] == [a.name for a in demo_accounts()]


def test_drift_is_deterministic_and_small() -> None:
    def run(seed: int) -> list[tuple[str, str, Decimal]]:
        sandbox = Sandbox(bench_accounts(20), seed=seed)
        before = {(a.name, k): b.total for a in sandbox.accounts() for k, b in a.balances.items()}
        sandbox.drift()
        after = {(a.name, k): b.total for a in sandbox.accounts() for k, b in a.balances.items()}
        return [(n, k, after[(n, k)]) for (n, k) in before if before[(n, k)] != after[(n, k)]]

    changed = run(1)
    assert changed == run(1)
    assert 1 <= len(changed) <= 5
    originals = {
        (a.name, k): b.total for a in bench_accounts(20) for k, b in a.balances.items()
    }
    for name, asset, total in changed:
        old = originals[(name, asset)]
        assert abs(total - old) <= max(abs(old) / 50, Decimal(1))
        assert total.as_tuple().exponent == old.as_tuple().exponent


def test_set_balance_and_remove_asset(sandbox: Sandbox) -> None:
    sandbox.set_balance("bz", "eth", FakeBalance(Decimal("3")))
    assert sandbox.account("bz").balances["eth"].total == Decimal("3")
    sandbox.remove_asset("bz", "eth")
    assert "eth" not in sandbox.account("bz").balances


def test_drift_every_runs_in_background() -> None:
    import time

    with Sandbox(bench_accounts(5), drift_every=0.05) as sandbox:
        before = {(a.name, k): b.total for a in bench_accounts(5) for k, b in a.balances.items()}
        deadline = time.monotonic() + 3
        changed = False
        while not changed and time.monotonic() < deadline:
            time.sleep(0.05)
            changed = any(
                before[(a.name, k)] != b.total
                for a in sandbox.accounts()
                for k, b in a.balances.items()
            )
        assert changed
