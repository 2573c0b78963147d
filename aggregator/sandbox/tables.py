"""The ``[[accounts]]`` TOML tables that point an aggregator config at a running sandbox."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from aggregator.sandbox.accounts import FakeAccount
from aggregator.sandbox.state import fake_of

if TYPE_CHECKING:
    from aggregator.sandbox.core import Sandbox


def toml_string(value: str) -> str:
    """A literal string when TOML allows one, else a basic string with every escape needed."""
    if "'" not in value and all(c == "\t" or (c >= " " and c != "\x7f") for c in value):
        return f"'{value}'"
    escaped = []
    for c in value:
        if c == '"':
            escaped.append('\\"')
        elif c == "\\":
            escaped.append("\\\\")
        elif c < " " or c == "\x7f":
            escaped.append(f"\\u{ord(c):04X}")
        else:
            escaped.append(c)
    return '"' + "".join(escaped) + '"'


def account_tables(sandbox: Sandbox, accounts: Iterable[FakeAccount]) -> str:
    """One ``[[accounts]]`` table per account, pointing at ``sandbox``."""
    tables = []
    for account in accounts:
        items = [
            ("name", account.name),
            ("source", account.source),
            ("base_url", sandbox.base_url(account.source)),
            *fake_of(sandbox.state.fakes, account).config_items(account),
        ]
        lines = ["[[accounts]]"] + [f"{key} = {toml_string(value)}" for key, value in items]
        tables.append("\n".join(lines) + "\n")
    return "\n".join(tables)
