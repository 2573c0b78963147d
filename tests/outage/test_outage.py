"""The daemon under database outages: every poll made is stored, once, with its times."""

from __future__ import annotations

import contextlib
import itertools
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from aggregator.model import Holding, Kind, PollRecord, RawResponse
from aggregator.sandbox import Sandbox, account_tables
from aggregator.storage import codec
from aggregator.storage.spool import Spool
from aggregator.storage.types import to_millis
from tests.outage.conftest import (
    DB_TIMEOUT,
    Cluster,
    Daemon,
    fill,
    free_port,
    read_only,
    stop,
    wait_for,
)
from tests.scheduling.test_daemon import balance_times

POLL_LINE = re.compile(r"aggregator\.poll: ([a-z0-9_-]+): (ok|failed)")


def stored_polls(url: str) -> list[tuple[str, datetime, int]]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT a.name, p.started_at, p.attempt FROM polls p "
                "JOIN accounts a ON a.id = p.account_id ORDER BY p.id")).all()
    finally:
        engine.dispose()
    return [(r[0], r[1] if isinstance(r[1], datetime) else datetime.fromtimestamp(
        r[1] / 1000, UTC), r[2]) for r in rows]


def count_polls(url: str) -> int:
    try:
        return len(stored_polls(url))
    except Exception:
        return -1  # not reachable, or no schema yet


def spooled(folder: Path) -> int:
    path = folder / "spool.db"
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM spool").fetchone()[0])


def check_nothing_lost(url: str, err: str, sandbox: Sandbox, outage: tuple[float, float]
                       ) -> dict[str, int]:
    """Every logged poll is stored once; every answered request has its poll.

    ``outage`` is a span of time.monotonic(), as the sandbox's request log keeps it.
    """
    polls = stored_polls(url)
    assert len(polls) == len(set(polls)), "a poll was stored twice"
    stored = Counter(name for name, _, _ in polls)
    logged = Counter(m[1] for m in POLL_LINE.finditer(err))
    assert stored == logged, (stored, logged)
    requests = {name: len(times) for name, times in balance_times(sandbox).items()}
    for name, count in requests.items():
        # A poll in flight at SIGTERM is cancelled and writes nothing (at most one).
        assert 0 <= count - stored[name] <= 1, (name, count, stored[name])
    # Their own times: the polls made during the outage carry times inside it.
    # The sandbox logs time.monotonic(); the database has wall-clock times.
    offset = time.time() - time.monotonic()
    began, ended = (datetime.fromtimestamp(t + offset, UTC) for t in outage)
    during = [p for p in polls if began <= p[1] <= ended]
    answered = sum(1 for times in balance_times(sandbox).values() for t in times
                   if outage[0] <= t <= outage[1])
    assert len(during) >= answered - len(requests), (len(during), answered)
    # In order: each account's polls were written in the order they started.
    for name in stored:
        times = [started for account, started, _ in polls if account == name]
        assert times == sorted(times), name
    return {"during": len(during), "stored": len(polls)}


def outage_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "aggregator.storage" in line]


class Notifications:
    """A NOTIFY_SOCKET that keeps every message the daemon sends, read in a thread."""

    def __init__(self, folder: Path) -> None:
        self.path = str(folder / "notify.sock")
        self.messages: list[str] = []
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(self.path)
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.messages.append(self._socket.recv(4096).decode())

    def statuses(self) -> list[str]:
        return [line[7:] for m in self.messages for line in m.splitlines()
                if line.startswith("STATUS=")]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        # What the daemon sent last (STOPPING=1) may still wait in the socket.
        self._socket.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self.messages.append(self._socket.recv(4096).decode())
        self._socket.close()


