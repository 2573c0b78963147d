"""Everything the exchange handlers share, behind one lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aggregator.sandbox import hostile
from aggregator.sandbox.accounts import FakeAccount, FakeBalance, RequestLog

if TYPE_CHECKING:
    from aggregator.sandbox.fake import Fake

FAULTS = ("malformed", "wrong_shape", "server_error", "rate_limited", "hang", "api_error",
          "echo", *hostile.KINDS)
TOKEN_FORMS = ("text", "json_string", "data_string", "data_token", "top_token")



@dataclass
class Fault:
    kind: str
    remaining: int | None  # None: until cleared
    retry_after: float


def fake_of(fakes: Mapping[str, Fake], account: FakeAccount) -> Fake:
    """The fake exchange that serves ``account``; ValueError if there is none."""
    fake = fakes.get(account.source)
    if fake is None:
        raise ValueError(f"{account.name}: unknown source {account.source!r}; "
                         f"one of {', '.join(fakes)}")
    return fake


MAX_LOG = 200_000  # request log entries kept


class State:
    """Accounts, their credential index, faults, nonces and tokens; thread-safe."""

    def __init__(self, *, token_ttl: float, token_key: bytes,
                 fakes: Mapping[str, Fake]) -> None:
        self.lock = threading.RLock()
        self.fakes = fakes  # source -> its fake exchange
        self.accounts: dict[str, FakeAccount] = {}
        self._index: dict[tuple[str, str, str], str] = {}
        self.faults: dict[str, Fault] = {}
        self.token_ttl = token_ttl
        self.token_key = token_key
        self.token_form = "data_token"
        self.token_serial = 0  # each bitzoom token carries the next serial as "jti"
        self.revoked_through = 0  # tokens with a serial up to this one are expired
        self.last_nonce: dict[str, int] = {}  # bitopro: api_key → last accepted nonce
        self.seen_nonces: dict[tuple[str, str], dict[str, float]] = {}  # (source, key) → nonce → t
        self.accepted: dict[str, list[str]] = {}  # account name → accepted nonces, in order
        self.requests: list[RequestLog] = []
        self.clock: Callable[[], float] = time.time
        self.stopping = threading.Event()

    # accounts

    def add(self, account: FakeAccount) -> None:
        """Serve ``account``; ValueError for one the sandbox could never authenticate."""
        fake = fake_of(self.fakes, account)
        fake.config_items(account)  # before it confuses a test
        with self.lock:
            old = self.accounts.get(account.name)
            if old is not None:
                self._unindex(old)
            for field_name in fake.key_fields:
                value = account.credentials.get(field_name)
                if value:
                    owner = self._index.get((account.source, field_name, value))
                    if owner is not None and owner != account.name:
                        raise ValueError(
                            f"{account.name}: {field_name} already used by {owner}"
                        )
            self.accounts[account.name] = account
            for field_name in fake.key_fields:
                value = account.credentials.get(field_name)
                if value:
                    self._index[(account.source, field_name, value)] = account.name

    def _unindex(self, account: FakeAccount) -> None:
        for key in [k for k, owner in self._index.items() if owner == account.name]:
            del self._index[key]

    def find(self, source: str, field_name: str, value: str) -> FakeAccount | None:
        """The account whose credential ``field_name`` is ``value``, at ``source``."""
        with self.lock:
            name = self._index.get((source, field_name, value))
            return None if name is None else self.accounts.get(name)

    def snapshot(self, account: FakeAccount) -> dict[str, FakeBalance]:
        """A copy of the balances, so an answer is never torn by a concurrent change."""
        with self.lock:
            return {
                asset: FakeBalance(b.total, b.available, b.locked)
                for asset, b in account.balances.items()
            }

    # faults

    def take_fault(self, name: str) -> Fault | None:
        """The fault for this balance request of ``name``, counting it down."""
        with self.lock:
            fault = self.faults.get(name)
            if fault is None:
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self.faults[name]
            return Fault(fault.kind, None, fault.retry_after)

    # nonces

    def accept_increasing(self, key: str, nonce: int, name: str) -> bool:
        """Record ``nonce`` for ``key`` if it is above the last accepted one."""
        with self.lock:
            last = self.last_nonce.get(key)
            if last is not None and nonce <= last:
                return False
            self.last_nonce[key] = nonce
            self._accepted(name, str(nonce))
            return True

    def accept_unique(self, source: str, key: str, nonce: str, name: str, keep: float) -> bool:
        """Record ``nonce`` for ``key`` unless it was used within the last ``keep`` seconds."""
        now = self.clock()
        with self.lock:
            seen = self.seen_nonces.setdefault((source, key), {})
            used = seen.get(nonce)
            if used is not None and now - used < keep:
                return False
            if len(seen) > 256:
                # Forget nonces too old to matter, so a long benchmark stays small.
                for old in [n for n, t in seen.items() if now - t >= keep]:
                    del seen[old]
            seen[nonce] = now
            self._accepted(name, nonce)
            return True

    def _accepted(self, name: str, nonce: str) -> None:
        kept = self.accepted.setdefault(name, [])
        kept.append(nonce)
        if len(kept) > MAX_LOG:
            del kept[: MAX_LOG // 2]

    # log

    def log(self, entry: RequestLog) -> None:
        with self.lock:
            self.requests.append(entry)
            if len(self.requests) > MAX_LOG:
                # A demo left running for days must not grow without bound.
                del self.requests[: MAX_LOG // 2]
