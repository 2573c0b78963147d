"""Golden-file tests of the price parsers: every case under recorded/<source>/<case>.json.

Each file holds the config keys of the source, the query (assets and quotes) and, for a
history fetch, its first and last day, the instant the answers were fetched, the
answers byte for byte as the provider sent them (``body`` is a JSON string, encoded
UTF-8 here), and either the observations the parser must give (prices as canonical
decimal text, times as ISO 8601 UTC) or the error it must raise. The requests are built
by the source itself, so a file also checks what it asks: each answer's endpoint is the
path of the request it answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from aggregator import errors
from aggregator.amounts import canonical
from aggregator.model import RawResponse, Secret
from aggregator.prices.base import Answers, PriceConfig, PriceQuery, PriceRequest, PriceSource
from aggregator.prices.model import Observation, PriceKind
from aggregator.prices.registry import PRICE_SOURCES

RECORDED = Path(__file__).parent / "recorded"
CASE_FILES = sorted(RECORDED.glob("*/*.json"))
RESPONSE_KEYS = {"endpoint", "status", "content_type", "body", "retry_after"}
OBSERVATION_KEYS = {"base", "quote", "kind", "observed_at", "price"}
ERROR_KINDS = set(errors.kinds()) - {"bug", "backoff", "unstorable", "too_large"}


@dataclass(frozen=True)
class Case:
    source: PriceSource[Any]
    config: PriceConfig
    history: bool
    requests: list[PriceRequest]
    answers: Answers
    fetched_at: datetime
    doc: dict[str, Any]

    def parse(self, answers: Answers | None = None) -> list[Observation]:
        parse = self.source.parse_history if self.history else self.source.parse_live
        assert parse is not None
        return parse(self.config, self.answers if answers is None else answers,
                     self.fetched_at)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def make_config(source: PriceSource[Any], keys: dict[str, Any]) -> PriceConfig:
    values = dict(keys)
    if "api_key" in values:
        values["api_key"] = Secret(values["api_key"])
    if source.default_base_url:
        values.setdefault("base_url", source.default_base_url)
    config: PriceConfig = source.config(name=f"test-{source.name}", source=source.name,
                                        **values)
    return config


def endpoint_of(config: PriceConfig, request: PriceRequest) -> str:
    url = str(request.request.url.copy_with(query=None))
    base = config.base_url.rstrip("/")
    assert url.startswith(base), (url, base)
    return url[len(base):]


def load_case(path: Path) -> Case:
    doc = json.loads(path.read_text(encoding="utf-8"))
    source = PRICE_SOURCES[path.parent.name]
    config = make_config(source, doc.get("config", {}))
    query = PriceQuery(tuple(doc["query"]["assets"]), tuple(doc["query"]["quotes"]))
    history = doc["fetch"] == "history"
    assert doc["fetch"] in ("live", "history"), path.name
    if history:
        assert source.history_requests is not None, f"{path.name}: {source.name} has no history"
        first, last = (date.fromisoformat(d) for d in doc["days"])
        requests = source.history_requests(config, query, first, last)
    else:
        requests = source.live_requests(config, query)
    responses = []
    for r in doc["responses"]:
        assert set(r) == RESPONSE_KEYS, f"{path.name}: response keys {sorted(r)}"
        assert isinstance(r["body"], str), f"{path.name}: body must be a JSON string"
        responses.append(RawResponse(endpoint=r["endpoint"], status=r["status"],
                                     body=r["body"].encode("utf-8"),
                                     content_type=r["content_type"],
                                     retry_after=r["retry_after"]))
    # An error may have ended the fetch before its last request.
    assert len(responses) == len(requests) or ("error" in doc and len(responses) < len(requests)), (
        f"{path.name}: {len(responses)} answers to {len(requests)} requests")
    for request, response in zip(requests, responses, strict=False):
        if source.read_local is not None:
            assert response.endpoint == getattr(config, "file", None), path.name
        else:
            assert response.endpoint == endpoint_of(config, request), path.name
    return Case(source, config, history, requests, list(zip(requests, responses, strict=False)),
                instant(doc["fetched_at"]), doc)


def as_dict(observation: Observation) -> dict[str, Any]:
    return {
        "base": observation.base,
        "quote": observation.quote,
        "kind": observation.kind.value,
        "observed_at": observation.observed_at.isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "price": canonical(observation.price),
    }


def _params() -> list[Any]:
    return [pytest.param(p, id=f"{p.parent.name}/{p.stem}") for p in CASE_FILES]


def test_every_price_source_has_recordings() -> None:
    found = {p.parent.name for p in CASE_FILES}
    assert found == set(PRICE_SOURCES), "a recorded/<dir> per price source, no stray dirs"


@pytest.mark.parametrize("name", sorted(PRICE_SOURCES))
def test_every_price_source_has_good_and_bad_answers(name: str) -> None:
    cases = [load_case(p) for p in CASE_FILES if p.parent.name == name]
    assert any(c.doc.get("observations") and not c.history for c in cases), "a live price"
    if PRICE_SOURCES[name].history_requests is not None and name != "manual":
        assert any(c.doc.get("observations") and c.history for c in cases), "a daily close"
    assert any("error" in c.doc and c.doc["error"]["kind"] == "schema" for c in cases)
    if PRICE_SOURCES[name].read_local is None:
        kinds = {c.doc["error"]["kind"] for c in cases if "error" in c.doc}
        assert {"rate_limited", "server_error", "malformed", "api_error"} & kinds


@pytest.mark.parametrize("path", _params())
def test_recorded_fetch(path: Path) -> None:
    case = load_case(path)
    doc = case.doc
    assert ("observations" in doc) != ("error" in doc), f"{path.name}: observations xor error"
    if "error" in doc:
        expected = doc["error"]
        assert expected["kind"] in ERROR_KINDS
        with pytest.raises(errors.SourceError) as info:
            case.parse()
        exc = info.value
        assert exc.kind == expected["kind"], f"{type(exc).__name__}: {exc}"
        assert expected["message_contains"] in str(exc), str(exc)
        if "retry_after" in expected:
            assert exc.retry_after == expected["retry_after"]
        if "code" in expected:
            assert exc.code == expected["code"]
        return

    expected = doc["observations"]
    for row in expected:
        assert set(row) == OBSERVATION_KEYS, f"{path.name}: keys {sorted(row)}"
        assert canonical(Decimal(row["price"])) == row["price"], f"{path.name}: {row}"
        assert row["kind"] in {k.value for k in PriceKind}
    observations = case.parse()
    for got in observations:
        assert isinstance(got, Observation)
        assert isinstance(got.price, Decimal) and got.price > 0
        assert isinstance(got.kind, PriceKind)
        assert got.observed_at.utcoffset() is not None
        assert got.observed_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert got.observed_at <= case.fetched_at  # nothing from the future
    assert [o.price for o in observations] == [Decimal(r["price"]) for r in expected]
    assert [as_dict(o) for o in observations] == expected
