"""Property-based: no answer, however hostile, makes a parser fail unexpectedly.

Every parser in the registry gets hundreds of generated polls: random JSON-ish structures,
mutations of the recorded answers, hostile strings (lone surrogates, NUL, controls,
non-ASCII digits), hostile numbers (huge exponents, 5,000-digit integers), deep nesting,
random bytes, wrong statuses and answer counts. Each must give holdings or raise a
``SourceError``; holdings hold no float, only amounts within the grammar, and only text
that encodes to UTF-8 without NUL. A twin of each structured answer with every non-ASCII
digit replaced by "X" must give the same amounts: no non-ASCII digit was read as one.

Deterministic (derandomized, no example database); each test asserts how many examples
it ran, so it cannot silently run none.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import unicodedata
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator import errors
from aggregator.amounts import (
    MAX_AMOUNT_TEXT,
    canonical,
    exact_sum,
    loads_exact,
    parse_amount,
    subtract,
)
from aggregator.model import Holding, RawResponse
from aggregator.sources.registry import SOURCES
from tests.sources.test_recorded import CASE_FILES, load_case

EXAMPLES_PER_SOURCE = 400
SETTINGS = settings(
    max_examples=EXAMPLES_PER_SOURCE, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)


@dataclasses.dataclass(frozen=True)
class Raw:
    """A token written into the JSON text as it is: a number JSON may or may not allow."""

    text: str


NON_ASCII_DIGITS = "\u0661\u0662\u0663\u06f4\u0966\uff11\uff15\U0001d7d9\u09e7\u0e51"
HOSTILE_STRINGS = [
    "", " ", "\x00", "BTC\x00", "\ud800", "a\udfffb", "\ud83d", "\ufeff", "\u200b",
    "btc\n", "\x1b[2J", "\u202e", "x" * 65, "ß" * 40, "ΐ" * 30, "<script>",
    "\u0661\u0662\u0663", "1e\u0661", "\uff11\uff12\uff13", "\u0663.\u0665", "12\u0663",
    "\u0661.5", "1\u00a0000",
    "1e9999999999999999999999", "1e999999999", "1e-999999999", "0e-999999999",
    "9" * 201, "1" * 61, "0." + "0" * 40 + "1", "1e40", "-1e39", "1E-40",
    "NaN", "nan", "Infinity", "-inf", "1_000", "0x10", "1,5", "+.5", ".", "-", "1e",
    " 1.5 ", "\t2\n", "1.5\u3000", "1" * 101, "0" * 100 + "1",
    "Token Expired", "success", "USD", "twd",
]
HOSTILE_NUMBERS = [
    "1e9999999999999999999999", "1e999999999", "-1e999999999", "0e-999999999",
    "1" * 5000, "-" + "9" * 4400, "9" * 1001, "1." + "0" * 990 + "1", "1e40", "1e-41",
    "123456789012345678901234567890123456789012345678901234567890.5",
    "0", "-0", "0.000000000000000001", "2500.50", "1E+2", "1e-18",
]
# Not JSON at all, but a raw token where a number would be.
INVALID_TOKENS = ["NaN", "Infinity", "-Infinity", "١٢٣", "0x10", "01", "+1", ".5", "1.", "1e"]


def nested(depth: int, open_: str = "[", close: str = "]", inner: str = "1") -> str:
    return open_ * depth + inner + close * depth


DEEP = [nested(63), nested(64), nested(65), nested(1000), nested(20000),
        nested(100, '{"a":', "}"), nested(3000, '{"data":', "}")]

texts = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12),
    st.text(alphabet=st.sampled_from("0123456789.-+eE " + NON_ASCII_DIGITS), max_size=12),
)
numbers = st.one_of(
    st.sampled_from(HOSTILE_NUMBERS).map(Raw),
    st.sampled_from(INVALID_TOKENS).map(Raw),
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: Raw(str(d))),
    st.integers(),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
keys = st.one_of(
    st.sampled_from(["data", "error", "code", "msg", "status", "success", "errorCode",
                     "currency", "amount", "available", "stake", "name", "num", "over",
                     "lock", "info", "asset", "walletBalance", "balance", "availableBalance",
                     "locked", "ticker", "quantity", "averagePurchasePrice", "\ud800",
                     "\x00", ""]),
    texts,
)
trees = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)


def dump(value: Any) -> str:
    """JSON text, with ``Raw`` tokens as given and strings ASCII-escaped (so a lone
    surrogate is a ``\\ud800`` escape, as a server would send it)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