def test_polls_made_while_postgresql_is_stopped_are_stored_afterwards(
        cluster: Cluster, daemon: Daemon, sandbox: Sandbox, tmp_path: Path) -> None:
    notify = Notifications(tmp_path)
    port = free_port()
    process = daemon(cluster.url, env={"NOTIFY_SOCKET": notify.path},
                     extra=f'[metrics]\nlisten = "127.0.0.1:{port}"')
    wait_for(lambda: count_polls(cluster.url) >= 5, 20, "first polls", process)
    cluster.stop()
    began = time.monotonic()
    time.sleep(OUTAGE)
    assert spooled(tmp_path) >= OUTAGE * 2
    ended = time.monotonic()
    # Honest health while it lasts: the status line leads with the database.
    during_outage = notify.statuses()[-1]
    found = re.match(r"database unavailable since \d\d:\d\dZ, \d+ polls spooled; "
                     r"5 accounts: (\d) ok, \d failing", during_outage)
    assert found, during_outage
    # Spooled polls are ok polls: the accounts are not failing, the database is away (one
    # poll may have timed out on a loaded machine).
    assert int(found[1]) >= 4, during_outage
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "aggregator_database_up 0.0" in metrics
    waiting = re.search(r"^aggregator_spool_polls (\d+)", metrics, re.MULTILINE)
    assert waiting and int(waiting[1]) >= OUTAGE * 2, metrics
    assert "aggregator_spool_oldest_timestamp_seconds " in metrics
    cluster.start()
    wait_for(lambda: spooled(tmp_path) == 0, 30, "the replay")
    time.sleep(1.5)
    last_metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "aggregator_database_up 1.0" in last_metrics
    code, err = stop(process)
    notify.close()
    assert code == 0, err
    assert notify.statuses()[-1].startswith("stopping; 5 accounts:"), notify.statuses()
    assert "database unavailable" not in notify.statuses()[-1]
    assert re.search(r"^aggregator_spool_replayed_total [1-9]", last_metrics, re.MULTILINE)
    figures = check_nothing_lost(cluster.url, err, sandbox, (began, ended))
    lines = outage_lines(err)
    assert sum("database unavailable" in line for line in lines) == 1, lines
    assert sum("available again" in line for line in lines) == 1, lines
    assert figures["during"] >= 4 * OUTAGE * 0.7, figures
    print(f"\nPostgreSQL stopped {OUTAGE:g}s: {figures['during']} polls during, 0 lost; "
          f"storage lines:\n" + "\n".join(lines))


OUTAGE = 10.0


@pytest.mark.slow
def test_a_30s_postgresql_outage_loses_nothing(cluster: Cluster, daemon: Daemon,
                                                sandbox: Sandbox, tmp_path: Path) -> None:
    global OUTAGE
    OUTAGE = 30.0
    try:
        test_polls_made_while_postgresql_is_stopped_are_stored_afterwards(
            cluster, daemon, sandbox, tmp_path)
    finally:
        OUTAGE = 10.0


def test_a_frozen_postgresql_turns_into_spooled_polls_within_seconds(
        cluster: Cluster, daemon: Daemon, sandbox: Sandbox, tmp_path: Path) -> None:
    process = daemon(cluster.url)
    wait_for(lambda: count_polls(cluster.url) >= 5, 20, "first polls", process)
    cluster.freeze()
    began = time.monotonic()
    try:
        # Within the writer's deadline (2 s) plus a poll interval, polls are on disk.
        wait_for(lambda: spooled(tmp_path) >= 1, 6, "spooling while frozen")
        first_spooled = time.monotonic() - began
        time.sleep(FROZEN)
        healthy = {name: [t for t in times if t >= began]
                   for name, times in balance_times(sandbox).items()}
    finally:
        cluster.thaw()
    ended = time.monotonic()
    wait_for(lambda: spooled(tmp_path) == 0, 30, "the replay")
    time.sleep(1)
    code, err = stop(process)
    assert code == 0, err
    # Polling never stalled: every account kept its 1 s cadence while the database hung.
    for name, times in healthy.items():
        assert len(times) >= FROZEN * 0.7, (name, len(times))
    figures = check_nothing_lost(cluster.url, err, sandbox, (began, ended))
    lines = outage_lines(err)
    assert sum("database unavailable" in line for line in lines) == 1, lines
    print(f"\nPostgreSQL frozen {FROZEN:g}s: first poll spooled after {first_spooled:.1f}s, "
          f"{figures['during']} polls during, 0 lost; storage lines:\n" + "\n".join(lines))


