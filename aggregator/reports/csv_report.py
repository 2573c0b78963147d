"""The day's holdings as CSV: one row per account and asset held at the end of the day."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from decimal import Decimal

from aggregator.amounts import canonical
from aggregator.reports.model import HoldingLine, Report

COLUMNS = (
    "account", "source", "asset", "kind", "total", "available", "locked",
    "previous_total", "change", "delta", "cost_basis", "valuation",
)
# With [valuation]: the rate and value in the reference currency at the end of the day
# (empty when unknown, and for a zero amount, which has no value).
VALUE_COLUMNS = ("currency", "price", "value")


def _amount(value: Decimal | None) -> str:
    return "" if value is None else canonical(value)


def format_valuation(valuation: Mapping[str, Decimal]) -> str:
    """``usd=1.5;btc=0.00002`` sorted by currency; empty when there is none."""
    return ";".join(f"{key}={canonical(valuation[key])}" for key in sorted(valuation))


def _row(line: HoldingLine) -> list[str]:
    return [
        line.account, line.source, line.asset, line.kind,
        canonical(line.total), _amount(line.available), _amount(line.locked),
        _amount(line.previous_total), line.change, canonical(line.delta),
        _amount(line.cost_basis), format_valuation(line.valuation),
    ]


def render_csv(report: Report) -> str:
    """Header row, then the lines held at the end of the day sorted by account and asset."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    worth = report.worth
    values = {} if worth is None else {(r.account, r.asset): r for r in worth.rows}
    writer.writerow(COLUMNS if worth is None else COLUMNS + VALUE_COLUMNS)
    for line in sorted(report.lines, key=lambda ln: (ln.account, ln.asset)):
        row = _row(line)
        if worth is not None:
            valued = values.get((line.account, line.asset))
            row += [worth.currency, "", ""] if valued is None else [
                worth.currency, _amount(valued.price), _amount(valued.value)]
        writer.writerow(row)
    return out.getvalue()
