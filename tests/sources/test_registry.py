"""Drift test: every registered source is wired into config, sandbox, README and tests."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from aggregator.model import Secret
from aggregator.sandbox import Sandbox
from aggregator.sandbox import accounts as sandbox_accounts
from aggregator.sources.base import AccountConfig
from aggregator.sources.registry import SOURCES

ROOT = Path(__file__).resolve().parents[2]
RECORDED = Path(__file__).parent / "recorded"
CREDENTIAL_FIELDS = ("api_key", "api_secret", "secret", "token", "user_id")
NAMES = sorted(SOURCES)


def test_registry_keys_are_source_names() -> None:
    assert NAMES, "no source registered"
    for name, source in SOURCES.items():
        assert source.name == name


@pytest.mark.parametrize("name", NAMES)
def test_example_config_has_an_account(name: str) -> None:
    config = tomllib.loads((ROOT / "config" / "example.toml").read_text(encoding="utf-8"))
    sources = [account.get("source") for account in config.get("accounts", [])]
    assert name in sources, f'config/example.toml: no [[accounts]] with source = "{name}"'


@pytest.mark.parametrize("name", NAMES)
def test_sandbox_knows_it(name: str) -> None:
    assert name in sandbox_accounts.SOURCES
    sandbox = Sandbox()  # never started: base_url must not need a server
    url = sandbox.base_url(name)
    assert isinstance(url, str) and url, f"Sandbox().base_url({name!r}) gave {url!r}"


@pytest.mark.parametrize("name", NAMES)
def test_readme_has_a_row(name: str) -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert any(line.startswith(f"| `{name}` |") for line in lines), (
        f"README.md: no table row starting with | `{name}` |"
    )


@pytest.mark.parametrize("name", NAMES)
def test_has_recorded_polls(name: str) -> None:
    files = sorted((RECORDED / name).glob("*.json"))
    assert len(files) >= 3, f"tests/sources/recorded/{name}/ has {len(files)} files, want >= 3"


def _is_secret_type(hint: Any) -> bool:
    if hint is Secret:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = set(typing.get_args(hint))
        return args == {Secret, type(None)}
    return False


@pytest.mark.parametrize("name", NAMES)
def test_config_class_types_credentials_as_secret(name: str) -> None:
    config = SOURCES[name].config
    assert isinstance(config, type) and issubclass(config, AccountConfig)
    assert dataclasses.is_dataclass(config)
    hints = typing.get_type_hints(config)
    for field in CREDENTIAL_FIELDS:
        if field in hints:
            assert _is_secret_type(hints[field]), (
                f"{config.__name__}.{field} is {hints[field]!r}, not Secret or Secret | None"
            )
    # Every source has at least one credential, and secrets() finds it for redaction.
    assert any(f in hints for f in CREDENTIAL_FIELDS), f"{config.__name__}: no credential field"
