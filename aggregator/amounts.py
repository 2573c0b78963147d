"""Exact amounts: JSON text to Decimal and Decimal to canonical text, never via float.

One grammar for every amount of every source (``parse_amount``), and one JSON reader
(``loads_exact``) whose numbers, nesting and sizes are bounded, so that no answer,
however hostile, can make a later step raise or expand without limit.
"""

from __future__ import annotations

import decimal
import json
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from aggregator.errors import Malformed, SchemaMismatch

# The grammar of an amount, generous for real money (18 decimals for wei, 24 for NEAR,
# supplies of 10^15 whole units) and small enough that every later step stays cheap:
MAX_AMOUNT_TEXT = 100  # characters of an amount written as a JSON string
MAX_EXPONENT_DIGITS = 4  # "1e-18" yes, "1e99999" no
MAX_WRITTEN_DIGITS = 100  # digits of the number as written, trailing zeros included
MAX_WRITTEN_EXPONENT = 100  # |exponent| of the number as written (0e-5000 is refused)
MAX_SIGNIFICANT = 60  # digits from the first to the last non-zero one
MAX_INTEGER_DIGITS = 40  # |amount| < 10^40
MAX_DECIMALS = 40  # no non-zero digit below 10^-40

# ASCII only, written out: Python's \d and Decimal() also take Arabic-Indic or fullwidth
# digits ("\u0661\u0662\u0663" is 123 to them).
_AMOUNT_TEXT = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,%d})?"  # noqa: UP031
    % MAX_EXPONENT_DIGITS)
_LONG_EXPONENT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][+-]?[0-9]+")
_ASCII_SPACE = " \t\r\n"

# JSON as read: a number token longer than this makes the whole answer malformed (Python
# refuses integers over 4,300 digits with a ValueError), and so does deeper nesting (the
# C scanner recurses: about 1,000 levels end in RecursionError).
MAX_JSON_NUMBER = 1000
MAX_DEPTH = 64


def _refuse_constant(name: str) -> Any:
    raise Malformed(f"JSON contains {name}, which is not a number")


def _json_decimal(text: str) -> Decimal:
    if len(text) > MAX_JSON_NUMBER:
        raise Malformed(f"body has a JSON number of {len(text)} characters "
                        f"(at most {MAX_JSON_NUMBER})")
    try:
        return Decimal(text)
    except decimal.DecimalException:
        # An exponent beyond what Decimal can hold: "1e9999999999999999999999".
        raise Malformed(f"body has a JSON number out of any range: {text[:40]}") from None


def _json_int(text: str) -> int:
    if len(text) > MAX_JSON_NUMBER:
        raise Malformed(f"body has a JSON integer of {len(text)} digits "
                        f"(at most {MAX_JSON_NUMBER})")
    return int(text)


def loads_exact(body: bytes) -> Any:
    """Parse JSON with every fractional number as an exact Decimal, within the bounds above."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Malformed(f"body is not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_float=_json_decimal, parse_int=_json_int,
                           parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise Malformed(
            f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise Malformed(f"body is JSON nested deeper than {MAX_DEPTH} levels") from None
    # Depth cannot exceed the number of brackets: most answers skip the walk.
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise Malformed(f"body is JSON nested deeper than {MAX_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value``, without recursing."""
    if not isinstance(value, dict | list):
        return 0
    deepest = 0
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack and deepest <= MAX_DEPTH:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return deepest


def _shown(value: object) -> str:
    """The refused value, cut short; repr escapes anything that could not be stored."""
    if isinstance(value, str):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    text = str(value)
    return text[:40] + ("..." if len(text) > 40 else "")


def parse_amount(value: object, where: str) -> Decimal:
    """A finite Decimal from a JSON string, integer or exact-decimal number.

    The one grammar for every amount of every source, so that nothing later (arithmetic,
    canonical text, the database) can fail or blow up on it:

    - a string: at most 100 characters (ASCII spaces around it allowed), ASCII digits
      only, an optional sign, an optional fraction (``1.``, ``.5``), an optional exponent
      of at most 4 digits; never NaN, Infinity, ``1_000``, ``0x10`` or non-ASCII digits;
    - a JSON number: already exact (``loads_exact``), ASCII by JSON's own grammar;
    - either way: at most 100 digits and an exponent of at most ±100 as written, at most
      60 significant digits, below 10^40 in magnitude and with no non-zero digit below
      10^-40.

    ``where`` names the field for the error message; every refusal is a schema error.
    """
    if isinstance(value, bool):
        raise SchemaMismatch(f"{where}: expected a number, got a boolean")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        if abs(value) >= 10 ** MAX_INTEGER_DIGITS:
            raise SchemaMismatch(f"{where}: {_shown(value)} is not an amount: "
                                 f"more than {MAX_INTEGER_DIGITS} integer digits")
        amount = Decimal(value)
    elif isinstance(value, str):
        text = value.strip(_ASCII_SPACE) if len(value) <= MAX_AMOUNT_TEXT else ""
        if not _AMOUNT_TEXT.fullmatch(text):
            why = (f"an exponent of more than {MAX_EXPONENT_DIGITS} digits"
                   if _LONG_EXPONENT.fullmatch(text) else "")
            raise SchemaMismatch(f"{where}: {_shown(value)} is not a decimal number"
                                 + (f": {why}" if why else ""))
        amount = Decimal(text)
    elif isinstance(value, float):
        # Only reachable if someone parsed JSON without loads_exact: refuse, never guess.
        raise SchemaMismatch(f"{where}: got a float; amounts must be parsed exactly")
    else:
        raise SchemaMismatch(f"{where}: expected a number, got {type(value).__name__}")
    problem = _out_of_bounds(amount)
    if problem:
        raise SchemaMismatch(f"{where}: {_shown(value)} is not an amount: {problem}")
    return amount


def _out_of_bounds(amount: Decimal) -> str | None:
    if not amount.is_finite():
        return "not finite"
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    if len(digits) > MAX_WRITTEN_DIGITS:
        return f"more than {MAX_WRITTEN_DIGITS} digits"
    if abs(exponent) > MAX_WRITTEN_EXPONENT:
        return f"an exponent beyond ±{MAX_WRITTEN_EXPONENT}"
    if not amount:
        return None
    significant = len(digits)
    while digits[significant - 1] == 0:
        significant -= 1
    lowest = exponent + len(digits) - significant  # the place of the last non-zero digit
    if significant > MAX_SIGNIFICANT:
        return f"more than {MAX_SIGNIFICANT} significant digits"
    if amount.adjusted() >= MAX_INTEGER_DIGITS:
        return f"more than {MAX_INTEGER_DIGITS} integer digits"
    if lowest < -MAX_DECIMALS:
        return f"more than {MAX_DECIMALS} decimal places"
    return None


# Arithmetic on amounts must never round: the default context keeps only 28 digits.
# Amounts within the grammar have at most 81 digits between them, far below this.
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
