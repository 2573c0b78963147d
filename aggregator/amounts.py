"""Exact amounts: JSON text to Decimal and Decimal to canonical text, never via float."""

from __future__ import annotations

import decimal
import json
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from aggregator.errors import Malformed, SchemaMismatch

_DECIMAL_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _refuse_constant(name: str) -> Any:
    raise Malformed(f"JSON contains {name}, which is not a number")


def loads_exact(body: bytes) -> Any:
    """Parse JSON with every fractional number as an exact Decimal."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Malformed(f"body is not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise Malformed(
            f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def parse_amount(value: object, where: str) -> Decimal:
    """A finite Decimal from a JSON string, integer or exact-decimal number.

    ``where`` names the field for the error message.
    """
    if isinstance(value, bool):
        raise SchemaMismatch(f"{where}: expected a number, got a boolean")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not _DECIMAL_TEXT.fullmatch(text):
            raise SchemaMismatch(f"{where}: {value[:40]!r} is not a decimal number")
        amount = Decimal(text)
    elif isinstance(value, float):
        # Only reachable if someone parsed JSON without loads_exact: refuse, never guess.
        raise SchemaMismatch(f"{where}: got a float; amounts must be parsed exactly")
    else:
        raise SchemaMismatch(f"{where}: expected a number, got {type(value).__name__}")
    if not amount.is_finite():
        raise SchemaMismatch(f"{where}: {amount} is not finite")
    return amount


# Arithmetic on amounts must never round: the default context keeps only 28 digits.
_EXACT = decimal.Context(prec=200, traps=[decimal.Inexact, decimal.InvalidOperation])


def subtract(a: Decimal, b: Decimal) -> Decimal:
    """``a - b`` without rounding, whatever the number of digits."""
    return _EXACT.subtract(a, b)


def exact_sum(amounts: Iterable[Decimal]) -> Decimal:
    """The sum without rounding, whatever the number of digits."""
    total = Decimal(0)
    for amount in amounts:
        total = _EXACT.add(total, amount)
    return total


def canonical(amount: Decimal) -> str:
    """Plain decimal text: no exponent, no trailing zeros, no negative zero."""
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {amount}")
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text
