"""Config loading: secret references, validation lines, the http refusal."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aggregator.cli import main
from aggregator.config import load_config, parse_duration
from aggregator.errors import ConfigError
from aggregator.prices.registry import PRICE_SOURCES
from aggregator.sources.bitopro import BitoProConfig

GOOD = """
[database]
url = "sqlite:///{tmp}/h.db"
[schedule]
interval = "30s"
timezone = "Europe/Berlin"
[[accounts]]
name = "bp"
source = "bitopro"
api_key = {{ env = "BP_KEY" }}
api_secret = {{ file = "{tmp}/secret.txt" }}
identity = "me@example.com"
[[accounts]]
name = "pt"
source = "pitrade"
base_url = "http://127.0.0.1:9/api"
client_id = "c"
secret = {{ credential = "pitrade" }}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text.format(tmp=tmp_path))
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "secret.txt").write_text("file-secret\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "pitrade").write_text("cred-secret")
    return {"BP_KEY": "env-key", "CREDENTIALS_DIRECTORY": str(creds)}


def test_secret_references_resolve(tmp_path: Path, env: dict[str, str]) -> None:
    settings = load_config(write(tmp_path, GOOD), env)
    bitopro, pitrade = settings.accounts
    assert isinstance(bitopro, BitoProConfig)
    assert bitopro.api_key.reveal() == "env-key"
    assert bitopro.api_secret.reveal() == "file-secret"  # trailing newline stripped
    assert pitrade.secrets()[0].reveal() == "cred-secret"
    assert bitopro.base_url == "https://api.bitopro.com/v3"  # the source's default
    assert settings.interval.seconds == 30
    assert "env-key" not in repr(settings)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("identity = \"me@example.com\"", ""), "account 'bp': identity: required"),
        (("source = \"bitopro\"", "source = \"nope\""), "account 'bp': source: unknown source"),
        (("identity =", "colour = 1\nidentity ="), "account 'bp': colour: unknown key"),
        (('interval = "30s"', 'interval = "soon"'), "schedule.interval: 'soon' is not"),
        (('{ env = "BP_KEY" }', '{ env = "MISSING" }'),
         "account 'bp': api_key: environment variable MISSING is not set"),
        (("http://127.0.0.1:9/api", "http://partner.example.com/api"),
         "account 'pt': base_url: plain http to a non-loopback host"),
    ],
)
def test_problems_name_file_account_and_key(
    tmp_path: Path, env: dict[str, str], change: tuple[str, str], expected: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change, 1))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env)
    assert any(line.startswith(f"{path}: ") and expected in line
               for line in caught.value.problems), caught.value.problems


def test_insecure_http_can_be_allowed(tmp_path: Path, env: dict[str, str]) -> None:
    text = GOOD.replace("http://127.0.0.1:9/api", "http://partner.example.com/api").replace(
        'client_id = "c"', 'client_id = "c"\nallow_insecure_http = true')
    assert load_config(write(tmp_path, text), env).accounts[1].base_url.startswith("http://")


def test_durations() -> None:
    assert [parse_duration(t).seconds for t in ("1s", "5m", "1h", "1.5m", "4d")] == [
        1, 300, 3600, 90, 4 * 86400]
    for bad in ("0s", "5", "5w", "", "-1s"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_check_config_exit_78_one_line_no_traceback(tmp_path: Path, env: dict[str, str]) -> None:
    path = write(tmp_path, GOOD.replace('{{ env = "BP_KEY" }}', '"literal-key"').replace(
        'identity = "me@example.com"', ""))
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(path), "check-config"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )
    assert result.returncode == 78
    assert result.stderr.strip().splitlines() == [
        f"aggregator: config: {path}: account 'bp': identity: required"]
    assert "Traceback" not in result.stderr and "literal-key" not in result.stderr


