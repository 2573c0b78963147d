"""A short plain-text summary of the daily report, fit for a mail or the journal."""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aggregator.amounts import canonical, subtract
from aggregator.reports.model import AccountHealth, HoldingLine, Report, Worth, WorthChange
from aggregator.valuation.value import DayTotal

# A stretch without a successful poll longer than this is worth a line.
GAP_WORTH_MENTIONING = timedelta(hours=1)
MAX_TOTALS = 15
MAX_MOVERS = 8
MAX_NAMES = 12  # unpriced holdings named in the summary
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


# Rounding for reading only: enough digits that quantize never fails on a large value.
_READABLE = decimal.Context(prec=500, rounding=decimal.ROUND_HALF_EVEN)
CENT = Decimal("0.01")


def readable(value: Decimal, *, sign: bool = False) -> str:
    """A money figure for people: half-even to 2 places, thousands separators: 1,234.50."""
    rounded = value.quantize(CENT, context=_READABLE)
    if rounded.is_zero():
        rounded = Decimal("0.00")  # never "-0.00"
    return format(rounded, "+,f" if sign and not rounded.is_zero() else ",f")


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


def holding_name(account: str, asset: str) -> str:
    return f"{account} {asset}"


def apart_reason(change: WorthChange) -> str:
    """Why a holding is outside the price/quantity split: ``gone, unpriced the day before``."""
    if change.change == "new":
        return "new" + ("" if change.rate is not None else ", unpriced")
    if change.change == "gone":
        return "gone" + ("" if change.rate_before is not None else ", unpriced the day before")
    unknown = [name for name, rate in (("the day before", change.rate_before),
                                       ("at the end of the day", change.rate)) if rate is None]
    return "unpriced " + " and ".join(unknown)


def _value_of(total: DayTotal, currency: str) -> str:
    text = f"{readable(total.value)} {currency}"
    if total.unpriced:
        text += f" ({total.unpriced} of {total.holdings} unpriced)"
    return text


def _worth_section(report: Report, worth: Worth) -> list[str]:
    currency = worth.currency
    held = len(worth.rows)
    when = ("up to " + local_time(worth.at, zone_of(report), with_date=False)
            if report.partial else "at the end of the day")
    lines = [f"Net worth {when}: {readable(worth.value)} {currency}"
             + (f" ({held} holding{'' if held == 1 else 's'})" if held else " (nothing held)")]
    unpriced = worth.unpriced
    if unpriced:
        names = ", ".join(holding_name(r.account, r.asset) for r in unpriced[:MAX_NAMES])
        more = len(unpriced) - MAX_NAMES
        lines.append(f"  {len(unpriced)} of {held} unpriced, not counted: {names}"
                     + (f" and {more} more (see the CSV)" if more > 0 else ""))
    lines.append(f"Change vs the day before: {readable(worth.change, sign=True)} {currency} "
                 f"(then {readable(worth.previous.value)} {currency})")
    priced = worth.priced
    rows = [["from prices", f"{readable(worth.price_effect, sign=True)} {currency}"],
            ["from quantities", f"{readable(worth.quantity_effect, sign=True)} {currency}"]]
    lines += _table(rows)
    lines.append(f"  (over the {len(priced)} holding{'' if len(priced) == 1 else 's'} "
                 "priced on both days)")
    apart = worth.apart
    if apart:
        lines.append("  Apart:")
        lines += _table([[holding_name(c.account, c.asset), apart_reason(c),
                          f"{readable(c.counted, sign=True)} {currency}"]
                         for c in apart[:MAX_MOVERS]], indent="    ")
        if len(apart) > MAX_MOVERS:
            lines.append(f"    … and {len(apart) - MAX_MOVERS} more (see the HTML report)")
    lines.append("Value per account:")
    lines += _table([[t.group or "", _value_of(t, currency)] for t in worth.by_account])
    by_asset = sorted(sorted(worth.by_asset, key=lambda t: t.group or ""),
                      key=lambda t: t.value, reverse=True)
    lines.append("Value per asset:")
    lines += _table([[t.group or "", _value_of(t, currency)] for t in by_asset[:MAX_TOTALS]])
    if len(by_asset) > MAX_TOTALS:
        lines.append(f"  … and {len(by_asset) - MAX_TOTALS} more (see the CSV)")
    return lines


def render_text(report: Report) -> str:
    zone = zone_of(report)
    lines = [
        title(report),
        f"Generated {local_time(report.generated_at, zone)} "
        f"{report.generated_at.astimezone(zone).strftime('%Z')}".rstrip(),
        "",
        *([*_worth_section(report, report.worth), ""] if report.worth else []),
        *_totals_section(report),
        "",
        *_movers_section(report),
        "",
        *_health_section(report),
    ]
    return "\n".join(lines) + "\n"
