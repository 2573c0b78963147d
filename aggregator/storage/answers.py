"""How raw answers are stored: as sent, or as a zlib delta against an earlier answer.

Exchanges that put a timestamp in every body (Bitz, Bitzoom's "success" envelope,
PiTrade's properties) make every answer new, so deduplication alone keeps ~300-800 bytes
per poll. Compressed with the previous answer of the same endpoint as zlib's preset
dictionary, such a body takes a few dozen bytes, and decoding needs only that one base.
"""

from __future__ import annotations

import zlib

PLAIN = "plain"
DELTA = "zdelta"  # zlib, preset dictionary = the body of raw_responses.base_id (plain)

# Below this share of the body's size a delta is worth a lookup when read.
WORTH = 0.5


def encode_delta(body: bytes, base: bytes) -> bytes | None:
    """``body`` compressed against ``base``, or None when that does not pay."""
    packer = zlib.compressobj(level=9, zdict=base)
    packed = packer.compress(body) + packer.flush()
    return packed if len(packed) < len(body) * WORTH else None


def decode(encoding: str, stored: bytes, base: bytes | None) -> bytes:
    if encoding == PLAIN:
        return stored
    if encoding == DELTA and base is not None:
        unpacker = zlib.decompressobj(zdict=base)
        return unpacker.decompress(stored) + unpacker.flush()
    raise ValueError(f"cannot decode a raw answer stored as {encoding!r}")
