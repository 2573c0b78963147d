"""The Sandbox: a local fake of every registered exchange, with knobs for tests and benchmarks."""

from __future__ import annotations

import random
import secrets
import threading
from collections.abc import Iterable
from decimal import ROUND_DOWN, Decimal
from types import TracebackType

from aggregator.sandbox import bitzoom, price_fakes
from aggregator.sandbox.accounts import EXACT, FakeAccount, FakeBalance, RequestLog
from aggregator.sandbox.price_board import PriceBoard
from aggregator.sandbox.registry import FAKES
from aggregator.sandbox.server import App, SandboxServer
from aggregator.sandbox.state import FAULTS, TOKEN_FORMS, Fault, State
from aggregator.sandbox.wire import Reply, Request, json_reply


class Sandbox:
    """Serves fake balances over HTTP and verifies every signature like the real exchange."""

    def __init__(
        self,
        accounts: Iterable[FakeAccount] = (),
        *,
        latency: float = 0.0,
        token_ttl: float = 3600,
        drift_every: float | None = None,
        seed: int = 0,
    ) -> None:
        # A fresh key per sandbox: a token from one run never works in another.
        # The registry itself, not a copy: a fake registered later is served too.
        self.state = State(token_ttl=token_ttl, token_key=secrets.token_bytes(32),
                           fakes=FAKES)
        # What the price fakes serve, and their knobs; on the same clock as the exchanges.
        self.prices = PriceBoard(clock=lambda: self.state.clock())
        for account in accounts:
            self.add(account)
        self.latency = latency
        self.drift_every = drift_every
        self._rng = random.Random(seed)
        self._server: SandboxServer | None = None
        self._threads: list[threading.Thread] = []
        self.url = ""

    # lifecycle

    def start(self) -> Sandbox:
        """Bind 127.0.0.1 on a free port and serve in background threads."""
        if self._server is not None:
            raise RuntimeError("sandbox already started")
        self.state.stopping.clear()
        app = App(self.dispatch, self.latency, self.state.stopping, self.state.log)
        server = SandboxServer(app)
        self._server = server
        host, port = server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        serve = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
            name="sandbox-serve",
        )
        self._threads = [serve]
        if self.drift_every:
            self._threads.append(
                threading.Thread(target=self._drift_loop, daemon=True, name="sandbox-drift")
            )
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, free hung handlers and close every connection. Idempotent."""
        server, self._server = self._server, None
        self.state.stopping.set()
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> Sandbox:
        return self.start() if self._server is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def base_url(self, source: str) -> str:
        """The base URL an aggregator account of ``source`` should be configured with."""
        fake = self.state.fakes.get(source)
        if fake is None:
            raise ValueError(f"unknown source {source!r}; one of {', '.join(self.state.fakes)}")
        return self.url + fake.prefix

    def price_base_url(self, source: str) -> str:
        """The base URL a ``[[prices]]`` source of ``source`` should be configured with."""
        return price_fakes.price_base_url(self.url, source)

    def dispatch(self, request: Request) -> Reply:
        """Route one request to its exchange by path prefix (price fakes first: BitoPro's
        public prices share the balance fake's base URL)."""
        priced = price_fakes.dispatch(self.prices, request)
        if priced is not None:
            return priced
        for fake in self.state.fakes.values():
            prefix = fake.prefix
            if request.path == prefix or request.path.startswith(prefix + "/"):
                return fake.handle(self.state, request)
        return json_reply(404, {"error": "Not Found", "path": request.path}, outcome="not_found")

    # accounts and balances

    def add(self, account: FakeAccount) -> None:
        """Serve ``account`` (replacing one of the same name)."""
        self.state.add(account)

    def account(self, name: str) -> FakeAccount:
        with self.state.lock:
            return self.state.accounts[name]

    def accounts(self) -> list[FakeAccount]:
        with self.state.lock:
            return list(self.state.accounts.values())

    def set_balance(self, name: str, asset: str, balance: FakeBalance) -> None:
        with self.state.lock:
            self.state.accounts[name].balances[asset] = balance

    def remove_asset(self, name: str, asset: str) -> None:
        with self.state.lock:
            del self.state.accounts[name].balances[asset]

    # faults and tokens

    def set_fault(
        self, name: str, fault: str | None, *, count: int | None = None, retry_after: float = 1.0
    ) -> None:
        """Make the next ``count`` balance requests of ``name`` fail (None: until cleared).

        The fault applies after the request's authentication passed, so a wrongly signed
        request is still refused as such. Each PiTrade request counts as one.
        """
        with self.state.lock:
            if name not in self.state.accounts:
                raise KeyError(name)
            if fault is None:
                self.state.faults.pop(name, None)
                return
            if fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
            if count is not None and count < 1:
                raise ValueError("count must be at least 1 (or None for until cleared)")
            self.state.faults[name] = Fault(fault, count, retry_after)

    def expire_tokens(self) -> None:
        """Every Bitzoom bearer token issued so far answers -1002 from now on."""
        with self.state.lock:
            self.state.revoked_through = self.state.token_serial

    def issue_token(self, user_id: str) -> str:
        """A valid Bitzoom bearer JWT for ``user_id``, as the test-token endpoint would give."""
        return bitzoom.issue_token(self.state, user_id)

    def set_token_form(self, form: str) -> None:
        """How the test-token endpoint wraps its token (see ``state.TOKEN_FORMS``)."""
        if form not in TOKEN_FORMS:
            raise ValueError(f"unknown token form {form!r}; one of {', '.join(TOKEN_FORMS)}")
        with self.state.lock:
            self.state.token_form = form

    # drift

    def drift(self) -> None:
        """Nudge a few balance lines by 0.1-1% (at least one last digit), from the seed."""
        rng = self._rng
        with self.state.lock:
            names = sorted(self.state.accounts)
            if not names:
                return
            for name in rng.sample(names, min(len(names), 3 + len(names) // 100)):
                balances = self.state.accounts[name].balances
                assets = sorted(balances)
                if assets:
                    asset = rng.choice(assets)
                    balances[asset] = nudged(balances[asset], rng)

    def _drift_loop(self) -> None:
        assert self.drift_every is not None
        while not self.state.stopping.wait(self.drift_every):
            self.drift()

    # the log

    @property
    def requests(self) -> list[RequestLog]:
        """Every request so far, in the order answered (hung ones when they started hanging)."""
        return self.state.requests

    def count(self, path_contains: str, account: str | None = None) -> int:
        with self.state.lock:
            return sum(
                1
                for r in self.state.requests
                if path_contains in r.path and (account is None or r.account == account)
            )

    def accepted_nonces(self, name: str) -> list[str]:
        """The nonces accepted for account ``name`` (BitoPro, Bitz, Bitzoom HMAC), in order."""
        with self.state.lock:
            return list(self.state.accepted.get(name, []))


def nudged(balance: FakeBalance, rng: random.Random) -> FakeBalance:
    """``balance`` with its total moved slightly, keeping its number of decimal places."""
    total = balance.total
    exponent = total.as_tuple().exponent
    if not isinstance(exponent, int):
        return balance
    unit = Decimal(1).scaleb(min(exponent, 0))
    percent = Decimal(rng.randint(1, 10)) / 1000
    delta = EXACT.multiply(abs(total), percent).quantize(unit, rounding=ROUND_DOWN, context=EXACT)
    delta = max(delta, unit)
    if rng.random() < 0.5 and total - delta >= 0:
        delta = -delta
    new_total = EXACT.add(total, delta)
    available, locked = balance.available, balance.locked
    if available is not None:
        # The locked part stays put; only what is free moves.
        available = min(max(Decimal(0), EXACT.add(available, delta)), new_total)
        if locked is not None:
            locked = EXACT.subtract(new_total, available)
    return FakeBalance(new_total, available, locked)
