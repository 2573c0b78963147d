"""Read an answer within a size limit, decompressing it ourselves so a bomb never expands.

httpx would decode ``Content-Encoding`` for us, but without any bound: a 1 MiB gzip
bomb becomes gigabytes in memory before anyone can look at it. So every answer is read
as raw bytes (``stream=True``) and decoded here, layer by layer, each layer producing at
most ``max_answer_bytes``. Only what can be bounded is asked for: ``gzip`` and
``deflate`` (zlib's ``max_length``). ``br`` is never asked for (httpx decodes it only
with the brotli package, which is not a dependency); a server that sends it anyway, or
any other encoding, gets its answer refused as ``malformed`` with the first KiB of the
raw bytes kept, as does a body declared gzip that is not.

Every read of a poll goes through here, including the ones an auth flow makes (the
Bitzoom token endpoint, the 401 before a re-signed PiTrade request): the poller drives
the flow itself and hands it answers already read.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import cast

import httpx

from aggregator import errors

# The default maximum size of one answer, after decompression.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
# What is kept of a refused answer (too large, or not decodable): its first KiB.
KEPT_BYTES = 1024
# Read ahead of the kept part, so that a secret cut by the first KiB is still seen whole
# (and redacted) before the cut.
_WINDOW = 64 * 1024
ACCEPT_ENCODING = "gzip, deflate"
# Headers about the bytes on the wire: wrong for the decoded body an auth flow is given.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


@dataclass(frozen=True)
class Body:
    """A read answer body: decoded, or for a refused one the start of what was read."""

    content: bytes
    problem: errors.ResponseError | None = None

    def kept(self, redact: Callable[[bytes], bytes]) -> bytes:
        """What to store: all of it, or the first KiB of a refused one (redacted first)."""
        content = redact(self.content)
        return content if self.problem is None else content[:KEPT_BYTES]


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, read: what the poller stores and the auth flows look at."""

    request: httpx.Request
    status: int
    headers: httpx.Headers
    body: Body

    @property
    def refused(self) -> errors.ResponseError | None:
        """Why a success answer cannot be used; error statuses are classified by status."""
        if 200 <= self.status < 300:
            return self.body.problem
        return None

    def response(self) -> httpx.Response:
        """An ``httpx.Response`` with the decoded body, for an auth flow to read."""
        headers = [(k, v) for k, v in self.headers.multi_items()
                   if k.lower() not in _WIRE_HEADERS]
        return httpx.Response(self.status, headers=headers, content=self.body.content,
                              request=self.request)


async def fetch(client: httpx.AsyncClient, request: httpx.Request,
                max_answer_bytes: int = MAX_ANSWER_BYTES) -> Answer:
    """Send ``request`` as it is (no auth) and read its answer within the limit."""
    response = await client.send(request, stream=True)
    try:
        raw = cast(AsyncGenerator[bytes, None], response.aiter_raw())  # it is one
        async with contextlib.aclosing(raw) as chunks:
            body = await read_body(chunks, response.headers.get("content-encoding"),
                                   max_answer_bytes)
    finally:
        await response.aclose()  # before the end of the body: the connection is dropped
    return Answer(request, response.status_code, response.headers, body)


class _TooLarge(Exception):
    def __init__(self, partial: bytes = b"") -> None:
        super().__init__()
        self.partial = partial  # what the layer had produced, for the kept part


class _Undecodable(Exception):
    pass


