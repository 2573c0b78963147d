"""`aggregator demo`: the whole path against built-in sandbox exchanges, no credentials."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from sqlalchemy import Engine, text

from aggregator.config import load_config
from aggregator.output import HOLDING_COLUMNS, render
from aggregator.sandbox import Sandbox, account_tables, demo_prices, price_tables
from aggregator.sandbox.scenarios import demo_accounts
from aggregator.scheduling.daemon import run_daemon
from aggregator.storage import database, queries
from aggregator.storage.types import from_millis
from aggregator.valuation.rule import ValuationSettings, exact_total
from aggregator.valuation.value import ValueRow, value_at

CHANGE_COLUMNS = ("account", "asset", "before", "after", "at")
WORTH_COLUMNS = ("account", "asset", "amount", "price", "value", "price_source")
CURRENCY = "TWD"


def write_demo_config(folder: Path, sandbox: Sandbox, interval: float) -> Path:
    """A config for the sandbox accounts with an SQLite database in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.toml"
    database_path = (folder / "holdings.db").resolve()
    path.write_text(
        "# Written by `aggregator demo`: sandbox accounts on loopback, demo credentials only.\n"
        f'[database]\nurl = "sqlite:///{database_path.as_posix()}"\n\n'
        f'[schedule]\ninterval = "{max(interval, 1.0):g}s"\n\n'
        f'[report]\ndirectory = "{(folder / "reports").resolve().as_posix()}"\n\n'
        f'[valuation]\ncurrency = "{CURRENCY}"\n\n'
        # Prices once a minute: CoinGecko's public limit is 5 requests a minute.
        + price_tables(sandbox, interval="60s") + "\n"
        + account_tables(sandbox, demo_accounts()),
        encoding="utf-8",
    )
    return path


def run_demo(folder: Path, duration: float | None = 10.0, interval: float = 2.0) -> int:
    """Run the daemon against the sandbox for ``duration`` seconds (None: until stopped)."""
    with Sandbox(demo_accounts(), seed=7, drift_every=max(interval * 1.5, 1.0)) as sandbox:
        demo_prices(sandbox.prices)
        path = write_demo_config(folder, sandbox, interval)
        settings = load_config(path)
        until = "until Ctrl-C" if duration is None else f"for {duration:g}s"
        print(f"Polling {len(settings.accounts)} sandbox accounts every {interval:g}s {until}; "
              f"their balances drift now and then.", file=sys.stderr)
        asyncio.run(run_daemon(settings, duration=duration))
        engine = database.open_database(settings.database_url)
        try:
            print("Holdings now:")
            rows = [dataclasses.asdict(r) for r in queries.holdings_at(engine)]
            print(render(rows, HOLDING_COLUMNS, "table"))
            changes = _changes(engine, [a.name for a in settings.accounts])
            print("What changed while the demo ran:")
            print(render(changes, CHANGE_COLUMNS, "table"))
            _worth(engine, settings.valuation_settings())
        finally:
            engine.dispose()
    print(f"The config and database are in {folder}/. Query them, e.g.:\n"
          f"  aggregator --config {path} holdings --format json\n"
          f"  sqlite3 {folder / 'holdings.db'} 'SELECT * FROM holdings_history'",
          file=sys.stderr)
    return 0


def _changes(engine: Engine, accounts: list[str]) -> list[dict[str, object]]:
    """Every amount that changed from one interval to the next."""
    changes: list[dict[str, object]] = []
    for account in accounts:
        previous: dict[str, queries.IntervalRow] = {}
        for interval in queries.history(engine, account):
            before = previous.get(interval.asset)
            previous[interval.asset] = interval
            if before is not None and before.valid_to == interval.valid_from:
                changes.append({"account": account, "asset": interval.asset,
                                "before": before.total, "after": interval.total,
                                "at": interval.valid_from})
    return changes


def _worth(engine: Engine, valuation: ValuationSettings | None) -> None:
    """What it is all worth now, and how that moved since the first poll."""
    if valuation is None:
        return
    now = datetime.now(UTC)
    rows = value_at(engine, valuation, now)
    print(f"What it is worth now, in {valuation.currency}:")
    print(render([dataclasses.asdict(r) for r in rows], WORTH_COLUMNS, "table"))
    total, unpriced = _total(rows)
    print(f"Net worth: {_money(total)} {valuation.currency}"
          + (f" ({unpriced} of {len(rows)} holdings unpriced, not counted)" if unpriced
             else f" (all {len(rows)} holdings priced)"))
    began = _all_in(engine)
    if began is None or began >= now:
        return
    start, _ = _total(value_at(engine, valuation, began))
    change = total - start
    print(f"At {began.strftime('%H:%M:%SZ')}, once every account and price source had "
          f"answered: {_money(start)} {valuation.currency}; since then "
          f"{'+' if change >= 0 else ''}{_money(change)} {valuation.currency}.")


def _all_in(engine: Engine) -> datetime | None:
    """The first instant by which every account and price source had answered once."""
    with engine.connect() as conn:
        firsts = [*conn.execute(text(
            "SELECT min(finished_at) FROM polls WHERE status = 'ok' GROUP BY account_id")
        ).scalars(), *conn.execute(text(
            "SELECT min(finished_at) FROM price_fetches WHERE status = 'ok' AND kind = 'live' "
            "GROUP BY source")
        ).scalars()]
    if not firsts:
        return None
    return max(from_millis(int(f)) for f in firsts) + timedelta(milliseconds=1)


def _total(rows: list[ValueRow]) -> tuple[Decimal, int]:
    return exact_total([r.value for r in rows]), sum(1 for r in rows if r.value is None)


def _money(amount: Decimal) -> str:
    """Rounded half-even to 2 places for reading, with thousands separators."""
    return f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,}"
