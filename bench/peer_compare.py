"""aggregator against the script a user would write instead, side by side, in one run.

    python bench/peer_compare.py [--accounts 50,400] [--interval 2,6] [--duration 24]
                                 [--repeat 2] [--database sqlite|postgresql]

Two programs poll the same loopback BitoPro fake (5 assets per account) on the same
schedule, in alternating rounds (ours, peer, ...; every other repeat peer first). The
interval is per account count (default 2 s for 50, 6 s for 400: 25 and 67 polls/s), so
that neither program nor the sandbox saturates a core of a 2-core machine: a program
that falls behind its schedule is measured failing, not polling (at 4 s, the tail of
aggregator's 400-poll burst missed its 3.2 s deadline on a shared machine), and the
report says so when it happens:

- ours: ``python -m aggregator --config CFG run`` (rate limits lifted, as the peer's
  throttle is off);
- peer: ``bench/peer_ccxt.py``, CCXT async (``enableRateLimit: False``) storing one
  SQLAlchemy row per asset per poll (needs ``pip install -e '.[bench]'``).

Each round gets a fresh sandbox process (this script with ``--serve-sandbox N``, so its
CPU is its own), a fresh database with the program's schema already in it, and runs
``--duration`` seconds from the first request the sandbox sees. Measured, per round:

- CPU: utime + stime of the program (all threads) from /proc/PID/stat, read by the
  sandbox process the moment the first request arrives and by this script at the end:
  start-up is excluded, the program's first poll of each account is not;
- stored polls: successful polls whose answer came by the end (ours: ``poll_log``,
  status ok; peer: distinct (account, polled_at) in its snapshot table);
- bytes per poll: growth of the database over the round (SQLite: its pages in use,
  PostgreSQL: ``pg_database_size``) divided by the polls stored (ok or failed); and the
  same over the second half of the round only ("late"), after every account's first
  poll, which stores all its holdings: what a poll costs from then on;
- RSS: VmRSS at the end of the round, VmHWM (peak);
- start -> first request: the program's Popen to the sandbox seeing its first request.

Rounds of the same program and size are summed (CPU and polls) or averaged. The ratios
are ours / peer: below 1 is ours lighter. Linux only (/proc). The sandbox's own CPU share
is printed too: near 100 % of a core, it, not the program, sets the pace.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from daemon_scale import PostgresDatabase, cpu_seconds, read_line, status_kib, stop

from aggregator.sandbox.accounts import FakeAccount
from aggregator.sandbox.registry import FAKES
from aggregator.sandbox.scenarios import BENCH_ASSETS
from aggregator.sandbox.tables import toml_string

BENCH = Path(__file__).resolve().parent
PROGRAMS = ("ours", "peer")
FIRST_REQUEST_TIMEOUT = 60.0  # seconds from start to the first request before giving up
LIFTED = "1000000/s"


class RoundFailed(Exception):
    pass


def bitopro_accounts(n: int) -> list[FakeAccount]:
    """``n`` BitoPro accounts with 5 assets each, each with its own key; CCXT's payload
    (no identity) is accepted for them, ours is checked as always."""
    fake = FAKES["bitopro"]
    accounts = []
    for i in range(n):
        name = f"peer-{i:05d}"
        amounts = [Decimal(f"{j + 1}.{i:05d}{j}") for j in range(BENCH_ASSETS)]
        accounts.append(replace(fake.make("", name, name, amounts), ccxt_payload=True))
    return accounts


# The sandbox process


def serve_sandbox(n: int) -> int:
    """Serve ``n`` accounts; JSON lines on stdout, commands on stdin:
    ``watch PID`` (report PID's CPU at the next request), ``count``, ``quit``."""
    from aggregator.sandbox import Sandbox

    sandbox = Sandbox(bitopro_accounts(n))
    lock = threading.Lock()
    watched: list[int] = []  # the PID whose first request is awaited, while it is

    def emit(message: dict[str, Any]) -> None:
        with lock:
            print(json.dumps(message), flush=True)

    dispatch = sandbox.dispatch

    def watching(request: Any) -> Any:
        if watched:
            with lock:
                pid = watched.pop() if watched else None
            if pid is not None:
                now = time.time()
                emit({"first_request": now, "cpu": cpu_seconds(pid),
                      "sandbox_cpu": cpu_seconds(os.getpid())})
        return dispatch(request)

    # start() hands the dispatcher to the server: the first request of a program is seen
    # on arrival, before it is answered.
    sandbox.dispatch = watching  # type: ignore[method-assign]
    sandbox.start()
    try:
        emit({"url": sandbox.url, "accounts": n})
        for line in sys.stdin:
            command = line.split()
            if command[:1] == ["watch"]:
                with lock:
                    watched[:] = [int(command[1])]
            elif command[:1] == ["count"]:
                emit({"outcomes": Counter(r.outcome for r in sandbox.requests),
                      "sandbox_cpu": cpu_seconds(os.getpid())})
            elif command[:1] == ["quit"]:
                break
    finally:
        sandbox.stop()
    return 0


class SandboxProcess:
    def __init__(self, n: int, folder: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-sandbox", str(n)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=folder)
        info = self.read(30.0)
        self.url: str = info["url"]

    def read(self, timeout: float) -> dict[str, Any]:
        line = read_line(self.process, timeout)
        if not line:
            raise RoundFailed(f"the sandbox exited with status {self.process.wait()}")
        result: dict[str, Any] = json.loads(line)
        return result

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.send("quit")
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            stop(self.process, 5.0)


# Databases


class Store:
    """One round's database: a SQLite file or a throwaway PostgreSQL database."""

    def __init__(self, kind: str, folder: Path, name: str) -> None:
        from sqlalchemy import create_engine

        self.kind = kind
        self._pg: PostgresDatabase | None = None
        if kind == "sqlite":
            self.path = folder / f"{name}.db"
            self.url = f"sqlite:///{self.path}"
        else:
            self._pg = PostgresDatabase()
            self.url = self._pg.url
        self.engine = create_engine(self.url)

    def size(self) -> int:
        """Bytes the database takes: on SQLite its pages in use, as the latest commit left
        them (WAL included, so it may be read while the program writes)."""
        if self.kind == "sqlite":
            if not self.path.exists():
                return 0
            with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                                    timeout=5)) as conn:
                pages, free, size = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                                     for p in ("page_count", "freelist_count", "page_size"))
            return int((pages - free) * size)
        return int(self.scalar("SELECT pg_database_size(current_database())"))

    def scalar(self, sql: str, **params: Any) -> Any:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def close(self) -> None:
        self.engine.dispose()
        if self._pg is not None:
            self._pg.close()