def ascii_digits_only(value: Any) -> Any:
    """The twin: every non-ASCII digit in every string and token replaced by "X"."""
    def clean(text: str) -> str:
        return "".join("X" if not c.isascii() and unicodedata.digit(c, None) is not None
                       else c for c in text)

    if isinstance(value, Raw):
        return Raw(clean(value.text))
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(str(k)): ascii_digits_only(v) for k, v in value.items()}
    if isinstance(value, list):
        return [ascii_digits_only(v) for v in value]
    return value


def recorded_bodies(source: str, endpoint: str | None = None) -> list[Any]:
    """The JSON of every recorded answer of ``source`` (to ``endpoint``), to mutate."""
    found = []
    for path in CASE_FILES:
        if path.parent.name == source:
            for response in load_case(Path(path))[1]:
                if endpoint is not None and response.endpoint != endpoint:
                    continue
                with contextlib.suppress(errors.Malformed):  # kept as-is elsewhere
                    found.append(loads_exact(response.body))
    return found


@st.composite
def mutated(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """``value`` with a few changes somewhere inside: replaced, removed, added, retyped."""
    action = draw(st.integers(0, 19))
    if action == 0 or depth > 6:
        return draw(trees)
    if isinstance(value, dict) and value:
        result = dict(value)
        key = draw(st.sampled_from(sorted(result, key=str)))
        choice = draw(st.integers(0, 4))
        if choice == 0:
            del result[key]
        elif choice == 1:
            result[key] = draw(scalars)
        elif choice == 2:
            result[draw(keys)] = draw(trees)
        else:
            result[key] = draw(mutated(result[key], depth + 1))
        return result
    if isinstance(value, list) and value:
        result_list = list(value)
        index = draw(st.integers(0, len(result_list) - 1))
        choice = draw(st.integers(0, 3))
        if choice == 0:
            del result_list[index]
        elif choice == 1:
            result_list.append(draw(mutated(result_list[index], depth + 1)))
        else:
            result_list[index] = draw(mutated(result_list[index], depth + 1))
        return result_list
    return draw(scalars) if action < 10 else value


@dataclasses.dataclass(frozen=True)
class Poll:
    """Generated answers, and the ASCII-digit twin when they came from a structure."""

    responses: list[RawResponse]
    twin: list[RawResponse] | None


STATUSES = [200] * 36 + [201, 204, 301, 400, 401, 403, 404, 409, 429, 500, 503, 599]


def good_answers(source: str) -> list[RawResponse]:
    for path in CASE_FILES:
        if path.parent.name == source:
            _, responses, doc = load_case(Path(path))
            if doc.get("holdings"):
                return responses
    raise AssertionError(source)


@st.composite
def polls(draw: st.DrawFn, source: str) -> Poll:
    template = good_answers(source)
    count = draw(st.sampled_from([len(template)] * 16 + [0, len(template) - 1,
                                                         len(template) + 1]))
    responses: list[RawResponse] = []
    twins: list[RawResponse] | None = []
    for i in range(count):
        shape = template[min(i, len(template) - 1)]
        kind = draw(st.integers(0, 11))
        twin: bytes | None = None
        if kind <= 1:  # this request's recorded good answer, as it was
            body = twin = shape.body
        elif kind <= 6:  # a recorded answer to this request, mutated
            recorded = recorded_bodies(source, shape.endpoint)
            value = draw(mutated(draw(st.sampled_from(recorded))))
            text, twin_text = dump(value), dump(ascii_digits_only(value))
            body, twin = text.encode(), twin_text.encode()
        elif kind <= 8:  # any structure
            value = draw(trees)
            body, twin = dump(value).encode(), dump(ascii_digits_only(value)).encode()
        elif kind == 9:  # deep nesting, alone or where the data goes
            deep = draw(st.sampled_from(DEEP))
            body = draw(st.sampled_from([deep, '{"data":' + deep + "}",
                                         '{"code":0,"data":' + deep + "}"])).encode()
        elif kind == 10:  # bytes
            body = draw(st.binary(max_size=64))
        else:  # text in another encoding, or surrogates written raw
            value = draw(trees)
            body = dump(value).encode(draw(st.sampled_from(["utf-16", "utf-8-sig"])))
        status = draw(st.sampled_from(STATUSES))
        retry_after = draw(st.none() | st.floats(0, 1e6))
        response = RawResponse(shape.endpoint, status, body, "application/json", retry_after)
        responses.append(response)
        if twins is not None:
            twins = None if twin is None else [*twins, dataclasses.replace(response, body=twin)]
    return Poll(responses, twins)


def check_text(text: str, where: str) -> None:
    text.encode("utf-8")  # strict: a lone surrogate raises here
    assert "\x00" not in text, where


def check_amount(amount: object, where: str) -> None:
    assert isinstance(amount, Decimal), (where, type(amount))
    assert parse_amount(canonical(amount), where) == amount, where  # within the grammar
    assert len(canonical(amount)) <= 2 * MAX_AMOUNT_TEXT, where


def check_holdings(holdings: Sequence[Holding]) -> None:
    assert isinstance(holdings, list)
    for holding in holdings:
        assert isinstance(holding, Holding)
        check_text(holding.asset, "asset")
        assert 0 < len(holding.asset) <= 64 and holding.asset.isprintable()
        check_amount(holding.total, "total")
        for where, value in (("available", holding.available), ("locked", holding.locked)):
            if value is not None:
                check_amount(value, where)
        for key, detail in holding.details.items():
            check_text(key, "details key")
            assert detail is None or isinstance(detail, str | bool | int), (key, detail)
            if isinstance(detail, str):
                check_text(detail, f"details.{key}")
            elif isinstance(detail, int) and not isinstance(detail, bool):
                check_amount(Decimal(detail), f"details.{key}")


def outcome(parse: Callable[[Sequence[RawResponse]], list[Holding]],
            responses: list[RawResponse]) -> list[Holding] | errors.SourceError:
    try:
        return parse(responses)
    except errors.SourceError as exc:
        return exc


def amounts(holdings: list[Holding]) -> list[tuple[Any, ...]]:
    return [(h.kind, h.total, h.available, h.locked) for h in holdings]


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_no_answer_ends_in_a_bug(source: str, capsys: pytest.CaptureFixture[str]) -> None:
    parse = SOURCES[source].parse
    ran: dict[str, int] = {"examples": 0, "holdings": 0, "errors": 0}

    @SETTINGS
    @given(poll=polls(source))
    def check(poll: Poll) -> None:
        ran["examples"] += 1
        result = outcome(parse, poll.responses)  # anything but a SourceError fails here
        if isinstance(result, errors.SourceError):
            ran["errors"] += 1
            check_text(str(result), "message")
            assert result.kind in errors.kinds()
            return
        ran["holdings"] += 1
        check_holdings(result)
        if poll.twin is not None:
            twin = outcome(parse, poll.twin)
            assert not isinstance(twin, errors.SourceError), (
                f"only the non-ASCII digits differ, yet: {twin}")
            assert amounts(twin) == amounts(result)

    check()
    assert ran["examples"] >= EXAMPLES_PER_SOURCE
    assert ran["holdings"] > 0  # the generator does reach the parsers' success path
    with capsys.disabled():
        print(f"\n{source}: {ran['examples']} generated polls, {ran['holdings']} parsed, "
              f"{ran['errors']} refused with a SourceError")


def test_recorded_mutations_reach_success() -> None:
    # The twin property only means something if mutated answers still parse sometimes.
    for source in SOURCES:
        assert recorded_bodies(source), source


# The amount grammar itself.

AMOUNT_CHARS = "0123456789" * 3 + ".-+eE " + NON_ASCII_DIGITS + "_,x\u00a0"


@settings(max_examples=1500, derandomize=True, database=None, deadline=None)
@given(value=st.one_of(
    st.text(alphabet=st.sampled_from(AMOUNT_CHARS), max_size=30),
    st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=30),
    st.sampled_from(HOSTILE_STRINGS + HOSTILE_NUMBERS),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-10**60, max_value=10**60),
    st.booleans(), st.none(), st.floats(),
))
def test_parse_amount_accepts_only_its_grammar(value: object) -> None:
    try:
        amount = parse_amount(value, "x")
    except errors.SchemaMismatch as exc:
        check_text(str(exc), "message")
        return
    if isinstance(value, str):
        assert value.isascii(), value  # nothing from non-ASCII digits
        assert len(value) <= MAX_AMOUNT_TEXT
    assert not isinstance(value, float | bool)
    check_amount(amount, "x")
    # Arithmetic on amounts never rounds, never traps.
    assert subtract(amount, amount) == 0
    assert exact_sum([amount, amount, amount.copy_negate()]) == amount


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(a=st.sampled_from(["1e39", "-" + "9" * 39, "1e-40", "1." + "1" * 39,
                          "123456789012345678901234567890.123456789012345678901234567890"]),
       b=st.decimals(min_value="-1e39", max_value="1e39", places=40))
