"""The error contract of every registered source, on each of its requests.

An HTTP error is classified by its status before anything else, on whichever request it
came (the poller stops after the first one, so later answers are missing); a success
answer that is not JSON, or not an object we know, is malformed or schema. Whether a
kind is retried is read from the error class, the one place that knows it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from aggregator import errors
from aggregator.model import RawResponse
from aggregator.sources.registry import SOURCES
from tests.sources.test_recorded import CASE_FILES, load_case

HTML = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
BODIES = {
    "json": b'{"error":"Something went wrong"}',
    "html": HTML,
    "empty": b"",
}


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    status: int
    body: bytes
    kind: str
    retried: bool
    retry_after: float | None = None
    content_type: str = "application/json"


def _cases() -> list[Case]:
    cases = []
    for label, body in BODIES.items():
        for status, kind, retried in [
            (401, "bad_credentials", False),
            (403, "permission_denied", False),
            (404, "api_error", False),
            (500, "server_error", True),
            (502, "server_error", True),
            (503, "server_error", True),
        ]:
            cases.append(Case(f"{status}-{label}", status, body, kind, retried))
        cases.append(Case(f"429-retry-after-{label}", 429, body, "rate_limited", True, 7.0))
        cases.append(Case(f"429-{label}", 429, body, "rate_limited", True))
    cases += [
        Case("200-html", 200, HTML, "malformed", False, content_type="text/html"),
        Case("200-not-json", 200, b"OK", "malformed", False, content_type="text/plain"),
        Case("200-not-utf8", 200, b'{"data":"\xff\xfe"}', "malformed", False),
        Case("200-empty-object", 200, b"{}", "schema", False),
        Case("200-empty", 200, b"", "malformed", False),
    ]
    return cases


def good_answers(source: str) -> list[RawResponse]:
    """A recorded successful poll of ``source``: its answers, one per request."""
    for path in CASE_FILES:
        if path.parent.name == source:
            _, responses, doc = load_case(Path(path))
            if doc.get("holdings"):
                return responses
    raise AssertionError(f"no recorded successful poll of {source}")


def _params() -> list[Any]:
    params = []
    for source in sorted(SOURCES):
        for index in range(len(good_answers(source))):
            for case in _cases():
                params.append(pytest.param(source, index, case,
                                           id=f"{source}-request{index + 1}-{case.name}"))
    return params


def answers_with(source: str, index: int, case: Case) -> list[RawResponse]:
    """The poll's answers with request ``index`` answered by ``case``, as the poller keeps
    them: nothing after an HTTP error."""
    good = good_answers(source)
    bad = dataclasses.replace(good[index], status=case.status, body=case.body,
                              content_type=case.content_type, retry_after=case.retry_after)
    after = good[index + 1:] if case.status < 400 else []
    return [*good[:index], bad, *after]


@pytest.mark.parametrize(("source", "index", "case"), _params())
def test_every_source_classifies_every_failure(source: str, index: int, case: Case) -> None:
    with pytest.raises(errors.SourceError) as info:
        SOURCES[source].parse(answers_with(source, index, case))
    exc = info.value
    assert exc.kind == case.kind, f"{type(exc).__name__}: {exc}"
    assert type(exc).retryable is case.retried
    assert getattr(exc, "retry_after", None) == case.retry_after
    if case.status >= 400:
        endpoint = good_answers(source)[index].endpoint
        assert f"HTTP {case.status} from {endpoint}" in str(exc)


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize("text", ["Token Expired", "token expired", "jwt expired"])
def test_pitrade_fresh_token_refused_as_expired_is_clock_skew(index: int, text: str) -> None:
    # PiTrade's auth re-signs once on a 401, so the 401 the parser sees answered a token
    # signed a moment ago.
    case = Case("401-expired", 401, b'{"error":"%s"}' % text.encode(), "clock_skew", False)
    with pytest.raises(errors.ClockSkew) as info:
        SOURCES["pitrade"].parse(answers_with("pitrade", index, case))
    assert text in str(info.value)
    assert not errors.ClockSkew.retryable


def test_every_source_is_covered() -> None:
    covered = {p.values[0] for p in _params()}
    assert covered == set(SOURCES)
    assert len(good_answers("pitrade")) == 2