def our_polls(store: Store, until: datetime | None) -> tuple[int, Counter[str]]:
    """Ok polls in ``poll_log`` and failed ones by kind, finished by ``until`` if given."""
    from sqlalchemy import text

    # poll_log's times are ISO text on SQLite (millisecond, "Z"), timestamptz elsewhere.
    bound: Any = until
    if until is not None and store.kind == "sqlite":
        bound = until.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"
    where = "" if until is None else " WHERE finished_at <= :until"
    with store.engine.connect() as conn:
        rows = conn.execute(text(f"SELECT status, error_kind, count(*) FROM poll_log{where} "
                                 "GROUP BY status, error_kind"), {"until": bound}).all()
    ok = sum(count for status, _, count in rows if status == "ok")
    return ok, Counter({kind: count for status, kind, count in rows if status != "ok"})


def stored(store: Store, program: str) -> int:
    """Every poll the program has stored so far, ok or failed."""
    if program == "ours":
        ok, failed = our_polls(store, None)
        return ok + failed.total()
    return peer_polls(store, None)


def peer_polls(store: Store, until: datetime | None) -> int:
    from sqlalchemy import DateTime, bindparam, text

    sql = "SELECT count(*) FROM (SELECT DISTINCT account, polled_at FROM balance_snapshots"
    if until is None:
        query = text(sql + ") AS p")
    else:
        query = text(sql + " WHERE polled_at <= :until) AS p").bindparams(
            bindparam("until", until.replace(tzinfo=None), type_=DateTime))
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


