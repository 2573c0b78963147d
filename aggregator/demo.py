"""`aggregator demo`: the whole path against built-in sandbox exchanges, no credentials."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

from sqlalchemy import Engine

from aggregator.config import load_config
from aggregator.output import HOLDING_COLUMNS, render
from aggregator.sandbox import Sandbox, account_tables
from aggregator.sandbox.scenarios import demo_accounts
from aggregator.scheduling.daemon import run_daemon
from aggregator.storage import database, queries

CHANGE_COLUMNS = ("account", "asset", "before", "after", "at")


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
        + account_tables(sandbox, demo_accounts()),
        encoding="utf-8",
    )
    return path


def run_demo(folder: Path, duration: float | None = 10.0, interval: float = 2.0) -> int:
    """Run the daemon against the sandbox for ``duration`` seconds (None: until stopped)."""
    with Sandbox(demo_accounts(), seed=7, drift_every=max(interval * 1.5, 1.0)) as sandbox:
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