def test_example_config_documents_a_valid_file(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "config" / "example.toml"
    for name in ("bitzoom-key", "bitzoom-secret"):
        (tmp_path / name).write_text("x")
    secret = tmp_path / "pitrade.secret"
    secret.write_text("s")
    text = example.read_text().replace("/etc/aggregator/pitrade.secret", str(secret))
    path = tmp_path / "example.toml"
    path.write_text(text)
    env = {k: "x" for k in ("BITOPRO_KEY", "BITOPRO_SECRET", "BITZ_KEY", "BITZ_SECRET",
                            "BITZOOM_USER_ID")}
    settings = load_config(path, {**env, "CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert len(settings.accounts) == 5
    assert str(settings.rate_limits["bitzoom"]) == "5/1s"
    # Every price source is documented, with the valuation it serves.
    assert {p.source for p in settings.prices} == set(PRICE_SOURCES)
    valuation = settings.valuation_settings()
    assert valuation is not None and valuation.currency == "TWD"
    assert valuation.sources == tuple(p.name for p in settings.prices)


def test_rate_limit_and_metrics_problems(tmp_path: Path, env: dict[str, str]) -> None:
    text = GOOD + '[rate_limits]\nbitopro = "lots"\nnope = "1/s"\n[metrics]\nlisten = "x"\n'
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env)
    problems = "\n".join(caught.value.problems)
    assert "rate_limits.bitopro: 'lots' is not a rate" in problems
    assert "rate_limits.nope: unknown source" in problems
    assert "metrics.listen: expected" in problems


def test_smtp_table(tmp_path: Path, env: dict[str, str]) -> None:
    good = GOOD.replace("[[accounts]]", '[report.smtp]\nhost = "127.0.0.1"\nport = 2525\n'
                        'security = "none"\nusername = "u"\npassword = {{ env = "BP_KEY" }}\n'
                        'from = "a@example.com"\nto = ["b@example.com"]\n\n[[accounts]]', 1)
    smtp = load_config(write(tmp_path, good), env).smtp
    assert smtp is not None and smtp.port == 2525 and smtp.recipients == ("b@example.com",)
    assert smtp.password is not None and smtp.password.reveal() == "env-key"
    bad = good.replace('host = "127.0.0.1"\n', "").replace('"none"', '"ssl"')
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, bad), env)
    problems = "\n".join(caught.value.problems)
    assert "report.smtp.host: required" in problems
    assert "report.smtp.security: must be one of" in problems


# --- every malformed config: one line, exit 78, no traceback, no secret ------------------

CANARY = "c4n4ry5ecret"
BASE = """\
[database]
url = "sqlite:///{tmp}/h.db"
[schedule]
interval = "30s"
[[accounts]]
name = "bp"
source = "bitopro"
api_key = {{ env = "BP_KEY" }}
api_secret = {{ file = "{tmp}/secret.txt" }}
identity = "me@example.com"
[[accounts]]
name = "pt"
source = "pitrade"
base_url = "http://127.0.0.1:9/api"
client_id = "c"
secret = "literal-{canary}"
[[accounts]]
name = "zb"
source = "bitzoom"
user_id = {{ credential = "zb-user" }}
"""
SMTP = ('[report.smtp]\nhost = "127.0.0.1"\nfrom = "a@example.com"\nto = ["b@example.com"]\n'
        'password = "pw-{canary}"\n')
DATABASE = '[database]\nurl = "sqlite:///{tmp}/h.db"\n'


@dataclass(frozen=True)
class Bad:
    """One malformed config and the text its one line must carry."""

    name: str
    expect: str
    change: tuple[str, str] | None = None  # replaced once in BASE
    text: str | bytes | None = None  # the whole file instead ({tmp}, {canary} filled in)
    files: Mapping[str, str | bytes] = field(default_factory=dict)  # under tmp
    env: Mapping[str, str | None] = field(default_factory=dict)  # None: unset
    command: tuple[str, ...] = ("check-config",)
    config: str = "config.toml"  # the --config path under tmp


def secret_file(content: str | bytes, name: str = "secret.txt") -> dict[str, str | bytes]:
    return {name: content}


