"""The daemon at scale: one poll cycle of many sandbox accounts with injected latency.

    python bench/daemon_scale.py [--accounts 1000] [--latency 0.1]
                                 [--database sqlite|postgresql] [--rate-limits lifted|published]
                                 [--metrics] [--timeout 300]

The sandbox (``python -m aggregator.sandbox --scenario bench``) and the daemon
(``python -m aggregator --config CFG run``) run as separate processes, so the figures
are the daemon's own. The config polls every account every 10 minutes, so exactly one
cycle happens (the first poll of each account comes right after start-up). Measured:

- start -> first request: the earliest ``polls.started_at`` minus the moment the daemon
  process was started (wall clock, milliseconds);
- start -> first poll row: when a row first shows in ``polls`` (sampled every 50 ms);
- cycle wall time: start -> the last ``finished_at`` once every account has a row;
- CPU: user+sys of the daemon process (all threads) from /proc/PID/stat, from start to
  the end of the cycle (start-up included), and that divided by the number of accounts;
- RSS when idle: VmRSS from /proc/PID/status 2 s after the cycle ended (peak: VmHWM);
- failures: ``SELECT status, error_kind, count(*) FROM polls GROUP BY 1, 2``;
- stopping: SIGTERM to exit, and the exit status.

By default the published per-source rate limits are lifted in the config
(``--rate-limits lifted``): the sandbox serves every account of a source on one host,
so with the published limits (Bitzoom 5/s for 400 accounts) the cycle would measure the
limiter, not the daemon. ``--rate-limits published`` keeps them.

Linux only (/proc). On a timeout everything is killed and what was reached is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from aggregator.sources.registry import SOURCES

PG_ADMIN = os.environ.get("AGGREGATOR_TEST_PG_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SAMPLE_EVERY = 0.05  # seconds between database samples
IDLE = 2.0  # seconds of quiet after the cycle before RSS is read
STOP_TIMEOUT = 30.0  # seconds to wait for the daemon to exit after SIGTERM
CLK_TCK = os.sysconf("SC_CLK_TCK")
LIFTED = "1000000/s"


class TimedOut(Exception):
    pass


class Progress:
    """What the polls table shows: rows, accounts with a row, first start, last finish."""

    def __init__(self, rows: int = 0, accounts: int = 0, first_start: float | None = None,
                 last_finish: float | None = None) -> None:
        self.rows = rows
        self.accounts = accounts
        self.first_start = first_start  # epoch seconds
        self.last_finish = last_finish


PROGRESS_SQL = ("SELECT count(*), count(DISTINCT account_id), min(started_at), "
                "max(finished_at) FROM polls")
FAILURES_SQL = ("SELECT status, error_kind, count(*) FROM polls GROUP BY status, error_kind "
                "ORDER BY status, error_kind")
# Accounts whose latest row is ok: the polls that succeeded in the end.
LAST_OK_SQL = ("SELECT count(*) FROM polls p WHERE p.status = 'ok' AND p.id = "
               "(SELECT max(q.id) FROM polls q WHERE q.account_id = p.account_id)")


def epoch(value: Any) -> float | None:
    """A stored time as epoch seconds: integer milliseconds on SQLite, datetime elsewhere."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return int(value) / 1000


class Database:
    """The bench's read side; subclasses say how to query and which error means "no
    tables yet"."""

    url: str
    not_yet: type[Exception] = Exception

    def _query(self, sql: str) -> list[Any]:
        raise NotImplementedError

    def progress(self) -> Progress:
        try:
            rows, accounts, first, last = self._query(PROGRESS_SQL)[0]
        except self.not_yet:  # not created or not migrated yet
            return Progress()
        return Progress(rows, accounts, epoch(first), epoch(last))

    def failures(self) -> list[tuple[str, str | None, int]]:
        return [tuple(r) for r in self._query(FAILURES_SQL)]

    def ok_accounts(self) -> int:
        return int(self._query(LAST_OK_SQL)[0][0])

    def close(self) -> None:
        raise NotImplementedError


