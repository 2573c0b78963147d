"""Render rows as an aligned table, JSON or CSV; amounts stay exact decimal text."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from aggregator.amounts import canonical

FORMATS = ("table", "json", "csv")
# What `holdings` shows in a table and CSV (JSON has every field).
HOLDING_COLUMNS = ("account", "source", "asset", "kind", "total", "available", "locked",
                   "observed_at")


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and a Z, e.g. 2026-11-24T08:00:00.123Z."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cell(value: Any) -> Any:
    """A JSON-ready value: Decimal → exact text, datetime → ISO UTC."""
    if isinstance(value, Decimal):
        return canonical(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: cell(v) for k, v in value.items()}
    return value


def render(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str) -> str:
    rows = [{k: cell(v) for k, v in row.items()} for row in rows]
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else _flat(row.get(c)) for c in columns])
        return buffer.getvalue()
    return _table(rows, columns)


def _flat(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)\n"
    text = [[("-" if row.get(c) is None else _flat(row.get(c))) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in text)) for i, c in enumerate(columns)]
    numeric = {"total", "available", "locked"}

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if c in numeric else v.ljust(w)
            for v, w, c in zip(values, widths, columns, strict=True)
        ).rstrip()

    out = [line(list(columns)), line(["-" * w for w in widths])]
    out += [line(r) for r in text]
    return "\n".join(out) + "\n"