BAD = [
    # The file itself
    Bad("binary", "is not UTF-8 text (byte 0)", text=b"\xff\xd8\xff\xe0 api_key = c4n4ry5ecret"),
    Bad("utf-16 with BOM", "is UTF-16 text; save it as UTF-8", text=BASE.encode("utf-16")),
    Bad("utf-16 without BOM", "contains NUL bytes", text=BASE.encode("utf-16-le")),
    Bad("latin-1", "is not UTF-8 text", text=("# café\n" + BASE).encode("latin-1")),
    Bad("a directory", "is a directory, not a config file", config="."),
    Bad("missing", "no such config file", config="nope.toml"),
    Bad("empty", "is empty: nothing is configured", text=""),
    Bad("comments only", "is empty: nothing is configured",
        text="# api_key = 'c4n4ry5ecret'\n\n"),
    Bad("too large", "is larger than 1 MiB", text="# {canary}\n" * 100_000),
    Bad("not TOML", "not valid TOML", text="api_key: {canary}\n"),
    Bad("unterminated string", "not valid TOML",
        change=('secret = "literal-{canary}"', 'secret = "literal-{canary}')),
    Bad("duplicate key", "not valid TOML",
        change=('client_id = "c"', 'client_id = "c"\nclient_id = "d"')),
    Bad("no accounts", "accounts: no [[accounts]] table", text=DATABASE),
    Bad("no accounts: poll", "accounts: no [[accounts]] table", text=DATABASE,
        command=("poll",)),
    Bad("no accounts: run", "accounts: no [[accounts]] table", text=DATABASE,
        command=("run", "--duration", "1")),
    Bad("empty account list", "accounts: no [[accounts]] table", text="accounts = []\n"),
    Bad("unknown top-level key", "colour: unknown key", text="colour = 1\n" + BASE),
    # [database]
    Bad("database not a table", "database: must be a table",
        change=('[database]\nurl = "sqlite:///{tmp}/h.db"', 'database = "x"')),
    Bad("database.url empty", "database.url: must be a non-empty string",
        change=('"sqlite:///{tmp}/h.db"', '""')),
    Bad("database.url a number", "database.url: must be a non-empty string",
        change=('"sqlite:///{tmp}/h.db"', "5")),
    Bad("database.url garbage", "database.url: not a database URL",
        change=("sqlite:///{tmp}/h.db", "garbage-{canary}")),
    Bad("database.url port not a number", "database.url: not a database URL",
        change=("sqlite:///{tmp}/h.db", "postgresql://u:{canary}@h:port/db")),
    Bad("database.url port out of range", "database.url: the port must be between 1 and 65535",
        change=("sqlite:///{tmp}/h.db", "postgresql://u:{canary}@h:99999/db")),
    Bad("database.url unknown database", "database.url: 'mysql' databases are not supported",
        change=("sqlite:///{tmp}/h.db", "mysql://u:{canary}@h/db")),
    Bad("database.url driver missing", "database.url: the driver 'psycopg2' is not installed",
        change=("sqlite:///{tmp}/h.db", "postgresql+psycopg2://u:{canary}@h/db")),
    Bad("database.url sqlite with a host", "database.url: a SQLite URL names a file",
        change=("sqlite:///{tmp}/h.db", "sqlite://u:{canary}@host/h.db")),
    Bad("database.url bad option", 'database.url: invalid connection option "bogus"',
        change=("sqlite:///{tmp}/h.db", "postgresql://u:{canary}@h/db?bogus=1")),
    # [schedule], [poll], [rate_limits], [metrics], [report]
    Bad("interval not a duration", "schedule.interval: 'soon' is not a duration",
        change=('interval = "30s"', 'interval = "soon"')),
    Bad("interval zero", "schedule.interval: '0s' is shorter than 1s",
        change=('interval = "30s"', 'interval = "0s"')),
    Bad("interval a number", "schedule.interval: expected a duration",
        change=('interval = "30s"', "interval = 30")),
    Bad("interval overflowing", "schedule.interval: '99999999999999999999h' is longer than",
        change=('interval = "30s"', 'interval = "99999999999999999999h"')),
    Bad("unknown time zone", "schedule.timezone: unknown time zone 'Mars/Olympus'",
        change=('interval = "30s"', 'timezone = "Mars/Olympus"')),
    Bad("report_time out of range", "schedule.report_time: hour must be in 0..23",
        change=('interval = "30s"', 'report_time = "25:00"')),
    Bad("unknown schedule key", "schedule.colour: unknown key",
        change=('interval = "30s"', "colour = 1")),
    Bad("poll deadline", "poll.deadline: 'fast' is not a duration",
        text=BASE + '[poll]\ndeadline = "fast"\n'),
    Bad("rate limit", "rate_limits.bitopro: 'lots' is not a rate",
        text=BASE + '[rate_limits]\nbitopro = "lots"\n'),
    Bad("rate limit over no time", "rate_limits.bitopro: '1/0s' is not a rate",
        text=BASE + '[rate_limits]\nbitopro = "1/0s"\n'),
    Bad("database timeout", "database.timeout: 'never' is not a duration",
        change=('[database]\n', '[database]\ntimeout = "never"\n')),
    Bad("spool size", "spool.max_size: expected a size such as",
        text=BASE + '[spool]\nmax_size = "lots"\n'),
    Bad("spool size too small", "spool.max_size: '10B' is smaller than 1KiB",
        text=BASE + '[spool]\nmax_size = "10B"\n'),
    Bad("unknown spool key", "spool.colour: unknown key", text=BASE + '[spool]\ncolour = 1\n'),
    Bad("rate limit of an unknown source", "rate_limits.nope: unknown source",
        text=BASE + '[rate_limits]\nnope = "1/s"\n'),
    Bad("metrics listen", "metrics.listen: expected \"host:port\"",
        text=BASE + '[metrics]\nlisten = "x"\n'),
    Bad("metrics port", "metrics.listen: the port must be between 1 and 65535",
        text=BASE + '[metrics]\nlisten = "127.0.0.1:99999"\n'),
    Bad("report directory", "report.directory: must be a non-empty string",
        text=BASE + '[report]\ndirectory = ""\n'),
    Bad("smtp without host", "report.smtp.host: required",
        text=BASE + SMTP.replace('host = "127.0.0.1"\n', "")),
    Bad("smtp password with a control character",
        "report.smtp.password: contains a control character",
        text=BASE + SMTP.replace("pw-{canary}", "pw-{canary}\\u0007")),
    # [[accounts]]
    Bad("accounts not an array", "accounts: must be an array of tables",
        text='accounts = "{canary}"\n' + DATABASE),
    Bad("account not a table", "accounts[0]: must be a table", text="accounts = [1]\n" + DATABASE),
    Bad("account without a name", "accounts[0].name: required, made of [a-z0-9_-]",
        change=('name = "bp"\n', "")),
    Bad("account name", "accounts[1].name: required, made of [a-z0-9_-]",
        change=('name = "pt"', 'name = "Bad Name"')),
    Bad("duplicate account name", "account 'bp': name is used by another account",
        change=('name = "pt"', 'name = "bp"')),
    Bad("unknown source", "account 'bp': source: unknown source 'nope'",
        change=('source = "bitopro"', 'source = "nope"')),
    Bad("missing key", "account 'bp': identity: required",
        change=('identity = "me@example.com"\n', "")),
    Bad("unknown account key", "account 'bp': colour: unknown key",
        change=('identity = "me@example.com"', 'identity = "me@example.com"\ncolour = 1')),
    Bad("account timeout", "account 'bp': timeout: '0s' is shorter than 1s",
        change=('identity = "me@example.com"', 'identity = "me@example.com"\ntimeout = "0s"')),
    Bad("account interval", "account 'bp': interval: '1x' is not a duration",
        change=('identity = "me@example.com"', 'identity = "me@example.com"\ninterval = "1x"')),
    Bad("allow_insecure_http not a bool", "account 'pt': allow_insecure_http: expected true",
        change=('client_id = "c"', 'client_id = "c"\nallow_insecure_http = "yes"')),
    Bad("base_url missing", "account 'pt': base_url: required",
        change=('base_url = "http://127.0.0.1:9/api"\n', "")),
    Bad("base_url not http", "account 'pt': base_url: is not an http(s) URL",
        change=("http://127.0.0.1:9/api", "ftp://partner.example/{canary}")),
    Bad("base_url plain http", "account 'pt': base_url: plain http to a non-loopback host",
        change=("http://127.0.0.1:9/api", "http://partner.example/api")),
    Bad("base_url with a password", "account 'pt': base_url: must not contain user:password@",
        change=("http://127.0.0.1:9/api", "https://me:{canary}@partner.example/api")),
    Bad("base_url with a bad port", "account 'pt': base_url: is not a valid URL",
        change=("http://127.0.0.1:9/api", "https://partner.example:99999/{canary}")),
    Bad("base_url broken IPv6", "account 'pt': base_url: is not a valid URL",
        change=("http://127.0.0.1:9/api", "https://[::1/{canary}")),
    Bad("base_url with a space", "account 'pt': base_url: contains a space",
        change=("http://127.0.0.1:9/api", "https://partner example/api")),
    Bad("base_url with a query", "account 'pt': base_url: must not have a query",
        change=("http://127.0.0.1:9/api", "https://partner.example/api?key={canary}")),
    # Secrets
    Bad("env not set", "account 'bp': api_key: environment variable BP_KEY is not set",
        env={"BP_KEY": None}),
    Bad("env with a line break", "account 'bp': api_key: environment variable BP_KEY: "
        "contains a line break", env={"BP_KEY": f"env-{CANARY}\nsecond-{CANARY}"}),
    Bad("env not Unicode", "account 'bp': api_key: environment variable BP_KEY: is not valid "
        "Unicode text", env={"BP_KEY": f"env-{CANARY}\udcff"}),
    Bad("secret file missing", "account 'bp': api_secret: file {tmp}/nope: cannot read",
        change=("{tmp}/secret.txt", "{tmp}/nope")),
    Bad("secret file of two lines", "account 'bp': api_secret: file {tmp}/secret.txt: has "
        "more than one line", files=secret_file(f"file-{CANARY}\nsecond-{CANARY}\n")),
    Bad("secret file with CRLF lines", "api_secret: file {tmp}/secret.txt: has more than one",
        files=secret_file(f"file-{CANARY}\r\nsecond\r\n")),
    Bad("secret file empty", "account 'bp': api_secret: file {tmp}/secret.txt: is empty",
        files=secret_file("\n")),
    Bad("secret file not UTF-8", "account 'bp': api_secret: file {tmp}/secret.txt: not UTF-8",
        files=secret_file(b"\xff" + CANARY.encode())),
    Bad("secret file a directory", "account 'bp': api_secret: file {tmp}: is a directory",
        change=("{tmp}/secret.txt", "{tmp}")),
    Bad("secret file with a tab", "api_secret: file {tmp}/secret.txt: contains a control",
        files=secret_file(f"file-{CANARY}\tx\n")),
    Bad("secret file with a BOM", "api_secret: file {tmp}/secret.txt: contains an invisible",
        files=secret_file(f"\ufefffile-{CANARY}\n")),
    Bad("literal with a control character", "account 'pt': secret: contains a control",
        change=("literal-{canary}", "literal-{canary}\\u001b")),
    Bad("literal with a line break", "account 'pt': secret: contains a line break",
        change=("literal-{canary}", "literal-{canary}\\nsecond")),
    Bad("literal with a non-ASCII character", "account 'pt': secret: contains a non-ASCII",
        change=("literal-{canary}", "literal-{canary}\u00e9")),
    Bad("literal empty", "account 'pt': secret: is empty",
        change=('"literal-{canary}"', '""')),
    Bad("no credentials directory", "account 'zb': user_id: credential zb-user: "
        "$CREDENTIALS_DIRECTORY is not set", env={"CREDENTIALS_DIRECTORY": None}),
    Bad("credential name with a slash", "account 'zb': user_id: credential name '../zb-user'",
        change=('"zb-user"', '"../zb-user"')),
    Bad("credential of two lines", "account 'zb': user_id: credential zb-user: has more than",
        files=secret_file(f"cred-{CANARY}\nsecond\n", "creds/zb-user")),
    Bad("unknown secret reference", "account 'zb': user_id: unknown secret reference 'vault'",
        change=('{{ credential = "zb-user" }}', '{{ vault = "{canary}" }}')),
    Bad("two secret references", "account 'zb': user_id: expected a string or one of",
        change=('{{ credential = "zb-user" }}', '{{ credential = "zb-user", env = "BP_KEY" }}')),
    Bad("secret a number", "account 'zb': user_id: expected a string or one of",
        change=('{{ credential = "zb-user" }}', "42")),
    # Per source
    Bad("bitzoom two token sources", "account 'zb': user_id: bearer auth needs exactly one",
        change=('{{ credential = "zb-user" }}', '{{ credential = "zb-user" }}\n'
                'token = "tok-{canary}"')),
    Bad("bitzoom auth scheme", "account 'zb': auth: must be one of bearer, hmac",
        change=('source = "bitzoom"', 'source = "bitzoom"\nauth = "magic"')),
    Bad("bitzoom recv_window", "account 'zb': recv_window: must be between 1 and 60000",
        change=('source = "bitzoom"', 'source = "bitzoom"\nrecv_window = 0')),
    Bad("bitzoom hmac without a secret", "account 'zb': api_secret: required for hmac auth",
        change=('user_id = {{ credential = "zb-user" }}', 'auth = "hmac"\napi_key = "k-{canary}"')),
    Bad("bitzoom empty token command", "account 'zb': token_command: expected a non-empty list",
        change=('user_id = {{ credential = "zb-user" }}', "token_command = []")),
    Bad("bitzoom token command a string", "account 'zb': token_command: expected a non-empty",
        change=('user_id = {{ credential = "zb-user" }}', 'token_command = "get-{canary}"')),
]


