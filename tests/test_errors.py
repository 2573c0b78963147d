"""The error tree is the one list of kinds: the README, the docstring and the code agree."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import aggregator
from aggregator import errors
from aggregator.polling import poller
from aggregator.polling.ratelimit import HoldPolicy

README = Path(__file__).resolve().parent.parent / "README.md"

# Every kind ever stored in a poll_log: databases keep them, so none may go or change.
STORED = {
    "timeout", "unreachable", "rate_limited", "server_error", "bad_credentials",
    "permission_denied", "clock_skew", "token_expired", "token_refresh_failed", "malformed",
    "schema", "api_error", "bug",
}


def readme_kinds() -> dict[str, bool]:
    """The README's table of kinds: kind → retried."""
    rows = re.findall(r"^\| `([a-z_]+)` \| (yes|no) \|", README.read_text(), re.MULTILINE)
    assert rows, "the README has no table of error kinds"
    kinds = {kind: retried == "yes" for kind, retried in rows}
    assert len(kinds) == len(rows), "a kind is listed twice"
    return kinds


def test_the_readme_lists_every_kind_and_whether_it_is_retried() -> None:
    assert readme_kinds() == {kind: error.retryable for kind, error in errors.kinds().items()}


def test_the_readme_states_the_hold_policy() -> None:
    policy = HoldPolicy()
    text = " ".join(README.read_text().split())
    assert f"(at most {policy.longest / 3600:g} h), else for {policy.base:g} s, doubling " \
           f"with each hold in a row up to {policy.cap / 60:g} min" in text


def test_the_tree_in_the_docstring_names_every_kind() -> None:
    drawn = dict(re.findall(r"[├└]─ (\w+)\s+([a-z_]+)\b", errors.__doc__ or ""))
    named = {error.__name__: kind for kind, error in errors.kinds().items()}
    assert {cls: drawn.get(cls) for cls in named} == named


def test_kinds_never_disappear() -> None:
    assert set(errors.kinds()) >= STORED


def test_the_poller_retries_what_the_tree_says() -> None:
    retried = {kind for kind, error in errors.kinds().items() if error.retryable}
    assert retried == {"timeout", "unreachable", "rate_limited", "server_error"}
    assert retried == poller._RETRYABLE
    assert [k for k, e in errors.kinds().items() if e.holds_host] == ["rate_limited"]


def test_every_error_a_poll_can_end_in_is_in_the_tree() -> None:
    # A SourceError subclass elsewhere would be a kind the README and the poller miss.
    for module in pkgutil.walk_packages(aggregator.__path__, "aggregator."):
        if not module.name.startswith("aggregator.migrations") \
                and not module.name.endswith(".__main__"):  # these run on import
            importlib.import_module(module.name)
    seen: list[type[errors.SourceError]] = []
    todo: list[type[errors.SourceError]] = [errors.SourceError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    for cls in seen:
        assert cls.__module__ == errors.__name__, f"{cls.__qualname__} in {cls.__module__}"
        if not cls.__subclasses__():  # what is raised names its own kind
            assert "kind" in vars(cls), cls.__name__


def test_every_source_error_carries_its_code_and_retry_after() -> None:
    limited = errors.RateLimited("HTTP 429", 4.0, code=-1003)
    assert (limited.retry_after, limited.code, str(limited)) == (4.0, -1003, "HTTP 429")
    api = errors.ApiError("Bitz status -999", -999)
    assert (api.code, api.retry_after) == (-999, None)
    plain = errors.Malformed("not JSON")
    assert (plain.code, plain.retry_after) == (None, None)
