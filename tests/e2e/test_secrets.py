"""A canary in every credential never shows in output, logs, the database or errors."""

from __future__ import annotations

import copy
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from aggregator.sources.sandbox import Sandbox
from aggregator.storage import database
from tests.e2e.conftest import Cli, accounts, write_config

CANARY = "c4n4ry-7b1d9e"


def database_text(db_url: str) -> str:
    """Every value of every table, as text."""
    engine = database.open_database(db_url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        chunks: list[str] = []
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                for row in conn.execute(select(table)):
                    for value in row:
                        chunks.append(value.decode("utf-8", "replace")
                                      if isinstance(value, bytes) else str(value))
        return "\n".join(chunks)
    finally:
        engine.dispose()


def test_canary_never_leaks(
    cli: Cli, tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fakes = accounts(tag=CANARY)
    with Sandbox(fakes) as sandbox:
        config = write_config(tmp_path / "config.toml", sandbox, db_url, fakes)
        outputs = [cli("--config", str(config), "-v", "poll")]
        # Failures carry the most text: a refused signature, an expired token, junk bodies.
        sandbox.set_fault("bz", "malformed")
        sandbox.set_fault("zh", "api_error", count=1)
        sandbox.set_fault("pt", "server_error", count=1)
        wrong_fakes = copy.deepcopy(fakes)  # the sandbox keeps the right secret
        wrong_fakes[0].credentials["api_secret"] = f"wrong-{CANARY}"
        wrong = write_config(tmp_path / "wrong.toml", sandbox, db_url, wrong_fakes)
        outputs.append(cli("--config", str(wrong), "-v", "poll"))
        for fmt in ("table", "json", "csv"):
            outputs.append(cli("--config", str(config), "holdings", "--format", fmt))
        outputs.append(cli("--config", str(config), "history", "--account", "bp"))
        outputs.append(cli("--config", str(config), "check-config"))
        broken = config.read_text().replace("identity = ", "identitee = ")
        (tmp_path / "broken.toml").write_text(broken)
        outputs.append(cli("--config", str(tmp_path / "broken.toml"), "check-config"))
        assert outputs[-1].code == 78
        # And a subprocess, whose stderr holds whatever logging prints.
        process = subprocess.run(
            [sys.executable, "-m", "aggregator", "--config", str(wrong), "-v", "poll"],
            capture_output=True, text=True, cwd=tmp_path, check=False, timeout=120,
        )
    assert outputs[0].code == 0 and outputs[1].code == 1
    assert process.returncode == 1 and "failed [bad_credentials]" in process.stdout
    shown = [o.out + o.err for o in outputs] + [process.stdout, process.stderr, caplog.text]
    assert all(CANARY not in text for text in shown)
    stored = database_text(db_url)
    assert "bad_credentials" in stored and "Invalid signature" in stored  # the check can fail
    assert CANARY not in stored
    if db_url.startswith("sqlite:///"):
        raw = Path(db_url.removeprefix("sqlite:///")).parent
        for file in raw.iterdir():
            assert CANARY.encode() not in file.read_bytes(), file