# One round


@dataclass
class Round:
    program: str
    accounts: int
    interval: float
    cpu: float = 0.0  # seconds, first request -> end
    polls: int = 0  # stored by the end
    stored: int = 0  # polls stored in all (ok or failed), after the stop
    stored_late: int = 0  # ... of them, in the second half
    failures: Counter[str] = field(default_factory=Counter)  # polls failed, by kind
    growth: int = 0  # database bytes
    growth_late: int = 0  # ... in the second half
    rss_kib: int = 0
    peak_kib: int = 0
    first_request: float = 0.0  # seconds from start
    window: float = 0.0  # seconds measured
    sandbox_cpu: float = 0.0  # seconds over the window
    load: float = 0.0
    answered: Counter[str] = field(default_factory=Counter)
    exit_status: int | None = None


def our_config(folder: Path, url: str, sandbox_url: str, accounts: list[FakeAccount],
               interval: float) -> Path:
    fake = FAKES["bitopro"]
    lines = ["[database]", f"url = {toml_string(url)}", "",
             "[schedule]", f'interval = "{interval:g}s"', "",
             "[report]", f"directory = {toml_string(str(folder / 'reports'))}", "",
             "[rate_limits]", f'bitopro = "{LIFTED}"', ""]
    for account in accounts:
        items = [("name", account.name), ("source", "bitopro"),
                 ("base_url", sandbox_url + fake.prefix), *fake.config_items(account)]
        lines += ["[[accounts]]", *(f"{k} = {toml_string(v)}" for k, v in items), ""]
    path = folder / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def peer_accounts(folder: Path, sandbox_url: str, accounts: list[FakeAccount]) -> Path:
    path = folder / "accounts.json"
    path.write_text(json.dumps({
        "base_url": sandbox_url + FAKES["bitopro"].prefix,
        "accounts": [{"name": a.name, "api_key": a.credentials["api_key"],
                      "api_secret": a.credentials["api_secret"]} for a in accounts],
    }), encoding="utf-8")
    return path


def run_round(program: str, n: int, interval: float, args: argparse.Namespace,
              folder: Path) -> Round:
    result = Round(program, n, interval, load=os.getloadavg()[0])
    folder.mkdir(parents=True)
    sandbox = SandboxProcess(n, folder)
    store = Store(args.database, folder, program)
    process: subprocess.Popen[bytes] | None = None
    log_path = folder / f"{program}.log"
    try:
        accounts = bitopro_accounts(n)
        if program == "ours":
            config = our_config(folder, store.url, sandbox.url, accounts, interval)
            subprocess.run([sys.executable, "-m", "aggregator", "--config", str(config),
                            "db", "upgrade"], check=True, cwd=folder, capture_output=True)
            command = [sys.executable, "-m", "aggregator", "--config", str(config), "run"]
        else:
            from peer_ccxt import create_schema

            create_schema(store.url)
            command = [sys.executable, str(BENCH / "peer_ccxt.py"), "--accounts",
                       str(peer_accounts(folder, sandbox.url, accounts)), "--database",
                       store.url, "--interval", f"{interval:g}"]
        size_before = store.size()
        with log_path.open("wb") as log:
            started = time.time()
            process = subprocess.Popen(command, cwd=folder, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=log)
        sandbox.send(f"watch {process.pid}")
        try:
            first = sandbox.read(FIRST_REQUEST_TIMEOUT)
        except Exception as exc:
            raise RoundFailed(f"{program}: no request within {FIRST_REQUEST_TIMEOUT:g} s "
                              f"({exc})") from exc
        result.first_request = first["first_request"] - started
        # The second half starts once every account had its first poll (interval + jitter).
        half = min(args.duration * 0.75, max(args.duration / 2, interval * 1.1 + 1))
        time.sleep(max(0.0, first["first_request"] + half - time.time()))
        size_half, stored_half = store.size(), stored(store, program)
        end = first["first_request"] + args.duration
        time.sleep(max(0.0, end - time.time()))
        if process.poll() is not None:
            raise RoundFailed(f"{program} exited early with status {process.returncode}")
        cpu_end = cpu_seconds(process.pid)
        until = datetime.now(UTC)
        result.rss_kib = status_kib(process.pid, "VmRSS")
        result.peak_kib = status_kib(process.pid, "VmHWM")
        result.cpu = cpu_end - first["cpu"]
        result.window = until.timestamp() - first["first_request"]
        sandbox.send("count")
        counted = sandbox.read(10.0)
        result.sandbox_cpu = counted["sandbox_cpu"] - first["sandbox_cpu"]
        result.answered = Counter(counted["outcomes"])
        result.exit_status, _ = stop(process, 15.0)
        if program == "ours":
            result.polls, result.failures = our_polls(store, until)
        else:
            result.polls = peer_polls(store, until)
            # Its last line: {"stored": n, "failed": {exception class: count}}.
            lines = log_path.read_text(errors="replace").splitlines()
            result.failures = Counter(json.loads(lines[-1])["failed"] if lines else {})
        size_end, result.stored = store.size(), stored(store, program)
        result.growth, result.stored_late = size_end - size_before, result.stored - stored_half
        result.growth_late = size_end - size_half
    except BaseException:
        if process is not None:
            stop(process, 5.0)
            tail = log_path.read_text(errors="replace").splitlines()[-8:]
            print(f"{program} log ({log_path}):", *("  " + x for x in tail), sep="\n",
                  file=sys.stderr)
        raise
    finally:
        sandbox.close()
        store.close()
    return result