class SqliteDatabase(Database):
    """Read with a read-only sqlite3 connection, so the bench never takes a write lock."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "bench.db"
        self.url = f"sqlite:///{self.path}"
        self._conn: sqlite3.Connection | None = None

    def _query(self, sql: str) -> list[Any]:
        if self._conn is None:
            if not self.path.exists():
                raise sqlite3.OperationalError("no database yet")
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        try:
            return self._conn.execute(sql).fetchall()
        except sqlite3.OperationalError:
            self.close()  # reopen once the daemon has created the tables
            raise

    not_yet = sqlite3.OperationalError

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PostgresDatabase(Database):
    """A throwaway database on the test server, dropped at the end."""

    def __init__(self) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.exc import ProgrammingError

        self.not_yet = ProgrammingError  # relation "polls" does not exist yet
        self._admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        self.name = f"bench_daemon_{uuid.uuid4().hex[:10]}"
        self._run_admin(f'CREATE DATABASE "{self.name}"')
        self.url = self._admin.url.set(database=self.name).render_as_string(
            hide_password=False)
        self._engine = create_engine(self.url, pool_size=1)

    def _run_admin(self, sql: str) -> None:
        from sqlalchemy import text

        with self._admin.connect() as conn:
            conn.execute(text(sql))

    def _query(self, sql: str) -> list[Any]:
        from sqlalchemy import text

        with self._engine.connect() as conn:
            return list(conn.execute(text(sql)).all())

    def close(self) -> None:
        self._engine.dispose()
        with contextlib.suppress(Exception):
            self._run_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._admin.dispose()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process (all its threads), from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # fields from 3 (state) on
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime (14), stime (15)


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first line the process prints, or TimedOut."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimedOut("the sandbox printed nothing")
    return process.stdout.readline()


def stop(process: subprocess.Popen[Any] | None, timeout: float) -> tuple[int | None, float]:
    """SIGTERM, wait up to ``timeout``, then SIGKILL. Exit status and seconds taken."""
    if process is None:
        return None, 0.0
    if process.poll() is not None:
        return process.returncode, 0.0
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        status = process.wait(max(timeout, 0.1))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None, time.monotonic() - began
    return status, time.monotonic() - began


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.end = time.monotonic() + float(args.timeout)
        self.folder = Path(tempfile.mkdtemp(prefix="aggregator-daemon-bench-"))
        self.figures: list[tuple[str, str]] = []
        self.notes: list[str] = []
        self.sandbox: subprocess.Popen[str] | None = None
        self.daemon: subprocess.Popen[bytes] | None = None
        self.db: Database | None = None
        self.metrics_port: int | None = None

    def figure(self, name: str, value: str) -> None:
        self.figures.append((name, value))

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimedOut(f"--timeout {self.args.timeout:g}s reached")
        return left

    def wait_for(self, what: str, done: Callable[[], bool]) -> None:
        while not done():
            self.remaining()
            if self.daemon is not None and self.daemon.poll() is not None:
                raise RuntimeError(f"the daemon exited with status {self.daemon.returncode} "
                                   f"while waiting for {what}")
            time.sleep(SAMPLE_EVERY)

    def start_sandbox(self) -> Path:
        accounts = self.folder / "accounts.toml"
        self.sandbox = subprocess.Popen(
            [sys.executable, "-m", "aggregator.sandbox", "--scenario", "bench",
             "--accounts", str(self.args.accounts), "--latency", str(self.args.latency),
             "--config-out", str(accounts)],
            stdout=subprocess.PIPE, text=True, cwd=self.folder,
        )
        line = read_line(self.sandbox, self.remaining())
        if not line:
            raise RuntimeError(f"the sandbox exited with status {self.sandbox.wait()}")
        info = json.loads(line)
        if info["accounts"] != self.args.accounts:
            raise RuntimeError(f"the sandbox serves {info['accounts']} accounts")
        return accounts

    def write_config(self, accounts: Path, database_url: str) -> Path:
        lines = [
            "[database]", f"url = {json.dumps(database_url)}", "",
            "[schedule]", 'interval = "10m"', "",
            "[poll]", 'deadline = "60s"', "",
            "[report]", f"directory = {json.dumps(str(self.folder / 'reports'))}", "",
        ]
        if self.args.rate_limits == "lifted":
            lines += ["[rate_limits]", *(f'{s} = "{LIFTED}"' for s in SOURCES), ""]
        if self.args.metrics:
            import socket

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.metrics_port = s.getsockname()[1]
            lines += ["[metrics]", f'listen = "127.0.0.1:{self.metrics_port}"', ""]
        path = self.folder / "config.toml"
        path.write_text("\n".join(lines) + "\n" + accounts.read_text(), encoding="utf-8")
        return path

    def run(self) -> None:
        args = self.args
        self.figure("accounts", str(args.accounts))
        self.figure("injected latency", f"{args.latency * 1000:g} ms")
        self.figure("database", args.database)
        self.figure("rate limits", args.rate_limits)
        self.figure("machine", f"{os.cpu_count()} CPUs, load average "
                    f"{os.getloadavg()[0]:.2f} at start")
        accounts = self.start_sandbox()
        self.db = SqliteDatabase(self.folder) if args.database == "sqlite" else PostgresDatabase()
        config = self.write_config(accounts, self.db.url)
        log_path = self.folder / "daemon.log"
        with log_path.open("wb") as log_file:
            started_wall = time.time()
            started = time.monotonic()
            self.daemon = subprocess.Popen(
                [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
                cwd=self.folder, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
            )
        pid = self.daemon.pid
        n = args.accounts

        state = Progress()

        def sample() -> Progress:
            nonlocal state
            state = self.db.progress() if self.db is not None else Progress()
            return state

        self.wait_for("the first poll row", lambda: sample().rows > 0)
        first_row = time.monotonic() - started
        cpu_first_row = cpu_seconds(pid)
        assert state.first_start is not None
        self.figure("start -> first request", f"{state.first_start - started_wall:.3f} s")
        self.figure("start -> first poll row", f"{first_row:.3f} s (sampled every "
                    f"{SAMPLE_EVERY * 1000:g} ms)")
        self.figure("CPU until the first poll row", f"{cpu_first_row:.2f} s (start-up)")

        self.wait_for(f"a poll row for each of the {n} accounts",
                      lambda: sample().accounts >= n)
        # Retried attempts may still follow: wait until the table stops growing.
        rows, quiet_since = state.rows, time.monotonic()
        while time.monotonic() - quiet_since < IDLE:
            self.remaining()
            if sample().rows != rows:
                rows, quiet_since = state.rows, time.monotonic()
            time.sleep(SAMPLE_EVERY)
        assert state.last_finish is not None
        cycle = state.last_finish - started_wall
        # The 2 s of quiet above are idle time: the CPU figure is the cycle's.
        cpu = cpu_seconds(pid)
        rss = status_kib(pid, "VmRSS")
        peak = status_kib(pid, "VmHWM")
        self.figure("cycle wall time (start -> last finished_at)", f"{cycle:.2f} s")
        if state.first_start is not None:
            self.figure("  first request -> last finished_at",
                        f"{state.last_finish - state.first_start:.2f} s")
        self.figure("daemon CPU, start + cycle (user+sys)", f"{cpu:.2f} s")
        self.figure("daemon CPU per poll", f"{cpu / n * 1000:.2f} ms "
                    f"(excluding start-up: {(cpu - cpu_first_row) / n * 1000:.2f} ms)")
        if self.sandbox is not None:
            self.figure("sandbox CPU (its own process)", f"{cpu_seconds(self.sandbox.pid):.2f} s")
        self.figure("daemon RSS when idle", f"{rss / 1024:.1f} MiB (peak {peak / 1024:.1f} MiB)")
        self.figure("poll rows / accounts ok in the end",
                    f"{state.rows} / {self.db.ok_accounts() if self.db else '?'}")
        failures = self.db.failures() if self.db else []
        failed = [f"{kind}: {count}" for status, kind, count in failures if status != "ok"]
        self.figure("failed attempts", ", ".join(failed) if failed else "none")
        if self.metrics_port is not None:
            self.scrape()
        lines = log_path.read_bytes().count(b"\n")
        self.figure("daemon log lines", str(lines))

    def scrape(self) -> None:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        before = cpu_seconds(self.daemon.pid) if self.daemon else 0.0
        began = time.monotonic()
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
        took = time.monotonic() - began
        after = cpu_seconds(self.daemon.pid) if self.daemon else 0.0
        self.figure("metrics scrape", f"{len(body) / 1024:.0f} KiB in {took * 1000:.0f} ms "
                    f"(daemon CPU {(after - before) * 1000:.0f} ms, 10 ms ticks)")

    def finish(self) -> None:
        if self.daemon is not None and self.daemon.poll() is not None:
            self.figure("daemon stop", f"had already exited, status {self.daemon.returncode}")
        elif self.daemon is not None:
            # Even after a timeout the daemon gets 10 s, the contract's bound for SIGTERM.
            status, took = stop(self.daemon, min(STOP_TIMEOUT,
                                                 max(self.end - time.monotonic(), 10.0)))
            if status is None:
                self.figure("daemon stop", f"did not exit within {took:.1f} s of SIGTERM: "
                            "killed")
            else:
                self.figure("daemon stop", f"exit status {status} after {took:.2f} s")
        stop(self.sandbox, 10.0)
        if self.db is not None:
            with contextlib.suppress(Exception):
                self.db.close()

    def report(self) -> None:
        width = max(len(name) for name, _ in self.figures)
        for name, value in self.figures:
            print(f"{name:<{width}}  {value}")
        for note in self.notes:
            print(note)
        print(f"(files in {self.folder})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds (default 0.1)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rate-limits", choices=("lifted", "published"), default="lifted")
    parser.add_argument("--metrics", action="store_true",
                        help="turn on the Prometheus endpoint and scrape it once at the end")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
    args = parser.parse_args(argv)
    bench = Bench(args)
    status = 0
    try:
        bench.run()
    except (TimedOut, RuntimeError) as exc:
        bench.notes.append(f"INCOMPLETE: {exc}")
        status = 1
    except KeyboardInterrupt:
        bench.notes.append("INCOMPLETE: interrupted")
        status = 130
    finally:
        bench.finish()
        if status and bench.daemon is not None:
            log = (bench.folder / "daemon.log").read_text(errors="replace").splitlines()
            bench.notes += ["last lines of the daemon log:", *("  " + x for x in log[-10:])]
        bench.report()
    return status


if __name__ == "__main__":
    sys.exit(main())