def test_arithmetic_between_extreme_amounts_is_exact(a: str, b: Decimal) -> None:
    try:
        x, y = parse_amount(a, "a"), parse_amount(b, "b")
    except errors.SchemaMismatch:
        return
    assert exact_sum([subtract(x, y), y]) == x  # "+" would round to 28 digits


# Exhaustive where it matters most: every leaf of every recorded successful answer,
# replaced by each hostile value in turn.

LEAF_VALUES: list[Any] = [*HOSTILE_STRINGS, *(Raw(n) for n in HOSTILE_NUMBERS), None, True,
                          False, 0, [], {}, [1], {"a": 1}]


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaf_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaf_paths(v, (*path, i))]
    return [path]


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replaced(value[path[0]], path[1:], new)
    return copy


def successful_polls(source: str) -> list[list[RawResponse]]:
    found = []
    for path in CASE_FILES:
        if path.parent.name == source:
            _, responses, doc = load_case(Path(path))
            if "holdings" in doc and not doc.get("xfail"):
                found.append(responses)
    return found


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_leaf_of_every_recorded_answer_replaced_by_hostile_values(
    source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parse = SOURCES[source].parse
    tried = 0
    for responses in successful_polls(source):
        for index, response in enumerate(responses):
            value = loads_exact(response.body)
            for path in leaf_paths(value):
                for new in LEAF_VALUES:
                    mutated_value = replaced(value, path, new)
                    poll = list(responses)
                    poll[index] = dataclasses.replace(response,
                                                      body=dump(mutated_value).encode())
                    twin = list(responses)
                    twin[index] = dataclasses.replace(
                        response, body=dump(ascii_digits_only(mutated_value)).encode())
                    tried += 1
                    result = outcome(parse, poll)
                    if isinstance(result, errors.SourceError):
                        check_text(str(result), "message")
                        continue
                    check_holdings(result)
                    other = outcome(parse, twin)
                    assert not isinstance(other, errors.SourceError), (path, new, other)
                    assert amounts(other) == amounts(result), (path, new)
    assert tried > 500
    with capsys.disabled():
        print(f"\n{source}: {tried} recorded answers with one leaf made hostile")