# Summing up


@dataclass
class Totals:
    rounds: list[Round]

    def sum(self, attribute: str) -> float:
        return float(sum(getattr(r, attribute) for r in self.rounds))

    @property
    def failures(self) -> Counter[str]:
        return sum((r.failures for r in self.rounds), Counter())

    @property
    def cpu_per_poll_ms(self) -> float:
        return self.sum("cpu") / max(1.0, self.sum("polls")) * 1000

    @property
    def bytes_per_poll(self) -> float:
        return self.sum("growth") / max(1.0, self.sum("stored"))

    @property
    def bytes_per_late_poll(self) -> float:
        return self.sum("growth_late") / max(1.0, self.sum("stored_late"))

    @property
    def rss_mib(self) -> float:
        return statistics.mean(r.rss_kib for r in self.rounds) / 1024

    @property
    def peak_mib(self) -> float:
        return max(r.peak_kib for r in self.rounds) / 1024

    @property
    def first_request_s(self) -> float:
        return statistics.median(r.first_request for r in self.rounds)

    @property
    def polls_per_s(self) -> float:
        return self.sum("polls") / max(1e-9, self.sum("window"))

    @property
    def sandbox_share(self) -> float:
        return self.sum("sandbox_cpu") / max(1e-9, self.sum("window"))


COLUMNS = ("accounts / interval", "program", "rounds", "polls", "polls/s", "failed",
           "CPU ms/poll", "bytes/poll", "late B/poll", "RSS MiB", "peak MiB",
           "start->1st req s", "sandbox CPU")


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i > 1 else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                     for r in rows)


