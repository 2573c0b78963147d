"""`poll` against the sandbox for every source and auth scheme, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select, text

from aggregator.sandbox import FAKES, FakeAccount, FakeBalance, Sandbox
from aggregator.storage import database, queries
from aggregator.storage.tables import holdings, polls
from tests.e2e.conftest import Cli, accounts, poll_then_holdings, token_command, write_config


def holdings_json(cli: Cli, config: Path, *extra: str) -> list[dict[str, object]]:
    result = cli("--config", str(config), "holdings", "--format", "json", *extra)
    assert result.code == 0, result.err
    rows: list[dict[str, object]] = json.loads(result.out)
    return rows


def test_poll_then_holdings_equal_the_sandbox_exactly(
    cli: Cli, config: Path, sandbox: Sandbox
) -> None:
    rows = poll_then_holdings(cli, config, sandbox)
    assert {r["source"] for r in rows} == set(FAKES)  # every fake exchange, so every source
    costs = {r["asset"]: r["details"] for r in rows if r["account"] == "pt"}
    assert costs["AAPL"] == {"averagePurchasePrice": "145"}
    assert costs["VOO"] == {"averagePurchasePrice": "0.000000000000000001"}


def test_every_bitzoom_token_source_and_form(
    cli: Cli, tmp_path: Path, sandbox: Sandbox, db_url: str
) -> None:
    (bearer,) = [a for a in sandbox.accounts() if a.name == "zb"]
    config = write_config(tmp_path / "c.toml", sandbox, db_url, [bearer])
    text_ = config.read_text()
    for form in ("text", "json_string", "data_string", "data_token", "top_token"):
        sandbox.set_token_form(form)
        sandbox.expire_tokens()
        assert cli("--config", str(config), "poll").code == 0, form
    token = sandbox.issue_token("4242")
    fixed = text_.replace("user_id = '4242'", f"token = '{token}'")
    config.with_name("fixed.toml").write_text(fixed)
    assert cli("--config", str(config.with_name("fixed.toml")), "poll").code == 0
    command = text_.replace("user_id = '4242'",
                            f"token_command = {token_command(sandbox.issue_token('4242'))}")
    config.with_name("command.toml").write_text(command)
    assert cli("--config", str(config.with_name("command.toml")), "poll").code == 0


def test_expired_token_is_refreshed_once(cli: Cli, config: Path, sandbox: Sandbox) -> None:
    assert cli("--config", str(config), "poll", "--account", "zb").code == 0
    assert sandbox.count("/testtoken") == 1
    sandbox.expire_tokens()
    result = cli("--config", str(config), "poll", "--account", "zb")
    assert result.code == 0, result.out
    assert sandbox.count("/testtoken") == 2


def test_failures_are_stored_with_their_kind_and_body(
    cli: Cli, tmp_path: Path, sandbox: Sandbox, db_url: str
) -> None:
    fakes = accounts()
    # A wrong secret: the sandbox still knows the key, so the signature is what fails.
    fakes[0].credentials["api_secret"] = "not-the-secret"
    config = write_config(tmp_path / "c.toml", sandbox, db_url, fakes)
    token = sandbox.issue_token("4242")
    config.write_text(config.read_text().replace("user_id = '4242'", f"token = '{token}'"))
    sandbox.expire_tokens()  # a fixed token cannot be refreshed: token_expired
    sandbox.set_fault("bz", "malformed")
    sandbox.set_fault("zh", "wrong_shape")

    result = cli("--config", str(config), "poll")
    assert result.code == 1
    engine = database.open_database(db_url)
    try:
        latest = {p.account: p for p in queries.recent_polls(engine)}
        assert {a: (p.status, p.error_kind) for a, p in latest.items()} == {
            "bp": ("failed", "bad_credentials"),
            "bz": ("failed", "malformed"),
            "zb": ("failed", "token_expired"),
            "zh": ("failed", "schema"),
            "pt": ("ok", None),
        }
        bodies = {a: queries.responses_of(engine, p.id)[-1].body for a, p in latest.items()}
        assert b"Invalid signature" in bodies["bp"]
        assert bodies["bz"].startswith(b'{"data": [tru')
        assert b"-1002" in bodies["zb"]
        assert json.loads(bodies["zh"]) == {"result": {"balances": "n/a"}}
        rows = queries.holdings_at(engine)
        assert {r.account for r in rows} == {"pt"}  # the others wrote no holding
    finally:
        engine.dispose()
    for account in ("bp", "bz", "zb", "zh"):
        assert any(line.startswith(f"{account}: failed [") for line in result.out.splitlines())


def test_unchanged_polls_add_no_rows_and_one_change_adds_two(
    cli: Cli, config: Path, sandbox: Sandbox, db_url: str
) -> None:
    engine = database.open_database(db_url)

    def counts() -> tuple[int, int]:
        with engine.connect() as conn:
            return (conn.execute(select(func.count()).select_from(polls)).scalar_one(),
                    conn.execute(select(func.count()).select_from(holdings)).scalar_one())

    try:
        assert cli("--config", str(config), "poll").code == 0
        polls_1, holdings_1 = counts()
        assert cli("--config", str(config), "poll").code == 0
        assert counts() == (polls_1 + 5, holdings_1)

        sandbox.set_balance("bz", "usdt", FakeBalance(Decimal("600.25"), Decimal("500.25"),
                                                      Decimal(100)))
        assert cli("--config", str(config), "poll").code == 0
        assert counts() == (polls_1 + 10, holdings_1 + 1)
        with engine.connect() as conn:
            closed = conn.execute(text(
                "SELECT account, asset, total FROM holdings_history "
                "WHERE valid_to IS NOT NULL")).all()
        assert [(a, s, Decimal(t)) for a, s, t in closed] == [("bz", "USDT", Decimal("500.25"))]
        history = cli("--config", str(config), "history", "--account", "bz", "--asset", "usdt",
                      "--format", "json")
        intervals = json.loads(history.out)
        assert [(i["total"], i["valid_to"] is None) for i in intervals] == [
            ("500.25", False), ("600.25", True)]
        assert intervals[0]["valid_to"] == intervals[1]["valid_from"]
    finally:
        engine.dispose()


def test_holdings_at_a_past_time(cli: Cli, config: Path, sandbox: Sandbox) -> None:
    assert cli("--config", str(config), "poll", "--account", "pt").code == 0
    before = holdings_json(cli, config, "--account", "pt")
    sandbox.remove_asset("pt", "AAPL")
    assert cli("--config", str(config), "poll", "--account", "pt").code == 0
    now = holdings_json(cli, config, "--account", "pt")
    assert {r["asset"] for r in before} - {r["asset"] for r in now} == {"AAPL"}
    then = holdings_json(cli, config, "--account", "pt", "--at", str(before[0]["observed_at"]))
    assert [r["asset"] for r in then] == [r["asset"] for r in before]


def test_history_daily_and_csv(cli: Cli, config: Path, sandbox: Sandbox) -> None:
    assert cli("--config", str(config), "poll", "--account", "bz").code == 0
    result = cli("--config", str(config), "history", "--account", "bz", "--daily",
                 "--format", "csv")
    assert result.code == 0, result.err
    header, *rows = result.out.splitlines()
    assert header == "day,account,source,asset,kind,total,available,locked"
    assert len(rows) == 2  # today's end (so far) for USDT and BTC; no data on earlier days
    assert any(",USDT,crypto,500.25,400.25,100" in row for row in rows)


def test_report_command_for_today_is_partial(
    cli: Cli, config: Path, sandbox: Sandbox, tmp_path: Path
) -> None:
    assert cli("--config", str(config), "poll").code == 0
    today = datetime.now(UTC).date().isoformat()
    out = tmp_path / "out"
    result = cli("--config", str(config), "report", "--date", today, "--out", str(out))
    assert result.code == 0, result.err
    paths = [Path(line) for line in result.out.splitlines()]
    assert sorted(p.name for p in paths) == sorted(f"{today}.{e}" for e in ("html", "csv",
                                                                           "txt"))
    assert "partial" in (out / f"{today}.txt").read_text()
    rows = list(csv.DictReader((out / f"{today}.csv").open()))
    assert {(r["account"], r["asset"]) for r in rows} == {
        (a.name, asset.upper()) for a in sandbox.accounts() for asset in a.balances
    } | {("pt", "USD")}


def test_polls_and_raw_show_a_failed_answer(cli: Cli, config: Path, sandbox: Sandbox) -> None:
    sandbox.set_fault("bz", "malformed")
    assert cli("--config", str(config), "poll", "--account", "bz").code == 1
    listed = cli("--config", str(config), "polls", "--failed", "--format", "json")
    (failed,) = json.loads(listed.out)
    assert (failed["account"], failed["error_kind"]) == ("bz", "malformed")
    shown = cli("--config", str(config), "raw", str(failed["id"]))
    assert shown.code == 0
    assert shown.out.startswith('{"data": [tru')
    assert "/Assets/getUserAssets: HTTP 200" in shown.err
    assert cli("--config", str(config), "raw", "999999").code == 1


def test_the_configured_answer_size_limit_applies(cli: Cli, tmp_path: Path, sandbox: Sandbox,
                                                  sqlite_url: str) -> None:
    many = FakeAccount("many", "bitopro", {"api_key": "k", "api_secret": "s",
                                           "identity": "me@example.com"},
                       {f"c{i:03d}": FakeBalance(Decimal(i + 1)) for i in range(40)})
    sandbox.add(many)
    # The extra lines land in the [poll] table.
    path = write_config(tmp_path / "config.toml", sandbox, sqlite_url, [many],
                        'max_answer_size = "1KiB"')
    result = cli("--config", str(path), "poll")
    assert result.code == 1
    assert "failed [too_large]" in result.out, result.out