FROZEN = 10.0


def test_the_daemon_started_with_the_database_down_stores_its_polls_once_it_starts(
        cluster: Cluster, daemon: Daemon, sandbox: Sandbox, tmp_path: Path) -> None:
    cluster.stop()
    began = time.monotonic()
    process = daemon(cluster.url)
    wait_for(lambda: spooled(tmp_path) >= 10, 20, "spooling from the first poll")
    assert process.poll() is None  # still running, not exit 1
    ended = time.monotonic()
    cluster.start()
    wait_for(lambda: spooled(tmp_path) == 0, 30, "the replay")
    code, err = stop(process)
    assert code == 0, err
    figures = check_nothing_lost(cluster.url, err, sandbox, (began, ended))
    assert figures["during"] >= 10


def test_a_full_disk_loses_no_poll(small_disk: Path, daemon: Daemon, sandbox: Sandbox
                                   ) -> None:
    # The database and its spool on the same small disk, as with the default layout.
    url = f"sqlite:///{small_disk / 'holdings.db'}"
    process = daemon(url, spool=small_disk / "spool.db")
    wait_for(lambda: count_polls(url) >= 5, 20, "first polls", process)
    filler = fill(small_disk)
    began = time.monotonic()
    time.sleep(DISK_OUTAGE)
    ended = time.monotonic()
    filler.unlink()
    during = sum(1 for times in balance_times(sandbox).values() for t in times
                 if began <= t <= ended)
    wait_for(lambda: count_polls(url) >= during + 5, 30, "the replay", process)
    time.sleep(2)
    code, err = stop(process)
    assert code == 0, err
    figures = check_nothing_lost(url, err, sandbox, (began, ended))
    lines = outage_lines(err)
    assert any("in memory" in line for line in lines), lines  # the spool was full too
    print(f"\nDisk full {DISK_OUTAGE:g}s: {figures['during']} polls during, 0 lost; "
          "storage lines:\n" + "\n".join(lines))


def test_a_read_only_disk_loses_no_poll(small_disk: Path, daemon: Daemon, sandbox: Sandbox,
                                        tmp_path: Path) -> None:
    # Linux refuses to remount a filesystem read-only while SQLite holds its WAL open
    # for writing, so the disk is read-only from the start (an existing database on it).
    url = f"sqlite:///{small_disk / 'holdings.db'}"
    first = daemon(url, spool=small_disk / "spool.db")
    wait_for(lambda: count_polls(url) >= 5, 20, "first polls", first)
    assert stop(first)[0] == 0
    before = count_polls(url)
    read_only(small_disk, True)
    began = time.monotonic()
    try:
        process = daemon(url, spool=small_disk / "spool.db")
        time.sleep(DISK_OUTAGE)
    finally:
        read_only(small_disk, False)
    ended = time.monotonic()
    during = sum(1 for times in balance_times(sandbox).values() for t in times
                 if began <= t <= ended)
    wait_for(lambda: count_polls(url) >= before + during, 30, "the replay", process)
    time.sleep(2)
    code, err = stop(process)
    assert code == 0, err
    assert any("in memory" in line for line in outage_lines(err)), err
    polls = stored_polls(url)
    assert len(polls) == len(set(polls))
    assert len(polls) >= before + during


DISK_OUTAGE = 6.0


