"""A realistic daily report built by hand, for the renderers' tests."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from aggregator.reports.model import AccountHealth, AssetTotal, DayPoint, HoldingLine, Report

DAY = date(2024, 5, 14)
TINY = Decimal("0.000000000000000001")
HUGE = Decimal("123456789.123456789012345678")
LONG_ERROR = (
    "HTTP 503 from https://api.bitz.example/Assets/getUserAssets: <html><body>Service "
    "Temporarily Unavailable & maintenance</body></html>\nretry later; request id "
    "0123456789abcdef0123456789abcdef"
)


def D(text: str) -> Decimal:
    return Decimal(text)


def _line(account: str, source: str, asset: str, kind: str, total: str,
          previous: str | None, change: str, *, available: str | None = None,
          locked: str | None = None, **extra: object) -> HoldingLine:
    now = D(total)
    before = None if previous is None else D(previous)
    delta = now if before is None else now - before
    return HoldingLine(
        account=account, source=source, asset=asset, kind=kind, total=now,
        available=None if available is None else D(available),
        locked=None if locked is None else D(locked),
        previous_total=before, change=change, delta=delta, **extra,  # type: ignore[arg-type]
    )


def build_report(*, history_days: int = 30, partial: bool = False) -> Report:
    valued_at = datetime(2024, 5, 14, 21, 55, tzinfo=UTC)
    lines = [
        # bitopro: one up, one new, one huge fiat amount unchanged
        _line("bitopro-main", "bitopro", "BTC", "crypto", "0.5", "0.4", "up",
              available="0.4", locked="0.1"),
        _line("bitopro-main", "bitopro", "ETH", "crypto", "2", None, "new",
              available="2", locked="0"),
        _line("bitopro-main", "bitopro", "TWD", "fiat", str(HUGE), str(HUGE), "same",
              available=str(HUGE), locked="0"),
        # bitz: one down, one tiny; both with the exchange's own valuation
        _line("bitz-1", "bitz", "USDT", "crypto", "950.25", "1000", "down",
              available="900.25", locked="50",
              valuation={"usd": D("950.2"), "btc": D("0.0145"), "cny": D("6870.3")},
              valuation_at=valued_at),
        _line("bitz-1", "bitz", "BTC", "crypto", str(TINY), str(TINY), "same",
              available=str(TINY), locked="0",
              valuation={"usd": D("0.00000000000006"), "btc": TINY}, valuation_at=valued_at),
        # pitrade: stocks with cost basis and USD cash (no locked amount given)
        _line("pitrade-ira", "pitrade", "AAPL", "stock", "10", "10", "same",
              available="10", cost_basis=D("150.25")),
        _line("pitrade-ira", "pitrade", "USD", "fiat", "1234.56", "1234.56", "same",
              available="1234.56"),
    ]
    gone = [_line("bitz-1", "bitz", "DOGE", "crypto", "0", "100", "gone",
                  available="0", locked="0")]
    totals = [
        AssetTotal("AAPL", "stock", D("10"), D("10"), 1),
        AssetTotal("BTC", "crypto", D("0.5") + TINY, D("0.4") + TINY, 2),
        AssetTotal("DOGE", "crypto", D("0"), D("100"), 0),
        AssetTotal("ETH", "crypto", D("2"), D("0"), 1),
        AssetTotal("TWD", "fiat", HUGE, HUGE, 1),
        AssetTotal("USD", "fiat", D("1234.56"), D("1234.56"), 1),
        AssetTotal("USDT", "crypto", D("950.25"), D("1000"), 1),
    ]
    last_success = datetime(2024, 5, 14, 21, 55, tzinfo=UTC)
    health = [
        AccountHealth("bitopro-main", "bitopro", 288, {}, None, timedelta(minutes=10),
                      last_success),
        AccountHealth("bitz-1", "bitz", 288, {"timeout": 30, "server_error": 6}, LONG_ERROR,
                      timedelta(hours=3), last_success),
        AccountHealth("pitrade-ira", "pitrade", 288, {}, None, timedelta(minutes=5),
                      last_success),
    ]
    history: list[DayPoint] = []
    for back in range(history_days - 1, -1, -1):
        day = DAY - timedelta(days=back)
        last = back == 0
        history += [
            DayPoint(day, "bitopro-main", "BTC", D("0.5") if last else D("0.4")),
            DayPoint(day, "bitopro-main", "TWD", HUGE),
            DayPoint(day, "bitz-1", "USDT", D("950.25") if last else Decimal(1000 + back)),
            DayPoint(day, "bitz-1", "BTC", TINY),
            DayPoint(day, "pitrade-ira", "AAPL", D("10")),
            DayPoint(day, "pitrade-ira", "USD", D("1234.56")),
        ]
        if last:
            history.append(DayPoint(day, "bitopro-main", "ETH", D("2")))
        else:
            history.append(DayPoint(day, "bitz-1", "DOGE", D("100")))
    start = datetime(2024, 5, 13, 22, 0, tzinfo=UTC)
    return Report(
        day=DAY, timezone="Europe/Berlin", start=start,
        end=datetime(2024, 5, 14, 12, 30, tzinfo=UTC) if partial else start + timedelta(days=1),
        partial=partial, generated_at=datetime(2024, 5, 15, 4, 0, tzinfo=UTC),
        lines=lines, gone=gone, totals=totals, health=health, history=history,
    )


@pytest.fixture
def report() -> Report:
    return build_report()


@pytest.fixture
def single_day_report() -> Report:
    """A report on the first day there is any history."""
    return build_report(history_days=1)


@pytest.fixture(params=["thirty_days", "single_day"])
def any_report(request: pytest.FixtureRequest) -> Report:
    return build_report(history_days=30 if request.param == "thirty_days" else 1)


def with_health(report: Report, *health: AccountHealth) -> Report:
    return dataclasses.replace(report, health=[*report.health, *health])
