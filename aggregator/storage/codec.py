"""A poll record as bytes and back, exactly: how a poll waits in the spool.

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

VERSION = 1


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def encode(record: PollRecord) -> bytes:
    data: dict[str, Any] = {
        "v": VERSION,
        "account": record.account,
        "source": record.source,
        "started_at": record.started_at.isoformat(),
        "finished_at": record.finished_at.isoformat(),
        "error_kind": record.error_kind,
        "error_message": record.error_message,
        "attempts": record.attempts,
        "holdings": None if record.holdings is None else [
            {"asset": h.asset, "kind": str(h.kind), "total": str(h.total),
             "available": _amount(h.available), "locked": _amount(h.locked),
             "details": dict(h.details)}
            for h in record.holdings
        ],
        "responses": [
            {"endpoint": r.endpoint, "status": r.status, "content_type": r.content_type,
             "retry_after": None if r.retry_after is None else repr(r.retry_after),
             "body": base64.b64encode(r.body).decode("ascii")}
            for r in record.responses
        ],
    }
    # ensure_ascii: a stray surrogate in a text can never make the encoding fail.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def decode(blob: bytes) -> PollRecord:
    data = json.loads(blob)
    if data.get("v") != VERSION:
        raise ValueError(f"spooled poll of unknown version {data.get('v')!r}")
    holdings = data["holdings"]
    return PollRecord(
        account=data["account"],
        source=data["source"],
        started_at=datetime.fromisoformat(data["started_at"]),
        finished_at=datetime.fromisoformat(data["finished_at"]),
        holdings=None if holdings is None else [
            Holding(asset=h["asset"], kind=Kind(h["kind"]), total=Decimal(h["total"]),
                    available=_decimal(h["available"]), locked=_decimal(h["locked"]),
                    details=h["details"])
            for h in holdings
        ],
        responses=[
            RawResponse(endpoint=r["endpoint"], status=r["status"],
                        body=base64.b64decode(r["body"]), content_type=r["content_type"],
                        retry_after=None if r["retry_after"] is None
                        else float(r["retry_after"]))
            for r in data["responses"]
        ],
        error_kind=data["error_kind"],
        error_message=data["error_message"],
        attempts=data["attempts"],
    )
