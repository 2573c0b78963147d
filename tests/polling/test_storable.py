"""Whatever an exchange sends, what we store can be stored and shown again, on both databases.

A lone surrogate or a NUL in a detail, a key or an error message (PostgreSQL's text and
JSONB refuse NUL; UTF-8 cannot encode a surrogate) once made `holdings --format json`
or `poll` crash for every account afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator.cli import main
from tests.polling.conftest import Canned, Server

HOSTILE_TEXT = r'"a\ud800b\u0000c\nd\u001b[2J"'  # as JSON text: escapes, not characters


def config(tmp_path: Path, server: Server, db_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
url = "{db_url}"
[poll]
deadline = "5s"

[[accounts]]
name = "pt"
source = "pitrade"
base_url = "{server.base_url}/pt"
client_id = "c"
secret = "partner-secret"

[[accounts]]
name = "bp"
source = "bitopro"
base_url = "{server.base_url}/bp"
api_key = "bp-key"
api_secret = "bp-secret"
identity = "me@example.com"

[[accounts]]
name = "bz"
source = "bitzoom"
base_url = "{server.base_url}/bz"
token = "abc.def"
""")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_hostile_text_is_stored_escaped_and_every_command_still_works(
    tmp_path: Path, server: Server, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/pt/portfolio"] = Canned(
        200, b'[{"ticker":"\xc3\x84PPL","quantity":"3","averagePurchasePrice":1.5}]')
    server.routes["/pt/portfolio-properties"] = Canned(
        200, ('{"availableBalance":"10","note":' + HOSTILE_TEXT
              + r',"\u0000k\ud800":1,"nested":{"x":' + HOSTILE_TEXT + "}}").encode())
    # An error text full of the same, on an HTTP error: a failed poll with its message.
    server.routes["/bp/accounts/balance"] = Canned(403, ('{"error":' + HOSTILE_TEXT + "}").encode())
    # A symbol that is not a Unicode scalar value: refused, the rest goes on.
    server.routes["/bz/api/v1/balance"] = Canned(
        200, b'{"code":0,"data":[{"asset":"BTC\\ud800","walletBalance":"1"}]}')
    path = str(config(tmp_path, server, db_url))

    code, out, err = run(capsys, "--config", path, "poll")
    assert code == 1, out + err
    lines = out.splitlines()
    assert len(lines) == 3, out  # one line per account, the failed ones too
    assert "\x00" not in out + err and "\x1b" not in out + err
    out.encode("utf-8")  # no lone surrogate reached the terminal
    assert "Traceback" not in err

    code, out, err = run(capsys, "--config", path, "holdings", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    by_asset = {r["asset"]: r for r in rows}
    assert set(by_asset) == {"ÄPPL", "USD"}
    details = by_asset["USD"]["details"]
    assert details["note"] == "a\\ud800b\\u0000c\\u000ad\\u001b[2J"
    assert details["\\u0000k\\ud800"] == 1
    assert details["nested"] == '{"x":"a\\ud800b\\u0000c\\nd\\u001b[2J"}'

    for fmt in ("table", "csv"):
        assert run(capsys, "--config", path, "holdings", "--format", fmt)[0] == 0

    code, out, err = run(capsys, "--config", path, "polls", "--failed", "--format", "json")
    assert code == 0, err
    failed = {p["account"]: p for p in json.loads(out)}
    assert failed["bp"]["error_kind"] == "permission_denied"
    assert "a\\ud800b\\u0000c\\u000ad\\u001b[2J" in failed["bp"]["error_message"]
    assert failed["bz"]["error_kind"] == "schema"
    assert "data[0].asset" in failed["bz"]["error_message"]
    assert run(capsys, "--config", path, "polls")[0] == 0
