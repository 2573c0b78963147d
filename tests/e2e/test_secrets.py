"""A canary in every credential never shows in output, logs, the database or errors."""

from __future__ import annotations

import copy
import json
import logging
import re
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.engine import make_url

from aggregator.sandbox import FakeAccount, FakeBalance, Sandbox, account_tables
from aggregator.storage import database
from tests.e2e.conftest import Cli, accounts, token_command, write_config

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


# --- run-time tokens and a server that echoes every credential it is sent ---------------

# Three base64url parts: a whole JWT (a lone part, like BitoPro's payload header, is no
# credential).
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def with_password(db_url: str) -> str:
    """A PostgreSQL URL carrying the canary as its password (trust auth ignores it)."""
    if not db_url.startswith("postgresql"):
        return db_url
    return make_url(db_url).set(password=f"pw-{CANARY}").render_as_string(hide_password=False)


def leaks(text: str, tokens: list[str]) -> list[str]:
    found = [t for t in [CANARY, *tokens] if t in text]
    return found + JWT.findall(text)


def test_echoed_run_time_tokens_never_leak(
    cli: Cli, tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    db_url = with_password(db_url)
    fakes = [*accounts(tag=CANARY),
             FakeAccount("zc", "bitzoom", {"auth": "bearer", "user_id": f"4343{CANARY}"},
                         {"USDT": FakeBalance(Decimal(7))})]
    spool = tmp_path / "spool.db"
    with Sandbox(fakes) as sandbox:
        # zc takes its token from a command: a run-time token the sandbox issued.
        command_token = sandbox.issue_token(f"4343{CANARY}")
        tables = account_tables(sandbox, fakes).replace(
            f"user_id = '4343{CANARY}'", f"token_command = {token_command(command_token)}")
        config = tmp_path / "config.toml"
        config.write_text(f'[database]\nurl = "{db_url}"\n[poll]\ndeadline = "10s"\n'
                          f'[spool]\npath = "{spool}"\n[report]\ndirectory = "{tmp_path}/r"\n'
                          + tables)
        for fake in fakes:
            sandbox.set_fault(fake.name, "echo")
        outputs = [cli("--config", str(config), "-v", "poll"),
                   cli("--config", str(config), "-v", "--log-format", "json", "run",
                       "--duration", "1.5")]
        process = subprocess.run(
            [sys.executable, "-m", "aggregator", "--config", str(config), "-v", "poll"],
            capture_output=True, text=True, cwd=tmp_path, check=False, timeout=120,
        )
        echoed = sandbox.count("", None)
        echoes = sum(1 for r in sandbox.requests if r.outcome == "fault:echo")
    assert outputs[0].code == 1 and outputs[1].code == 0 and process.returncode == 1
    assert echoes >= 3 * len(fakes) and echoed > echoes  # every account, three times
    polls = cli("--config", str(config), "polls", "--limit", "100", "--format", "json")
    ids = [row["id"] for row in json.loads(polls.out)]
    outputs += [polls, *(cli("--config", str(config), "raw", str(i)) for i in ids)]
    outputs.append(cli("--config", str(config), "report", "--date", date.today().isoformat(),
                       "--out", str(tmp_path / "reports")))
    assert outputs[-1].code == 0
    shown = [o.out + o.err for o in outputs] + [process.stdout, process.stderr, caplog.text]
    tokens = [command_token]
    assert [leaks(text, tokens) for text in shown] == [[] for _ in shown]
    # The check can fail: tokens were made, echoed and replaced, and -v was on.
    assert "a new run-time credential is redacted" in outputs[0].err
    stored = database_text(db_url)
    assert "Rejected authorization=Bearer [redacted]" in stored
    assert "x-bitopro-apikey=[redacted]" in stored and "x-bz-apikey=[redacted]" in stored
    assert leaks(stored, tokens) == []
    files = [*(tmp_path / "reports").iterdir(), *spool.parent.glob("spool.db*")]
    if db_url.startswith("sqlite:///"):
        files += Path(db_url.removeprefix("sqlite:///")).parent.iterdir()
    assert len(files) >= 3
    for file in files:
        assert leaks(file.read_bytes().decode("utf-8", "replace"), tokens) == [], file


def test_credentials_with_line_breaks_are_refused_unseen(cli: Cli, tmp_path: Path,
                                                        sandbox: Sandbox) -> None:
    # httpx would quote such a key whole in its "Illegal header value" complaint.
    key_file = tmp_path / "key"
    key_file.write_text(f"bp-key{CANARY}\nsecond-line{CANARY}\n")
    tables = account_tables(sandbox, sandbox.accounts()).replace(
        "api_key = 'bp-key'", f'api_key = {{ file = "{key_file}" }}', 1)
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/h.db"\n' + tables)
    for command in (["check-config"], ["-v", "poll"], ["run", "--duration", "1"]):
        result = cli("--config", str(config), *command)
        assert result.code == 78
        assert result.err.splitlines() == [
            f"aggregator: config: {config}: account 'bp': api_key: file {key_file}: has more "
            "than one line (only a trailing line break is stripped)"]
        assert CANARY not in result.out + result.err
    assert not (tmp_path / "h.db").exists()
