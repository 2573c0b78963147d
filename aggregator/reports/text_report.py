"""A short plain-text summary of the daily report, fit for a mail or the journal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aggregator.amounts import canonical, subtract
from aggregator.reports.model import AccountHealth, HoldingLine, Report

# A stretch without a successful poll longer than this is worth a line.
GAP_WORTH_MENTIONING = timedelta(hours=1)
MAX_TOTALS = 15
MAX_MOVERS = 8
ERROR_CHARS = 100


def zone_of(report: Report) -> tzinfo:
    try:
        return ZoneInfo(report.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def local_time(moment: datetime, zone: tzinfo, *, with_date: bool = True) -> str:
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")


def signed(amount: Decimal) -> str:
    """Exact decimal text with an explicit sign for a change: +1.5, -2, 0."""
    text = canonical(amount)
    return text if text.startswith("-") or text == "0" else f"+{text}"


def format_gap(gap: timedelta) -> str:
    minutes = int(gap.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    if hours >= 24:
        days, hours = divmod(hours, 24)
        return f"{days} d {hours} h {minutes:02d} min"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"


def shorten(message: str, limit: int = ERROR_CHARS) -> str:
    """One line of at most ``limit`` characters."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def successes(health: AccountHealth) -> int:
    return health.polls - sum(health.failures.values())


def failure_kinds(health: AccountHealth) -> str:
    """``30 timeout, 6 server_error``: most frequent first."""
    kinds = sorted(health.failures.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{count} {kind}" for kind, count in kinds)


def title(report: Report) -> str:
    zone = zone_of(report)
    text = f"Holdings report for {report.day.isoformat()} ({report.timezone})"
    if report.partial:
        text += f" (partial, up to {local_time(report.end, zone, with_date=False)})"
    return text


def _relative(line: HoldingLine) -> Decimal:
    """How much a line moved relative to what it was, for ranking only (never displayed)."""
    if line.change in ("new", "gone") or not line.previous_total:
        return Decimal("Infinity")
    return abs(line.delta) / abs(line.previous_total)


def movers(lines: Sequence[HoldingLine]) -> list[HoldingLine]:
    """New and gone lines first, then by the size of the move relative to the holding."""
    order = {"new": 0, "gone": 1, "up": 2, "down": 2}
    moved = [line for line in lines if line.change in order]
    return sorted(moved, key=lambda ln: (order[ln.change], -_relative(ln), ln.account, ln.asset))


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    """Left-aligned text columns, numbers included (exact text, no padding tricks)."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        (indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        .rstrip()
        for row in rows
    ]


def _totals_section(report: Report) -> list[str]:
    totals = sorted(report.totals, key=lambda t: (t.kind, t.asset))
    shown = totals
    if len(totals) > MAX_TOTALS:
        # Too many to list: the ones that moved first, then as many unchanged as fit.
        changed = [t for t in totals if t.total != t.previous_total]
        unchanged = [t for t in totals if t.total == t.previous_total]
        shown = (changed + unchanged)[:MAX_TOTALS]
    rows = []
    for t in shown:
        change = ("unchanged" if t.total == t.previous_total
                  else signed(subtract(t.total, t.previous_total)))
        accounts = f"{t.accounts} account" + ("" if t.accounts == 1 else "s")
        rows.append([t.asset, t.kind, canonical(t.total), change, accounts])
    lines = ["Totals per asset (change vs the day before):", *_table(rows)]
    if len(totals) > len(shown):
        lines.append(f"  … and {len(totals) - len(shown)} more unchanged (see the CSV)")
    if not totals:
        lines.append("  nothing held")
    return lines


def _movers_section(report: Report) -> list[str]:
    moved = movers([*report.lines, *report.gone])
    if not moved:
        return ["Changes: none"]
    rows = [
        [line.change, line.account, line.asset, signed(line.delta),
         f"(now {canonical(line.total)})" if line.change != "gone" else
         f"(was {canonical(line.previous_total or Decimal(0))})"]
        for line in moved[:MAX_MOVERS]
    ]
    lines = ["Biggest movers:", *_table(rows)]
    if len(moved) > MAX_MOVERS:
        lines.append(f"  … and {len(moved) - MAX_MOVERS} more changes (see the CSV)")
    return lines


def health_problems(health: AccountHealth) -> list[str]:
    """What went wrong for one account, one phrase each; empty when all was well."""
    problems = []
    if health.polls == 0:
        problems.append("not polled at all")
    elif successes(health) <= 0:
        problems.append(f"no successful poll ({health.polls} polls)")
    if health.failures:
        failed = sum(health.failures.values())
        problems.append(f"{failed} of {health.polls} polls failed: {failure_kinds(health)}")
    if health.longest_gap is not None and health.longest_gap > GAP_WORTH_MENTIONING:
        problems.append(f"longest gap without a successful poll {format_gap(health.longest_gap)}")
    return problems


def _health_section(report: Report) -> list[str]:
    zone = zone_of(report)
    lines = ["Poll health:"]
    healthy = 0
    for health in sorted(report.health, key=lambda h: h.account):
        problems = health_problems(health)
        if not problems:
            healthy += 1
            continue
        lines.append(f"  {health.account} ({health.source}): " + "; ".join(problems))
        if health.failures and health.last_error:
            lines.append(f"    last error: {shorten(health.last_error)}")
        if successes(health) <= 0:
            last = (local_time(health.last_success, zone) if health.last_success
                    else "never")
            lines.append(f"    last successful poll: {last}")
    if healthy:
        plural = "account" if healthy == 1 else "accounts"
        lines.append(f"  {healthy} {plural} polled without failures")
    if not report.health:
        lines.append("  no accounts")
    return lines


def render_text(report: Report) -> str:
    zone = zone_of(report)
    lines = [
        title(report),
        f"Generated {local_time(report.generated_at, zone)} "
        f"{report.generated_at.astimezone(zone).strftime('%Z')}".rstrip(),
        "",
        *_totals_section(report),
        "",
        *_movers_section(report),
        "",
        *_health_section(report),
    ]
    return "\n".join(lines) + "\n"
