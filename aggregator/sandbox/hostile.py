"""Answers that try to knock a client over: huge, compressed into a bomb, or absurd numbers.

Nothing here is held in memory whole: the big body is a generator, the bomb is a 1 MiB
gzip stream made of one repeated deflate block (it expands to 1 GiB).
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Callable, Iterator

from aggregator.sandbox.accounts import FakeAccount
from aggregator.sandbox.wire import Reply

KINDS = ("big_body", "gzip_bomb", "bad_gzip", "huge_amount")
BIG_BODY_BYTES = 200 * 1000 * 1000
BOMB_MIB = 1024  # what the bomb expands to
HUGE_AMOUNT = "1e999999999"  # 11 bytes; written out, 10^9 digits
_CHUNK = 64 * 1024


def big_body(size: int = BIG_BODY_BYTES) -> Iterator[bytes]:
    """``size`` bytes of a JSON list that never ends, made as they are sent."""
    row = b'{"currency":"btc","amount":"1","available":"1"},'
    block = b'{"data":[' + row * (_CHUNK // len(row))
    yield block
    sent = len(block)
    block = row * (_CHUNK // len(row))
    while sent < size:
        part = block[: size - sent]
        sent += len(part)
        yield part


@functools.cache
def gzip_bomb(mib: int = BOMB_MIB) -> bytes:
    """A valid gzip stream of ``mib`` MiB of zeros, about 1 KiB per MiB."""
    zeros = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    # A full flush ends the block without reference to what came before: it can repeat.
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + block * mib + end + struct.pack("<II", crc, (mib << 20) & 0xFFFFFFFF)


# A success answer in the account's own shape whose one amount is the given text.
WithAmount = Callable[[FakeAccount, str, float], Reply]


def reply(with_amount: WithAmount, account: FakeAccount, kind: str, now: float) -> Reply:
    """The answer of hostile fault ``kind`` (one of ``KINDS``) at the account's exchange."""
    if kind == "big_body":
        answer = Reply(200, b"", chunks=big_body())
    elif kind == "gzip_bomb":
        answer = Reply(200, gzip_bomb(), headers={"Content-Encoding": "gzip"})
    elif kind == "bad_gzip":
        answer = with_amount(account, "1", now)
        answer.headers["Content-Encoding"] = "gzip"  # but it is not
    elif kind == "huge_amount":
        answer = with_amount(account, HUGE_AMOUNT, now)
    else:
        raise ValueError(f"unknown hostile fault {kind!r}")
    answer.account, answer.outcome = account.name, f"fault:{kind}"
    return answer
