"""Remove an account's secret values from anything that is kept or shown."""

from __future__ import annotations

from collections.abc import Iterable

from aggregator.model import Secret

MARK = "[redacted]"


class Redactor:
    """Replaces every occurrence of the given secrets, in text and in bytes."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        # Longest first, so a secret containing another is replaced whole.
        values = sorted({s.reveal() for s in secrets if s.reveal()}, key=len, reverse=True)
        self._text = values
        self._bytes = [v.encode() for v in values]

    def text(self, value: str) -> str:
        for secret in self._text:
            value = value.replace(secret, MARK)
        return value

    def bytes(self, value: bytes) -> bytes:
        for secret in self._bytes:
            value = value.replace(secret, MARK.encode())
        return value