def spool_of(path: Path, records: list[PollRecord]) -> None:
    """A spool as a crashed daemon leaves it (written in one go: the test needs no fsyncs)."""
    Spool(path).load()  # creates the table
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.executemany("INSERT INTO spool (finished_ms, record) VALUES (?, ?)",
                         [(to_millis(r.finished_at), codec.encode(r)) for r in records])


def test_a_crash_during_replay_loses_and_duplicates_nothing(
        cluster: Cluster, daemon: Daemon, tmp_path: Path) -> None:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    records = []
    for i in range(REPLAYED):
        at = t0 + timedelta(seconds=i)
        amount = Decimal(i // 7)  # a change every 7th poll
        records.append(PollRecord(
            f"acct-{i % 3}", "bitopro", at, at + timedelta(milliseconds=5),
            [Holding("BTC", Kind.CRYPTO, amount, amount, Decimal(0))],
            [RawResponse("/accounts/balance", 200, b'{"data":[]}', "application/json")]))
    spool_of(tmp_path / "spool.db", records)
    # A long interval: the replay is almost all the daemon does.
    first = daemon(cluster.url, interval="1h")
    wait_for(lambda: count_polls(cluster.url) >= REPLAYED // 4, 60, "part of the replay",
             first)
    first.kill()
    first.communicate(timeout=10)
    partial = count_polls(cluster.url)
    assert partial < REPLAYED + 5, "the crash came too late to be during the replay"
    second = daemon(cluster.url, interval="1h")
    wait_for(lambda: spooled(tmp_path) == 0, 60, "the rest of the replay", second)
    assert stop(second)[0] == 0
    stored = [p for p in stored_polls(cluster.url) if p[0].startswith("acct-")]
    assert len(stored) == REPLAYED == len(set(stored))
    for name in ("acct-0", "acct-1", "acct-2"):
        times = [started for account, started, _ in stored if account == name]
        assert times == sorted(times)
    engine = create_engine(cluster.url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            history = conn.execute(text(
                "SELECT account, total, valid_from, valid_to FROM holdings_history "
                "WHERE account LIKE 'acct-%' ORDER BY account, valid_from")).all()
    finally:
        engine.dispose()
    for name in ("acct-0", "acct-1", "acct-2"):
        mine = [r for r in history if r.account == name]
        expected = [r for r in records if r.account == name]
        # One interval per distinct consecutive amount, back to back, the last one open.
        amounts = [r.holdings[0].total for r in expected]  # type: ignore[index]
        runs = [a for k, a in enumerate(amounts) if k == 0 or a != amounts[k - 1]]
        assert [r.total for r in mine] == runs
        assert all(a.valid_to == b.valid_from for a, b in itertools.pairwise(mine))
        assert mine[-1].valid_to is None
    print(f"\ncrash during replay: killed after {partial} of {REPLAYED} polls, "
          f"all {REPLAYED} stored once after the restart")


REPLAYED = 1500


def test_poll_with_the_database_down_spools_and_the_next_poll_stores_it(
        cluster: Cluster, sandbox: Sandbox, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{cluster.url}"\ntimeout = "{DB_TIMEOUT}"\n'
        f'[spool]\npath = "{tmp_path / "spool.db"}"\n'
        + account_tables(sandbox, sandbox.accounts()))

    def poll() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "aggregator", "--config", str(config),
                               "poll"], capture_output=True, text=True, timeout=60)

    cluster.stop()
    down = poll()
    assert down.returncode == 1
    assert down.stdout.count(", spooled") == len(sandbox.accounts()), down.stdout
    assert "database unavailable: 5 records wait in" in down.stderr, down.stderr
    assert "Traceback" not in down.stderr
    assert spooled(tmp_path) == 5
    cluster.start()
    up = poll()
    assert up.returncode == 0, up.stderr
    assert spooled(tmp_path) == 0
    names = Counter(name for name, _, _ in stored_polls(cluster.url))
    assert names == {a.name: 2 for a in sandbox.accounts()}
