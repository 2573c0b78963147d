"""Fixtures for outage tests: a private PostgreSQL cluster the test may stop, freeze or
kill (never the shared server), and a daemon subprocess against the sandbox."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from aggregator.sandbox import Sandbox, account_tables, demo_accounts

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DB_TIMEOUT = "2s"  # the writer's deadline per database call in these tests


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A throwaway PostgreSQL 15 cluster owned by the postgres user, on a free port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/aggregator"
        self._as_postgres(PG_BIN / "initdb", "-D", str(self.data), "-A", "trust", "-U",
                          "postgres", "--no-sync")
        self.start()
        admin = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres",
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE aggregator"))
        admin.dispose()

    def _as_postgres(self, *command: str | Path) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *map(str, command)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

    def start(self) -> None:
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-w", "-l",
                          self.folder / "log", "-o",
                          f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                          "-c fsync=off", "start")

    def stop(self) -> None:
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-w", "-m", "immediate", "stop")

    def pids(self) -> list[int]:
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True,
                                  text=True).stdout.split()
        return [postmaster, *map(int, children)]

    def freeze(self) -> None:
        """SIGSTOP the server: its kernel still accepts and ACKs, nothing answers."""
        for pid in self.pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.pids():
            os.kill(pid, signal.SIGCONT)

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running():
            try:
                self.thaw()
                self.stop()
            except (subprocess.SubprocessError, OSError, ValueError):
                pass
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if os.geteuid() != 0 or not (PG_BIN / "initdb").exists() or not shutil.which("runuser"):
        pytest.skip("needs root and PostgreSQL 15's initdb to run a private cluster")
    folder = Path(tempfile.mkdtemp(prefix="aggregator-pg-", dir="/tmp"))
    folder.chmod(0o755)
    shutil.chown(folder, "postgres", "postgres")
    made = Cluster(folder)
    try:
        yield made
    finally:
        made.destroy()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(demo_accounts()) as running:
        yield running


Daemon = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def daemon(tmp_path: Path, sandbox: Sandbox) -> Iterator[Daemon]:
    """Start `aggregator run` on a database URL; killed at the end if still running."""
    processes: list[subprocess.Popen[str]] = []

    def run(url: str, interval: str = "1s", extra: str = "",
            env: dict[str, str] | None = None, spool: Path | None = None
            ) -> subprocess.Popen[str]:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[database]\nurl = "{url}"\ntimeout = "{DB_TIMEOUT}"\n'
            f'[poll]\ndeadline = "10s"\n[schedule]\ninterval = "{interval}"\n'
            f'[spool]\npath = "{spool or tmp_path / "spool.db"}"\n{extra}\n'
            + account_tables(sandbox, sandbox.accounts()))
        process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
            cwd=tmp_path, env={**os.environ, **(env or {})}, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        processes.append(process)
        return process

    yield run
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    return process.returncode, err


def wait_for(condition: Callable[[], bool], timeout: float, what: str = "condition",
             process: subprocess.Popen[str] | None = None) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end or (process is not None and process.poll() is not None):
            detail = ""
            if process is not None:
                if process.poll() is None:
                    process.kill()
                detail = "\n" + process.communicate(timeout=10)[1][-3000:]
            raise AssertionError(f"{what} not reached within {timeout:g}s{detail}")
        time.sleep(0.1)


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 4 MiB tmpfs, bind-mounted onto itself so it can be made read-only and back."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a size-limited filesystem")
    folder = Path(tempfile.mkdtemp(prefix="aggregator-disk-", dir="/tmp"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)
        subprocess.run(["umount", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def fill(folder: Path) -> Path:
    """Write a file until the filesystem is full."""
    filler = folder / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def read_only(folder: Path, on: bool) -> None:
    done = subprocess.run(["mount", "-o", f"remount,bind,{'ro' if on else 'rw'}", str(folder)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
