"""bench/peer_compare.py's pieces: ccxt stays a bench extra, both programs poll one fake."""

from __future__ import annotations

import asyncio
import sys
import tomllib
from argparse import Namespace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from aggregator.config import load_config
from aggregator.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import peer_compare  # noqa: E402


def test_ccxt_is_only_a_bench_extra() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert not [d for d in project["dependencies"] if d.lower().startswith("ccxt")]
    assert [name for name, deps in extras.items()
            if any(d.lower().startswith("ccxt") for d in deps)] == ["bench"]


def test_our_config_names_every_account(tmp_path: Path) -> None:
    accounts = peer_compare.bitopro_accounts(3)
    assert len({a.credentials["api_key"] for a in accounts}) == 3
    assert all(len(a.balances) == 5 and a.ccxt_payload for a in accounts)
    with Sandbox(accounts) as sandbox:
        config = peer_compare.our_config(tmp_path, f"sqlite:///{tmp_path}/x.db", sandbox.url,
                                         accounts, 2.0)
        settings = load_config(config, need_accounts=True)
        assert [a.name for a in settings.accounts] == [a.name for a in accounts]
        assert settings.interval.seconds == 2.0


def test_peer_polls_and_stores_a_snapshot_per_asset(tmp_path: Path) -> None:
    pytest.importorskip("ccxt", reason="ccxt is in the bench extra only")
    import peer_ccxt

    accounts = peer_compare.bitopro_accounts(2)
    store = peer_compare.Store("sqlite", tmp_path, "peer")
    url = store.url
    with Sandbox(accounts) as sandbox:
        spec = peer_compare.peer_accounts(tmp_path, sandbox.url, accounts)
        peer = peer_ccxt.Peer(Namespace(accounts=spec, database=url, interval=1.0))

        async def two_polls_each() -> None:
            run = asyncio.create_task(peer.run())
            while peer.stored < 4:
                await asyncio.sleep(0.05)
            peer.stop.set()
            await run

        asyncio.run(asyncio.wait_for(two_polls_each(), 10))
        assert sandbox.count("/accounts/balance") == sum(
            1 for r in sandbox.requests if r.outcome == "ok")
    assert peer.failed == {}
    with create_engine(url).connect() as conn:
        rows = conn.execute(text("SELECT account, asset, total, free, used "
                                 "FROM balance_snapshots ORDER BY id")).all()
    try:
        assert peer_compare.peer_polls(store, None) == peer.stored >= 4
    finally:
        store.close()
    assert len(rows) == 5 * peer.stored
    first = accounts[0]
    btc = next(r for r in rows if r.account == first.name and r.asset == "BTC")
    # Through CCXT's floats, as the script a user writes: equal as numbers, not as text.
    assert float(btc.total) == float(first.balances["btc"].total)
    assert btc.used == 0


def test_sandbox_reports_the_first_request_of_the_watched_process(tmp_path: Path) -> None:
    sandbox = peer_compare.SandboxProcess(1, tmp_path)
    try:
        sandbox.send(f"watch {sandbox.process.pid}")
        httpx.get(sandbox.url + "/bitopro/v3/accounts/balance", timeout=5)
        first = sandbox.read(10)
        assert first["cpu"] > 0 and first["first_request"] > 0
        sandbox.send("count")
        assert sandbox.read(10)["outcomes"] == {"missing_auth": 1}
    finally:
        sandbox.close()
    assert sandbox.process.returncode == 0
