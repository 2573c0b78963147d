from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from aggregator.reports.model import AccountHealth, Report
from aggregator.reports.text_report import render_text

from .conftest import build_report, with_health


def test_summary_content(report: Report) -> None:
    text = render_text(report)
    lines = text.splitlines()
    assert lines[0] == "Holdings report for 2024-05-14 (Europe/Berlin)"
    assert len(lines) <= 40
    assert "123456789.123456789012345678" in text
    assert "0.500000000000000001" in text  # BTC total summed over accounts, exactly
    for change, asset, delta in [("new", "ETH", "+2"), ("gone", "DOGE", "-100"),
                                 ("up", "BTC", "+0.1"), ("down", "USDT", "-49.75")]:
        assert any(ln.split()[:1] == [change] and asset in ln and delta in ln for ln in lines)


def test_every_failing_account_is_named_with_its_kinds(report: Report) -> None:
    report = with_health(
        report,
        AccountHealth("bitzoom-futures", "bitzoom", 96, {"token_expired": 96},
                      "token expired", timedelta(days=1), None),
        AccountHealth("bitopro-second", "bitopro", 288, {"rate_limited": 1},
                      "slow down", timedelta(minutes=10),
                      datetime(2024, 5, 14, 21, 50, tzinfo=UTC)),
    )
    text = render_text(report)
    for health in report.failing:
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(health.account))
        for kind, count in health.failures.items():
            assert f"{count} {kind}" in line
    bitz = next(ln for ln in text.splitlines() if ln.strip().startswith("bitz-1"))
    assert "3 h 00 min" in bitz
    last_error = next(ln for ln in text.splitlines() if "last error: HTTP 503" in ln)
    assert len(last_error.split("last error: ", 1)[1]) <= 100
    assert "no successful poll" in text and "last successful poll: never" in text
    assert "bitopro-main" not in text.split("Poll health:")[1]
    assert len(text.splitlines()) <= 40


def test_gap_without_failures_is_mentioned() -> None:
    report = build_report()
    quiet = dataclasses.replace(report.health[0], longest_gap=timedelta(hours=2, minutes=5))
    report = dataclasses.replace(report, health=[quiet, *report.health[1:]])
    text = render_text(report)
    assert "bitopro-main (bitopro): longest gap without a successful poll 2 h 05 min" in text


def test_partial_title_and_many_assets() -> None:
    report = build_report(partial=True)
    assert render_text(report).splitlines()[0] == (
        "Holdings report for 2024-05-14 (Europe/Berlin) (partial, up to 14:30)")
    many = [dataclasses.replace(report.totals[0], asset=f"A{i:02d}") for i in range(40)]
    text = render_text(dataclasses.replace(report, totals=many))
    assert len(text.splitlines()) <= 40
    assert "25 more unchanged" in text
