"""CPU per poll against the sandbox, and database bytes per unchanged poll.

    python bench/poll_cost.py [--polls 500] [--unchanged 1000]

The sandbox runs in its own process so that only the client's CPU is counted. For each
source: CPU per poll (sign + fetch + parse + normalize) on both HTTP transports, the same
with the database write, and the bytes 1,000 unchanged polls add on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from aggregator.config import load_config
from aggregator.polling.client import make_client
from aggregator.polling.poller import Account, poll_once, prepare
from aggregator.storage import database
from aggregator.storage.writes import record_poll

PG_ADMIN = os.environ.get("AGGREGATOR_TEST_PG_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def start_sandbox(folder: Path) -> tuple[subprocess.Popen[str], Path]:
    accounts = folder / "accounts.toml"
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator.sandbox", "--scenario", "demo",
         "--config-out", str(accounts)],
        stdout=subprocess.PIPE, text=True, cwd=folder,
    )
    assert process.stdout is not None
    json.loads(process.stdout.readline())
    return process, accounts


def write_config(folder: Path, accounts: Path, url: str) -> Path:
    path = folder / f"config-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(f'[database]\nurl = "{url}"\n\n' + accounts.read_text())
    return path


async def cpu_per_poll(account: Account, transport: str, polls: int,
                       engine: Engine | None) -> float:
    async with make_client(transport=transport) as client:
        for _ in range(20):  # warm up: connections, token, caches
            await poll_once(client, account)
        start = time.process_time()
        for _ in range(polls):
            record = await poll_once(client, account)
            assert record.error_kind is None, record.error_message
            if engine is not None:
                record_poll(engine, record)
        return (time.process_time() - start) / polls * 1000


def checkpoint(engine: Engine) -> None:
    """Move the SQLite WAL into the database file, so file sizes compare."""
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def sqlite_bytes(engine: Engine) -> int:
    path = Path(str(engine.url.database))
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def pg_bytes(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'")).scalar_one())


async def unchanged_bytes(account: Account, url: str, polls: int,
                          measure: Callable[[Engine], int]) -> int:
    engine = database.open_database(url)
    database.upgrade(engine)
    async with make_client() as client:
        record_poll(engine, await poll_once(client, account))
        checkpoint(engine)
        before = measure(engine)
        for _ in range(polls):
            record_poll(engine, await poll_once(client, account))
        checkpoint(engine)
        after = measure(engine)
    engine.dispose()
    return int(after) - int(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=500)
    parser.add_argument("--unchanged", type=int, default=1000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="aggregator-bench-"))
    sandbox, accounts = start_sandbox(folder)
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        settings = load_config(write_config(folder, accounts, "sqlite://"))
        print(f"{args.polls} polls per case after 20 warm-up polls; sandbox in its own "
              f"process; CPU ms per poll (time.process_time)\n")
        print(f"{'account':<22}{'httpx':>8}{'aiohttp':>9}{'+sqlite':>9}{'+pg':>8}"
              f"{'B/unchanged sqlite':>20}{'B/unchanged pg':>16}")
        for config in settings.accounts:
            account = prepare(config)
            figures = [asyncio.run(cpu_per_poll(account, t, args.polls, None))
                       for t in ("httpx", "aiohttp")]
            sqlite_path = folder / f"{config.name}.db"
            engine = database.open_database(f"sqlite:///{sqlite_path}")
            database.upgrade(engine)
            figures.append(asyncio.run(cpu_per_poll(account, "httpx", args.polls, engine)))
            engine.dispose()
            name = f"bench_{uuid.uuid4().hex[:10]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            pg_url = admin.url.set(database=name).render_as_string(hide_password=False)
            try:
                engine = database.open_database(pg_url)
                database.upgrade(engine)
                figures.append(asyncio.run(cpu_per_poll(account, "httpx", args.polls, engine)))
                engine.dispose()
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                size_db = folder / f"{config.name}-size.db"
                sizes = [
                    asyncio.run(unchanged_bytes(account, f"sqlite:///{size_db}", args.unchanged,
                                                sqlite_bytes)),
                    asyncio.run(unchanged_bytes(account, pg_url, args.unchanged, pg_bytes)),
                ]
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            print(f"{config.name:<22}{figures[0]:>8.2f}{figures[1]:>9.2f}{figures[2]:>9.2f}"
                  f"{figures[3]:>8.2f}{sizes[0] / args.unchanged:>20.1f}"
                  f"{sizes[1] / args.unchanged:>16.1f}")
    finally:
        sandbox.terminate()
        sandbox.wait(10)
        admin.dispose()


if __name__ == "__main__":
    main()
