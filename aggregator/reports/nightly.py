"""Which daily reports are due, and writing them: shared by `report` and the daemon."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from aggregator.reports.build import build_report
from aggregator.reports.files import write_report
from aggregator.reports.mail import SmtpSettings, send_report
from aggregator.reports.worth import with_worth
from aggregator.storage.tables import polls
from aggregator.valuation.rule import ValuationSettings

_REPORT_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})\.html")


def yesterday(zone: ZoneInfo, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(zone).date() - timedelta(days=1)


def write_day(engine: Engine, day: date, zone: ZoneInfo, directory: Path,
              now: datetime | None = None, smtp: SmtpSettings | None = None,
              valuation: ValuationSettings | None = None) -> list[Path]:
    """Write the day's three files; mail them too when ``smtp`` is given.

    With ``valuation`` the report says what the holdings were worth too.
    """
    report = build_report(engine, day, zone, now)
    if valuation is not None:
        report = with_worth(engine, report, valuation)
    paths = write_report(report, directory)
    if smtp is not None:
        send_report(smtp, report, paths)
    return paths


def missed_days(engine: Engine, directory: Path, zone: ZoneInfo,
                now: datetime | None = None) -> list[date]:
    """Complete days with data and no report since the newest report written.

    With no report at all only yesterday is due: a new install does not write a year of
    reports at once (`aggregator report --date` does any day on demand).
    """
    last = yesterday(zone, now)
    with engine.connect() as conn:
        first_poll: datetime | None = conn.execute(select(func.min(polls.c.finished_at))).scalar()
    if first_poll is None:
        return []
    first = first_poll.astimezone(zone).date()
    written = sorted(date.fromisoformat(m[1]) for p in _list(directory)
                     if (m := _REPORT_NAME.fullmatch(p.name)))
    start = written[-1] + timedelta(days=1) if written else last
    start = max(start, first)
    return [start + timedelta(days=n) for n in range((last - start).days + 1)]


def _list(directory: Path) -> list[Path]:
    try:
        return list(directory.iterdir())
    except FileNotFoundError:
        return []
