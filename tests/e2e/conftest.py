"""End-to-end fixtures: a sandbox with one account per source and auth scheme, a config
pointing at it, and the real command line run in-process."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aggregator.cli import main
from aggregator.sandbox import FAKES, FakeAccount, Sandbox, account_tables, e2e_accounts
from aggregator.sandbox.fake import Expected

AMOUNT_COLUMNS = ("account", "source", "asset", "kind", "total", "available", "locked")


def accounts(tag: str = "") -> list[FakeAccount]:
    """Every fake exchange's test accounts (one per auth scheme and envelope); ``tag`` goes
    into every credential."""
    return e2e_accounts(tag)


def expected_holdings(account: FakeAccount) -> list[Expected]:
    """What `holdings --format json` must show for ``account``, per SOURCES.md's mapping."""
    rows = FAKES[account.source].expected_holdings(account)
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


def poll_then_holdings(cli: Cli, config: Path, sandbox: Sandbox) -> list[dict[str, object]]:
    """`poll` every account, then check `holdings --format json` against what each fake
    says its accounts hold, exactly; the rows as shown."""
    result = cli("--config", str(config), "poll")
    assert result.code == 0, result.out + result.err
    assert len(result.out.splitlines()) == len(sandbox.accounts())  # one line per account
    shown = cli("--config", str(config), "holdings", "--format", "json")
    assert shown.code == 0, shown.err
    rows: list[dict[str, object]] = json.loads(shown.out)
    expected = [r for a in sandbox.accounts() for r in expected_holdings(a)]
    assert [{k: r[k] for k in AMOUNT_COLUMNS} for r in rows] == sorted(
        expected, key=lambda r: (str(r["account"]), str(r["asset"])))
    assert {r["source"] for r in rows} == {a.source for a in sandbox.accounts()}
    assert all(str(r["observed_at"]).endswith("Z") for r in rows)
    return rows


def token_command(token: str) -> str:
    """A TOML array for a token_command that prints ``token``."""
    return f'["{sys.executable}", "-c", "print(\'{token}\')"]'
