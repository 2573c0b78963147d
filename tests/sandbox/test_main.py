from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest


def start(*args: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator.sandbox", *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    return process, json.loads(line)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_prints_json_line_and_exits_0(tmp_path: Path, stop: signal.Signals) -> None:
    config = tmp_path / "accounts.toml"
    process, info = start("--config-out", str(config))
    try:
        assert set(info) == {"url", "accounts"}
        assert info["accounts"] == 5
        url = info["url"]
        assert isinstance(url, str) and url.startswith("http://127.0.0.1:")
        assert httpx.get(url + "/nowhere", timeout=5).status_code == 404
        tables = tomllib.loads(config.read_text())["accounts"]
        assert len(tables) == 5
        assert all(t["base_url"].startswith(url) for t in tables)
    finally:
        process.send_signal(stop)
        assert process.wait(timeout=10) == 0
    assert process.stdout is not None
    assert process.stdout.read() == ""  # exactly one line


def test_bench_scenario(tmp_path: Path) -> None:
    process, info = start("--scenario", "bench", "--accounts", "12", "--latency", "0.01")
    try:
        assert info["accounts"] == 12
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
