"""Config loading: secret references, validation lines, the http refusal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.config import load_config, parse_duration
from aggregator.errors import ConfigError
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
    assert [parse_duration(t).seconds for t in ("1s", "5m", "1h", "1.5m")] == [1, 300, 3600, 90]
    for bad in ("0s", "5", "5d", "", "-1s"):
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