def report(results: list[Round], args: argparse.Namespace) -> str:
    rows = [list(COLUMNS)]
    for n, interval in zip(args.accounts, args.interval, strict=True):
        totals = {p: Totals([r for r in results if r.program == p and r.accounts == n])
                  for p in PROGRAMS}
        for program, t in totals.items():
            if not t.rounds:
                continue
            rows.append([f"{n} / {interval:g}s", program, str(len(t.rounds)),
                         f"{t.sum('polls'):.0f}",
                         f"{t.polls_per_s:.1f}", str(t.failures.total()),
                         f"{t.cpu_per_poll_ms:.2f}", f"{t.bytes_per_poll:.0f}",
                         f"{t.bytes_per_late_poll:.0f}",
                         f"{t.rss_mib:.1f}", f"{t.peak_mib:.1f}",
                         f"{t.first_request_s:.3f}", f"{t.sandbox_share:.0%}"])
        ours, peer = totals["ours"], totals["peer"]
        if ours.rounds and peer.rounds:
            def ratio(a: float, b: float) -> str:
                return f"{a / b:.2f}x" if b else "-"
            rows.append([f"{n} / {interval:g}s", "ours/peer", "", "", "", "",
                         ratio(ours.cpu_per_poll_ms, peer.cpu_per_poll_ms),
                         ratio(ours.bytes_per_poll, peer.bytes_per_poll),
                         ratio(ours.bytes_per_late_poll, peer.bytes_per_late_poll),
                         ratio(ours.rss_mib, peer.rss_mib), ratio(ours.peak_mib, peer.peak_mib),
                         ratio(ours.first_request_s, peer.first_request_s), ""])
    notes = []
    for n in args.accounts:
        for program in PROGRAMS:
            rounds = [r for r in results if r.program == program and r.accounts == n]
            failures = sum((r.failures for r in rounds), Counter())
            if failures:
                kinds = ", ".join(f"{k} {c}" for k, c in failures.most_common())
                loads = ", ".join(f"{r.load:.1f}" for r in rounds)
                ok = sum(r.polls for r in rounds)
                notes.append(f"NOTE: {program} x{n}: {failures.total()} failed polls beside "
                             f"{ok} ok ({kinds}; load average at the start of each round: "
                             f"{loads}): it fell behind its schedule at times, and the CPU "
                             "of failed polls is in its figure; a quieter machine or a "
                             "longer --interval compares the two as they are")
    return "\n".join([table(rows), *notes])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", default="50,400",
                        type=lambda s: [int(x) for x in s.split(",")],
                        help="comma-separated account counts (default 50,400)")
    parser.add_argument("--interval", default="2,6",
                        type=lambda s: [float(x) for x in s.split(",")],
                        help="poll interval in seconds for each account count, or one for "
                        "all; at least 1 (default 2,6)")
    parser.add_argument("--duration", type=float, default=24.0,
                        help="seconds measured per round, from the first request (default 24)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="rounds per program and size, alternating (default 2)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--serve-sandbox", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_sandbox is not None:
        return serve_sandbox(args.serve_sandbox)
    if len(args.interval) == 1:
        args.interval *= len(args.accounts)
    if len(args.interval) != len(args.accounts):
        parser.error("--interval: one value, or one per account count")
    if min(args.interval) < 1:
        parser.error("--interval must be at least 1 (aggregator's shortest)")

    folder = Path(tempfile.mkdtemp(prefix="aggregator-peer-bench-"))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"{args.duration:g} s per round, database {args.database}; files in {folder}",
          flush=True)
    results: list[Round] = []
    status = 0
    try:
        for repeat in range(args.repeat):
            for n, interval in zip(args.accounts, args.interval, strict=True):
                order = PROGRAMS if repeat % 2 == 0 else PROGRAMS[::-1]
                for program in order:
                    r = run_round(program, n, interval, args,
                                  folder / f"{repeat}-{n}-{program}")
                    results.append(r)
                    print(f"  {program} x{n} every {interval:g}s: {r.polls} polls "
                          f"({r.failures.total()} failed), {r.cpu:.2f} s CPU "
                          f"({r.cpu / max(1, r.polls) * 1000:.2f} ms/poll), "
                          f"{r.growth / max(1, r.stored):.0f} B/poll "
                          f"(late {r.growth_late / max(1, r.stored_late):.0f}), "
                          f"RSS {r.rss_kib / 1024:.0f} MiB, first request "
                          f"{r.first_request:.3f} s, sandbox {r.sandbox_cpu / r.window:.0%}, "
                          f"load {r.load:.2f}, exit {r.exit_status}", flush=True)
    except (RoundFailed, subprocess.CalledProcessError) as exc:
        print(f"INCOMPLETE: {exc}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        print("INCOMPLETE: interrupted", file=sys.stderr)
        status = 130
    if results:
        print(report(results, args))
    return status


if __name__ == "__main__":
    sys.exit(main())
