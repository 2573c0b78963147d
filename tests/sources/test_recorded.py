"""Golden-file parser tests: every recorded poll under recorded/<source>/<case>.json.

Each file holds the answers of one poll, byte for byte as the exchange sent them
(``body`` is the body as a JSON string, encoded UTF-8 here), and either the holdings
the parser must produce (amounts as canonical decimal strings) or the error it must
raise (its ``kind``, a fragment of its message and optionally ``retry_after``/``code``).

A file may carry ``"xfail": "<reason>"``: the expectation follows SOURCES.md, the
parser does not (yet); the test is a strict xfail so that a fix shows up as XPASS.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from aggregator import errors
from aggregator.amounts import canonical
from aggregator.errors import SourceError
from aggregator.model import Holding, Kind, RawResponse
from aggregator.sources.registry import SOURCES

RECORDED = Path(__file__).parent / "recorded"
CASE_FILES = sorted(RECORDED.glob("*/*.json"))
RESPONSE_KEYS = {"endpoint", "status", "content_type", "body", "retry_after"}
HOLDING_KEYS = {"asset", "kind", "total", "available", "locked", "details"}
# What a parser may raise: the error tree's kinds, less those only the poller makes.
ERROR_KINDS = set(errors.kinds()) - {"bug", "backoff", "unstorable", "too_large"}


def _case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _params() -> list[Any]:
    params = []
    for path in CASE_FILES:
        doc = json.loads(path.read_text(encoding="utf-8"))
        marks = []
        if doc.get("xfail"):
            marks.append(pytest.mark.xfail(strict=True, reason=doc["xfail"]))
        params.append(pytest.param(path, id=_case_id(path), marks=marks))
    return params


def load_case(path: Path) -> tuple[str, list[RawResponse], dict[str, Any]]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    source = path.parent.name
    responses = []
    for r in doc["responses"]:
        assert set(r) == RESPONSE_KEYS, f"{path.name}: response keys {sorted(r)}"
        assert isinstance(r["body"], str), f"{path.name}: body must be a JSON string"
        responses.append(
            RawResponse(
                endpoint=r["endpoint"],
                status=r["status"],
                body=r["body"].encode("utf-8"),
                content_type=r["content_type"],
                retry_after=r["retry_after"],
            )
        )
    return source, responses, doc


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else canonical(value)


def _as_dict(holding: Holding) -> dict[str, Any]:
    return {
        "asset": holding.asset,
        "kind": holding.kind.value,
        "total": _amount(holding.total),
        "available": _amount(holding.available),
        "locked": _amount(holding.locked),
        "details": dict(holding.details),
    }


def _check_expected_amounts(path: Path, expected: list[dict[str, Any]]) -> None:
    """The golden files themselves hold canonical decimal text, never numbers."""
    for row in expected:
        assert set(row) == HOLDING_KEYS, f"{path.name}: holding keys {sorted(row)}"
        assert row["kind"] in {k.value for k in Kind}
        for key in ("total", "available", "locked"):
            value = row[key]
            if value is None and key != "total":
                continue
            assert isinstance(value, str), f"{path.name}: {key} must be a string"
            assert canonical(Decimal(value)) == value, f"{path.name}: {key} {value!r}"


def test_every_source_has_recordings() -> None:
    found = {p.parent.name for p in CASE_FILES}
    assert found == set(SOURCES), "a recorded/<dir> per registered source, no stray dirs"


@pytest.mark.parametrize("path", _params())
def test_recorded_poll(path: Path) -> None:
    source, responses, doc = load_case(path)
    assert ("holdings" in doc) != ("error" in doc), f"{path.name}: holdings xor error"
    parse = SOURCES[source].parse

    if "error" in doc:
        expected_error = doc["error"]
        assert expected_error["kind"] in ERROR_KINDS
        with pytest.raises(SourceError) as info:
            parse(responses)
        exc = info.value
        assert exc.kind == expected_error["kind"], f"{type(exc).__name__}: {exc}"
        assert expected_error["message_contains"] in str(exc)
        if "retry_after" in expected_error:
            assert exc.retry_after == expected_error["retry_after"]
        if "code" in expected_error:
            assert exc.code == expected_error["code"]
        return

    expected = doc["holdings"]
    _check_expected_amounts(path, expected)
    holdings = parse(responses)
    assert all(isinstance(h, Holding) for h in holdings)
    # Decimal equality first (the value), then the exact text (the canonical form).
    for got, want in zip(holdings, expected, strict=False):
        assert got.total == Decimal(want["total"])
        for key in ("available", "locked"):
            value = getattr(got, key)
            assert (value is None) == (want[key] is None), f"{got.asset}.{key}"
            if value is not None:
                assert value == Decimal(want[key]), f"{got.asset}.{key}"
    assert [_as_dict(h) for h in holdings] == expected
