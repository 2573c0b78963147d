from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

from aggregator.amounts import canonical
from aggregator.reports.csv_report import COLUMNS, render_csv
from aggregator.reports.model import HoldingLine, Report

from .conftest import HUGE, TINY


def _expected(line: HoldingLine) -> dict[str, str]:
    def text(value: Decimal | None) -> str:
        return "" if value is None else canonical(value)

    return {
        "account": line.account, "source": line.source, "asset": line.asset,
        "kind": line.kind, "total": canonical(line.total), "available": text(line.available),
        "locked": text(line.locked), "previous_total": text(line.previous_total),
        "change": line.change, "delta": canonical(line.delta),
        "cost_basis": text(line.cost_basis),
        "valuation": ";".join(f"{k}={canonical(v)}" for k, v in sorted(line.valuation.items())),
    }


def test_parses_back_to_the_lines_exactly(report: Report) -> None:
    text = render_csv(report)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    rows = list(reader)
    expected = sorted(report.lines, key=lambda ln: (ln.account, ln.asset))
    assert rows == [_expected(line) for line in expected]
    for row, line in zip(rows, expected, strict=True):
        assert Decimal(row["total"]) == line.total
        assert row["valuation"] == ";".join(
            f"{k}={canonical(v)}" for k, v in sorted(line.valuation.items()))


def test_exact_text_and_layout(report: Report) -> None:
    text = render_csv(report)
    assert text.splitlines()[0] == (
        "account,source,asset,kind,total,available,locked,previous_total,change,delta,"
        "cost_basis,valuation")
    assert "\r" not in text and text.endswith("\n")
    assert canonical(HUGE) == "123456789.123456789012345678" and canonical(HUGE) in text
    assert "0.000000000000000001" in text
    assert not re.search(r"\d[eE][+-]?\d", text)  # no exponent notation anywhere
    rows = list(csv.DictReader(io.StringIO(text)))
    bitz_btc = next(r for r in rows if (r["account"], r["asset"]) == ("bitz-1", "BTC"))
    assert Decimal(bitz_btc["total"]) == TINY
    assert bitz_btc["valuation"] == "btc=0.000000000000000001;usd=0.00000000000006"
    cash = next(r for r in rows if (r["account"], r["asset"]) == ("pitrade-ira", "USD"))
    assert cash["locked"] == "" and cash["cost_basis"] == ""
    eth = next(r for r in rows if r["asset"] == "ETH")
    assert (eth["change"], eth["previous_total"], eth["delta"]) == ("new", "", "2")
    aapl = next(r for r in rows if r["asset"] == "AAPL")
    assert aapl["cost_basis"] == "150.25"
    # Gone holdings are not held at the end of the day: not a row.
    assert all(r["asset"] != "DOGE" for r in rows)
    assert [(r["account"], r["asset"]) for r in rows] == sorted(
        (r["account"], r["asset"]) for r in rows)
