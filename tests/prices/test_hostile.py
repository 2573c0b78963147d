"""Property-based: no answer, however hostile, makes a price parser fail unexpectedly.

Every price parser gets hundreds of generated fetches built from its recorded answers:
mutations of them, random JSON-ish structures, hostile strings and numbers, deep
nesting, random bytes, other encodings, wrong statuses and answer counts (and, for the
manual CSV, rows of hostile cells). Each must give observations or raise a
``SourceError``; an observation holds no float, a price within the amount grammar and
above zero, a kind that is a ``PriceKind``, an aware UTC time no later than the fetch,
and symbols that store. A twin of each answer with every non-ASCII digit replaced by
"X" must give the same observations: no non-ASCII digit was read as one.

The strategies are the balance parsers' own (tests/sources/test_hostile.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator import errors
from aggregator.amounts import loads_exact
from aggregator.model import RawResponse
from aggregator.prices.base import Answers
from aggregator.prices.model import Observation, PriceKind
from aggregator.prices.registry import PRICE_SOURCES
from tests.prices.test_recorded import CASE_FILES, Case, load_case
from tests.sources.test_hostile import (
    DEEP,
    EXAMPLES_PER_SOURCE,
    HOSTILE_NUMBERS,
    HOSTILE_STRINGS,
    LEAF_VALUES,
    SETTINGS,
    STATUSES,
    ascii_digits_only,
    check_amount,
    check_text,
    dump,
    leaf_paths,
    mutated,
    replaced,
    texts,
    trees,
)

LEAF_BUDGET = 5000
JSON_SOURCES = sorted(n for n, s in PRICE_SOURCES.items() if s.read_local is None)


def cases(name: str) -> list[Case]:
    return [load_case(Path(p)) for p in CASE_FILES if p.parent.name == name]


def good_cases(name: str) -> list[Case]:
    return [c for c in cases(name) if c.doc.get("observations")]


def recorded_bodies(name: str, endpoint: str) -> list[Any]:
    found = []
    for case in cases(name):
        for _, response in case.answers:
            if response.endpoint == endpoint:
                with contextlib.suppress(errors.Malformed):
                    found.append(loads_exact(response.body))
    return found


def check_observations(result: list[Observation], fetched_at: datetime) -> None:
    assert isinstance(result, list)
    for o in result:
        assert isinstance(o, Observation)
        assert isinstance(o.kind, PriceKind)  # the kind bug: never a bare string
        for text in (o.base, o.quote):
            check_text(text, "symbol")
            assert 0 < len(text) <= 64 and text.isprintable() and text == text.upper()
        assert o.base != o.quote
        check_amount(o.price, "price")  # a Decimal within the grammar: never a float
        assert o.price > 0
        offset = o.observed_at.utcoffset()
        assert offset is not None and offset.total_seconds() == 0
        assert o.observed_at <= fetched_at


def outcome(case: Case, answers: Answers) -> list[Observation] | errors.SourceError:
    try:
        return case.parse(answers)
    except errors.SourceError as exc:
        return exc


@dataclasses.dataclass(frozen=True)
class Fetch:
    case: Case
    answers: Answers
    twin: Answers | None


def with_body(pair: tuple[Any, RawResponse], body: bytes, status: int | None = None
              ) -> tuple[Any, RawResponse]:
    request, response = pair
    return request, dataclasses.replace(
        response, body=body, status=response.status if status is None else status)


@st.composite
def json_fetches(draw: st.DrawFn, name: str) -> Fetch:
    case = draw(st.sampled_from(good_cases(name)))
    template = list(case.answers)
    count = draw(st.sampled_from([len(template)] * 16
                                 + [0, max(len(template) - 1, 0), len(template) + 1]))
    answers, twins = [], []
    twin_ok = True
    for i in range(count):
        shape = template[min(i, len(template) - 1)]
        kind = draw(st.integers(0, 11))
        twin: bytes | None = None
        if kind <= 1:
            body = twin = shape[1].body
        elif kind <= 6:
            value = draw(mutated(draw(st.sampled_from(recorded_bodies(name,
                                                                      shape[1].endpoint)))))
            body, twin = dump(value).encode(), dump(ascii_digits_only(value)).encode()
        elif kind <= 8:
            value = draw(trees)
            body, twin = dump(value).encode(), dump(ascii_digits_only(value)).encode()
        elif kind == 9:
            body = draw(st.sampled_from(DEEP)).encode()
        elif kind == 10:
            body = draw(st.binary(max_size=64))
        else:
            body = dump(draw(trees)).encode(draw(st.sampled_from(["utf-16", "utf-8-sig"])))
        status = draw(st.sampled_from(STATUSES))
        answers.append(with_body(shape, body, status))
        if twin is None:
            twin_ok = False
        else:
            twins.append(with_body(shape, twin, status))
    return Fetch(case, answers, twins if twin_ok else None)


GOOD_CELLS = ["ZPR", "twd", "USD", "2026-11-20", "2026-11-21T08:00:00Z",
              "2026-11-21 16:00+08:00", "0.0013", "4.1E-5", "2712.5", ""]
cells = st.one_of(st.sampled_from(GOOD_CELLS), st.sampled_from(HOSTILE_STRINGS),
                  st.sampled_from(HOSTILE_NUMBERS), texts)


@st.composite
def csv_fetches(draw: st.DrawFn, name: str) -> Fetch:
    case = draw(st.sampled_from(good_cases(name)))
    request, response = case.answers[0]
    if draw(st.booleans()):  # a recorded file, one line changed
        lines = response.body.decode("utf-8-sig").splitlines()
        index = draw(st.integers(0, len(lines)))
        row = ",".join(draw(st.lists(cells, max_size=6)))
        lines[index:index + draw(st.integers(0, 1))] = [row]
        text = "\n".join(lines) + "\n"
    else:  # a header, then rows of anything
        header = draw(st.sampled_from(["base,quote,time,price", "price,time,quote,base",
                                       "BASE, Quote ,time,price,note", "base,quote,time"]))
        rows = draw(st.lists(st.lists(cells, min_size=3, max_size=5), max_size=6))
        text = "\n".join([header, *(",".join(r) for r in rows)])
    body = text.encode("utf-8", "surrogatepass")
    twin = ascii_digits_only(text).encode("utf-8", "surrogatepass")
    return Fetch(case, [(request, dataclasses.replace(response, body=body))],
                 [(request, dataclasses.replace(response, body=twin))])


def same(a: list[Observation], b: list[Observation]) -> bool:
    """The same prices at the same times (the twin's symbols may differ, as they should)."""
    return [(o.kind, o.observed_at, o.price) for o in a] == \
        [(o.kind, o.observed_at, o.price) for o in b]


@pytest.mark.parametrize("name", sorted(PRICE_SOURCES))
def test_no_answer_ends_in_a_bug(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    ran = {"examples": 0, "observations": 0, "errors": 0}
    strategy = csv_fetches if name not in JSON_SOURCES else json_fetches

    @SETTINGS
    @given(fetch=strategy(name))
    def check(fetch: Fetch) -> None:
        ran["examples"] += 1
        result = outcome(fetch.case, fetch.answers)
        if isinstance(result, errors.SourceError):
            ran["errors"] += 1
            check_text(str(result), "message")
            assert result.kind in errors.kinds()
            return
        ran["observations"] += 1
        check_observations(result, fetch.case.fetched_at)
        if fetch.twin is not None:
            twin = outcome(fetch.case, fetch.twin)
            assert not isinstance(twin, errors.SourceError), (
                f"only the non-ASCII digits differ, yet: {twin}")
            assert same(twin, result)

    check()
    assert ran["examples"] >= EXAMPLES_PER_SOURCE
    assert ran["observations"] > 0
    with capsys.disabled():
        print(f"\n{name}: {ran['examples']} generated fetches, {ran['observations']} parsed, "
              f"{ran['errors']} refused with a SourceError")


@pytest.mark.parametrize("name", JSON_SOURCES)
def test_every_leaf_of_every_recorded_answer_replaced_by_hostile_values(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tried = 0
    # The smallest successful fetches first, up to a budget that keeps this to seconds.
    for case in sorted(good_cases(name), key=lambda c: sum(len(r.body) for _, r in c.answers)):
        if tried >= LEAF_BUDGET:
            break
        for index, (_, response) in enumerate(case.answers):
            value = loads_exact(response.body)
            for path in leaf_paths(value):
                for new in LEAF_VALUES:
                    changed = replaced(value, path, new)
                    answers = list(case.answers)
                    answers[index] = with_body(answers[index], dump(changed).encode())
                    twins = list(case.answers)
                    twins[index] = with_body(twins[index],
                                             dump(ascii_digits_only(changed)).encode())
                    tried += 1
                    result = outcome(case, answers)
                    if isinstance(result, errors.SourceError):
                        check_text(str(result), "message")
                        continue
                    check_observations(result, case.fetched_at)
                    other = outcome(case, twins)
                    assert not isinstance(other, errors.SourceError), (path, new, other)
                    assert same(other, result), (path, new)
    assert tried > 500
    with capsys.disabled():
        print(f"\n{name}: {tried} recorded answers with one leaf made hostile")


def test_json_numbers_are_exact_decimals_never_floats() -> None:
    # CoinGecko's 4.1234e-05 is that decimal; a float would be 4.1234000000000003e-05.
    from tests.prices.test_recorded import RECORDED
    case = load_case(RECORDED / "coingecko" / "simple_price_exponents.json")
    prices = {(o.base, o.quote): o.price for o in case.parse()}
    assert prices[("ZPR", "USD")] == Decimal("0.000041234")
    assert str(prices[("ZPR", "USD")]) == "0.000041234"
    assert all(type(p) is Decimal for p in prices.values())
