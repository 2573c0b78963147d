"""A poll or price-fetch record as bytes and back, exactly: how it waits in the spool.

JSON with every amount as its Decimal text (``str``, so "1.50" stays "1.50"), bodies as
base64 and times as ISO 8601: readable with ``sqlite3`` and a JSON tool when diagnosing.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from aggregator.model import Holding, Kind, PollRecord, RawResponse
from aggregator.prices.model import FetchRecord, Observation, PriceKind

VERSION = 1


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


Record = PollRecord | FetchRecord


def encode(record: Record) -> bytes:
    data: dict[str, Any] = {
        "v": VERSION,
        "started_at": record.started_at.isoformat(),
        "finished_at": record.finished_at.isoformat(),
        "error_kind": record.error_kind,
        "error_message": record.error_message,
        "attempts": record.attempts,
        "responses": [
            {"endpoint": r.endpoint, "status": r.status, "content_type": r.content_type,
             "retry_after": None if r.retry_after is None else repr(r.retry_after),
             "body": base64.b64encode(r.body).decode("ascii")}
            for r in record.responses
        ],
    }
    if isinstance(record, FetchRecord):
        data |= {"t": "fetch", "source": record.source, "kind": str(record.kind),
                 "observations": None if record.observations is None else [
                     [o.base, o.quote, str(o.kind), o.observed_at.isoformat(), str(o.price)]
                     for o in record.observations]}
    else:
        data |= {"t": "poll", "account": record.account, "source": record.source,
                 "holdings": None if record.holdings is None else [
                     {"asset": h.asset, "kind": str(h.kind), "total": str(h.total),
                      "available": _amount(h.available), "locked": _amount(h.locked),
                      "details": dict(h.details)}
                     for h in record.holdings]}
    # ensure_ascii: a stray surrogate in a text can never make the encoding fail.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def decode(blob: bytes) -> Record:
    data = json.loads(blob)
    if data.get("v") != VERSION:
        raise ValueError(f"spooled record of unknown version {data.get('v')!r}")
    common: dict[str, Any] = {
        "started_at": datetime.fromisoformat(data["started_at"]),
        "finished_at": datetime.fromisoformat(data["finished_at"]),
        "responses": [
            RawResponse(endpoint=r["endpoint"], status=r["status"],
                        body=base64.b64decode(r["body"]), content_type=r["content_type"],
                        retry_after=None if r["retry_after"] is None
                        else float(r["retry_after"]))
            for r in data["responses"]
        ],
        "error_kind": data["error_kind"],
        "error_message": data["error_message"],
        "attempts": data["attempts"],
    }
    if data["t"] == "fetch":
        observations = data["observations"]
        return FetchRecord(
            source=data["source"], kind=PriceKind(data["kind"]),
            observations=None if observations is None else [
                Observation(base, quote, PriceKind(kind), datetime.fromisoformat(at),
                            Decimal(price))
                for base, quote, kind, at, price in observations],
            **common)
    holdings = data["holdings"]
    return PollRecord(
        account=data["account"],
        source=data["source"],
        holdings=None if holdings is None else [
            Holding(asset=h["asset"], kind=Kind(h["kind"]), total=Decimal(h["total"]),
                    available=_decimal(h["available"]), locked=_decimal(h["locked"]),
                    details=h["details"])
            for h in holdings
        ],
        **common,
    )
