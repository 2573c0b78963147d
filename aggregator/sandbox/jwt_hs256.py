"""HS256 JSON Web Tokens, written out by hand so the sandbox checks clients independently."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any

# Compact JWS segments are unpadded base64url (RFC 7515 section 2).
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


class InvalidToken(Exception):
    """Not a well-formed HS256 token, or its signature does not match."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(segment: str) -> bytes:
    if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        raise InvalidToken("segment is not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("segment is not unpadded base64url") from None


def encode(claims: dict[str, Any], key: bytes) -> str:
    """A compact HS256 token carrying ``claims``."""
    header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def _json_object(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_unb64url(segment))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidToken("segment is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken("segment is not a JSON object")
    return value


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) without checking the signature: to learn which key to check with."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not three dot-separated segments")
    return _json_object(parts[0]), _json_object(parts[1])


def verify(token: str, key: bytes) -> dict[str, Any]:
    """The claims of a token whose header says HS256 and whose signature matches ``key``."""
    header, claims = unverified(token)
    if header.get("alg") != "HS256":
        # Accepting whatever alg the token names is the classic "alg: none" hole.
        raise InvalidToken(f"alg {header.get('alg')!r} is not HS256")
    head, payload, signature = token.split(".")
    expected = hmac.new(key, f"{head}.{payload}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _unb64url(signature)):
        raise InvalidToken("signature does not match")
    return claims


def numeric_claim(claims: dict[str, Any], name: str) -> float:
    """A NumericDate claim; booleans and strings are not dates."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"claim {name!r} is missing or not a number")
    return float(value)