class _Layer:
    """One gzip or deflate layer whose output never exceeds ``limit`` bytes in all."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self._limit = limit
        self._produced = 0
        self._first = True
        self._inflater = self._new()

    def _new(self, raw_deflate: bool = False) -> zlib._Decompress:
        if self.name == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        # "deflate" is meant to be zlib-wrapped, but some servers send it raw.
        return zlib.decompressobj(-zlib.MAX_WBITS if raw_deflate else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> bytes:
        out = b""
        while data:
            if self._inflater.eof:
                data = self._after_end(data)
                if not data:
                    break
            room = self._limit - self._produced
            try:
                # max_length = room + 1: one byte more than allowed proves it too large.
                part = self._inflater.decompress(data, room + 1)
            except zlib.error as exc:
                if self._first and self.name == "deflate":
                    self._first = False
                    self._inflater = self._new(raw_deflate=True)
                    continue
                raise _Undecodable(f"not valid {self.name} data ({exc})") from None
            self._first = False
            self._produced += len(part)
            out += part
            if self._produced > self._limit:
                raise _TooLarge(out)
            # Input stops only at the end of the stream or when output hit max_length,
            # which the check above has refused.
            data = self._inflater.unused_data if self._inflater.eof else b""
        return out

    def _after_end(self, data: bytes) -> bytes:
        """Bytes after a finished stream: another gzip member, NUL padding or an error."""
        if not data.strip(b"\0"):
            return b""
        if self.name != "gzip":
            raise _Undecodable(f"data after the end of the {self.name} stream")
        self._inflater = self._new()
        return data

    def finish(self, saw_data: bool) -> None:
        if saw_data and not self._inflater.eof:
            raise _Undecodable(f"the {self.name} stream ends early")


def _layers(content_encoding: str | None, limit: int) -> list[_Layer]:
    """The decoders for a Content-Encoding, in the order to apply them."""
    names = [n.strip().lower() for n in (content_encoding or "").split(",")]
    layers = []
    for name in reversed(names):
        if name in ("", "identity"):
            continue
        if name == "x-gzip":
            name = "gzip"
        if name not in ("gzip", "deflate"):
            raise _Undecodable(f"it is encoded as {name[:20]!r}, which was not asked for "
                               f"(Accept-Encoding: {ACCEPT_ENCODING})")
        layers.append(_Layer(name, limit))
    return layers


def _size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit % 2**20 == 0 else f"{limit} bytes"


async def read_body(chunks: AsyncIterator[bytes], content_encoding: str | None,
                    max_answer_bytes: int = MAX_ANSWER_BYTES) -> Body:
    """Read raw ``chunks`` and decode them, stopping as soon as a limit is passed.

    An answer over ``max_answer_bytes`` (raw or decoded) is refused as ``too_large``
    keeping the start of the decoded body; one that cannot be decoded is ``malformed``,
    keeping the start of the raw bytes.
    """
    raw_head = bytearray()
    decoded = bytearray()
    raw_size = 0
    layers: list[_Layer] = []
    try:
        layers = _layers(content_encoding, max_answer_bytes)
        async for chunk in chunks:
            raw_size += len(chunk)
            if len(raw_head) < _WINDOW:
                raw_head += chunk[:_WINDOW - len(raw_head)]
            try:
                for layer in layers:
                    chunk = layer.feed(chunk)
            except _TooLarge as exc:
                if layer is layers[-1]:  # its output is the body itself
                    decoded += exc.partial[:_WINDOW]
                raise
            decoded += chunk
            if len(decoded) > max_answer_bytes or raw_size > max_answer_bytes:
                raise _TooLarge
        for layer in layers:
            layer.finish(raw_size > 0)
    except _TooLarge:
        encoded = " (decompressed)" if layers else ""
        return Body(bytes(decoded[:_WINDOW]), errors.AnswerTooLarge(
            f"the answer is larger than {_size(max_answer_bytes)}{encoded}; "
            f"its first {KEPT_BYTES} bytes are kept"))
    except _Undecodable as exc:
        async for chunk in chunks:  # the rest of the window, for the kept part
            if len(raw_head) >= _WINDOW:
                break
            raw_head += chunk[:_WINDOW - len(raw_head)]
        return Body(bytes(raw_head), errors.Malformed(
            f"the answer cannot be decoded: {exc}; its first {KEPT_BYTES} raw bytes are kept"))
    return Body(bytes(decoded))
