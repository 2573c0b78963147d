"""Credentials an auth makes at run time (tokens) are reported the moment they exist.

A configured secret is known before the first request; a fetched or signed token is
not, and a server that echoes it would put it into stored answers and error messages.
An auth that makes one subclasses ``MintsSecrets`` and passes each through ``minted``;
``aggregator.polling.poller.prepare`` connects it to the account's redactor.

Request signatures (BitoPro, Bitz, Bitzoom HMAC) are not reported: each is bound to one
nonce and one request, which the exchange refuses to see twice, and reveals nothing of
the key it was made with.
"""

from __future__ import annotations

from collections.abc import Callable

from aggregator.model import Secret

SecretSink = Callable[[Secret], None]


class MintsSecrets:
    """Mixin for an ``httpx.Auth`` that makes credentials of its own."""

    _secret_sink: SecretSink | None = None

    def report_secrets(self, sink: SecretSink) -> None:
        """Give every credential made from now on to ``sink`` before it is used."""
        self._secret_sink = sink

    def minted(self, secret: Secret) -> Secret:
        """Report ``secret``; returns it, to wrap where a token is made."""
        if self._secret_sink is not None:
            self._secret_sink(secret)
        return secret
