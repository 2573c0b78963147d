"""The real daemon against answers meant to exhaust it: a 200 MB body, a gzip bomb that
expands to 1 GiB, the 11-byte amount "1e999999999". Each is a failed poll of its kind in
the poll log, the other accounts go on, and the daemon's peak RSS stays small."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from aggregator.sandbox import Sandbox, demo_accounts
from aggregator.storage import database
from tests.e2e.conftest import write_config

MAX_PEAK_MIB = 150
FAULTS = {"demo-bitopro": ("big_body", "too_large"),
          "demo-bitz": ("gzip_bomb", "too_large"),
          "demo-bitzoom": ("huge_amount", "schema")}
HEALTHY = tuple(a.name for a in demo_accounts() if a.name not in FAULTS)


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(demo_accounts()) as running:
        yield running


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_hostile_answers_are_failed_polls_and_memory_stays_bounded(
    tmp_path: Path, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, (fault, _) in FAULTS.items():
        sandbox.set_fault(name, fault)
    db_url = f"sqlite:///{tmp_path / 'holdings.db'}"
    config = write_config(tmp_path / "config.toml", sandbox, db_url, sandbox.accounts(),
                          '[schedule]\ninterval = "1s"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
        cwd=tmp_path, env=dict(os.environ), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    engine = None
    try:
        def counts() -> dict[tuple[str, str | None], int]:
            nonlocal engine
            if not (tmp_path / "holdings.db").exists():
                return {}
            engine = engine or database.open_database(db_url)
            try:
                with engine.connect() as conn:
                    rows = conn.execute(text(
                        "SELECT account, error_kind, count(*) FROM poll_log "
                        "GROUP BY account, error_kind")).all()
            except Exception:  # the schema is not there yet
                return {}
            return {(a, k): n for a, k, n in rows}

        def enough(seen: dict[tuple[str, str | None], int]) -> bool:
            return (all(seen.get((n, kind), 0) >= 3 for n, (_, kind) in FAULTS.items())
                    and all(seen.get((n, None), 0) >= 3 for n in HEALTHY))

        end = time.monotonic() + 40
        seen = counts()
        while not enough(seen):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < end, seen
            time.sleep(0.2)
            seen = counts()
        peak = peak_rss_mib(process.pid)
    finally:
        if engine is not None:
            engine.dispose()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    # Only the kinds we meant: no bug, nothing retried as something else.
    for (name, kind), _ in seen.items():
        expected = FAULTS[name][1] if name in FAULTS else None
        assert kind == expected, (name, kind, seen)
    assert "Traceback" not in err
    with capsys.disabled():
        print(f"\ndaemon peak RSS (VmHWM) under a 200 MB body, a 1 GiB gzip bomb and "
              f"1e999999999: {peak:.1f} MiB; polls: {seen}")
    assert peak < MAX_PEAK_MIB