@pytest.fixture
def canary_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The secrets BASE refers to, each holding the canary."""
    (tmp_path / "secret.txt").write_text(f"file-{CANARY}\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "zb-user").write_text(f"cred-{CANARY}")
    monkeypatch.setenv("BP_KEY", f"env-{CANARY}")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def fill(text: str, tmp: Path) -> str:
    return text.format(tmp=tmp, canary=CANARY)


def prepare_case(case: Bad, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write the case's files and environment; the --config path."""
    for name, content in case.files.items():
        target = tmp / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, newline="")
    for name, value in case.env.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
    path = (tmp / case.config).resolve()
    if case.config != "config.toml":
        return path
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
        return path
    text = BASE if case.text is None else case.text
    if case.change is not None:
        old, new = case.change
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(fill(text, tmp))
    return path


def test_the_base_config_is_good(canary_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = canary_env / "config.toml"
    path.write_text(fill(BASE, canary_env))
    assert main(["--config", str(path), "check-config"]) == 0
    assert "3 accounts" in capsys.readouterr().out


def test_there_are_at_least_40_malformed_configs() -> None:
    assert len(BAD) >= 40 and len({c.name for c in BAD}) == len(BAD)


@pytest.mark.parametrize("case", BAD, ids=[c.name for c in BAD])
def test_malformed_config(case: Bad, canary_env: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    path = prepare_case(case, canary_env, monkeypatch)
    capsys.readouterr()
    code = main(["--config", str(path), *case.command])
    out, err = capsys.readouterr()
    assert code == 78, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"aggregator: config: {path}: "), lines[0]
    assert fill(case.expect, canary_env) in lines[0]
    assert out == "" and "Traceback" not in err
    assert CANARY not in err


@pytest.mark.parametrize("name", ["binary", "utf-16 with BOM", "database.url port not a number",
                                  "secret file of two lines", "base_url with a password",
                                  "no accounts: run"])
def test_malformed_config_in_a_subprocess(name: str, canary_env: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (case,) = [c for c in BAD if c.name == name]
    path = prepare_case(case, canary_env, monkeypatch)
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(path), *case.command],
        capture_output=True, text=True, cwd=canary_env, check=False, timeout=60,
    )
    assert result.returncode == 78
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert fill(case.expect, canary_env) in result.stderr
    assert "Traceback" not in result.stderr and CANARY not in result.stderr + result.stdout
