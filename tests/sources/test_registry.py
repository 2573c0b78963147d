"""Drift tests: the two registries (balance sources, fake exchanges) match, every place
derived from them covers every source, and each source is in the config, README and tests."""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from aggregator.config import load_config
from aggregator.model import Secret
from aggregator.polling.ratelimit import RateLimits
from aggregator.sandbox import (
    FAKES,
    Fake,
    Sandbox,
    account_tables,
    bench_accounts,
    demo_accounts,
    e2e_accounts,
)
from aggregator.sandbox.wire import Request
from aggregator.sources.base import AccountConfig, Source
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


def registry_problems(sources: Mapping[str, Source[Any]],
                      fakes: Mapping[str, Fake]) -> list[str]:
    """Where the balance sources and the fake exchanges disagree, one line each."""
    problems = [f"{name}: no fake exchange in aggregator/sandbox/registry.py"
                for name in sources if name not in fakes]
    problems += [f"{name}: a fake exchange of no registered balance source"
                 for name in fakes if name not in sources]
    problems += [f"{name}: registered as {source.name!r}" for name, source in sources.items()
                 if source.name != name]
    problems += [f"{name}: the fake says it fakes {fake.source!r}" for name, fake in fakes.items()
                 if fake.source != name]
    problems += [f"{name}: no title" for name, source in sources.items()
                 if not source.title.strip()]
    for a, b in itertools.permutations(fakes.values(), 2):
        if a.prefix == b.prefix or b.prefix.startswith(a.prefix + "/"):
            problems.append(f"{b.source}: its prefix {b.prefix} is under {a.source}'s")
    return problems


def coverage_problems(folder: Path) -> list[str]:
    """Sources missing from a place derived from the live registries, one line each."""
    names = set(SOURCES)
    kinds = sum(len(fake.variants) for fake in FAKES.values())
    e2e = e2e_accounts("-drift")
    sandbox = Sandbox(e2e)
    sandbox.url = "http://127.0.0.1:9"
    config = folder / "drift.toml"
    config.write_text('[database]\nurl = "sqlite:///unused.db"\n' + account_tables(sandbox, e2e))
    limits = RateLimits()
    places = {
        "the end-to-end accounts": {a.source for a in e2e},
        "their expected holdings": {a.source for a in e2e
                                    if FAKES[a.source].expected_holdings(a)},
        "the config written for them": {a.source for a in load_config(config).accounts},
        "the demo and daemon-test accounts": {a.source for a in demo_accounts()},
        "the benchmark fleet": {a.source for a in bench_accounts(kinds)},
        # The daemon tests count a poll by its fake's last path; the fake must answer it.
        "the daemon tests' poll paths": {
            name for name, fake in FAKES.items()
            if sandbox.dispatch(Request("GET", fake.poll_marker, "", {}, b"")).outcome
            != "not_found"},
        "the rate limits": {name for name, source in SOURCES.items()
                            if source.rate_limit is None
                            or limits.bucket(name, "https://h") is not None},
    }
    return [f"{name}: missing from {place}" for place, covered in places.items()
            for name in sorted(names - covered)]


def test_the_registries_match() -> None:
    assert registry_problems(SOURCES, FAKES) == []


def test_every_derived_place_covers_every_source(tmp_path: Path) -> None:
    assert coverage_problems(tmp_path) == []


def test_a_source_without_its_fake_is_reported(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(FAKES, "bitz")
    assert registry_problems(SOURCES, FAKES) == [
        "bitz: no fake exchange in aggregator/sandbox/registry.py"]
    assert "bitz: missing from the end-to-end accounts" in coverage_problems(tmp_path)
    assert "bitz: missing from the benchmark fleet" in coverage_problems(tmp_path)


def test_a_fake_without_its_source_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(SOURCES, "pitrade")
    assert registry_problems(SOURCES, FAKES) == [
        "pitrade: a fake exchange of no registered balance source"]


def test_clashing_prefixes_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(FAKES, "bitz", dataclasses.replace(FAKES["bitz"], prefix="/bitopro"))
    assert registry_problems(SOURCES, FAKES) == [
        "bitopro: its prefix /bitopro/v3 is under bitz's"]


@pytest.mark.parametrize("name", NAMES)
def test_sandbox_serves_it(name: str) -> None:
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
