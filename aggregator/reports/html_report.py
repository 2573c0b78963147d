"""The daily report as one self-contained HTML file: tables plus inline SVG charts.

Nothing is loaded from the network: the style is inline, there is no script, and the
charts are SVG drawn here. Amounts are shown as exact decimal text; Decimals become
floats only to compute where a mark is drawn.
"""

from __future__ import annotations

import decimal
import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from html import escape

from aggregator.amounts import canonical
from aggregator.reports.model import (
    AccountHealth,
    DayPoint,
    HoldingLine,
    Report,
    Worth,
    WorthDay,
)
from aggregator.reports.text_report import (
    GAP_WORTH_MENTIONING,
    apart_reason,
    failure_kinds,
    format_gap,
    holding_name,
    local_time,
    readable,
    shorten,
    signed,
    successes,
    zone_of,
)
from aggregator.sources.registry import SOURCES
from aggregator.valuation.value import DayTotal

CHART_DAYS = 30
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
           "#e377c2", "#7f7f7f", "#bcbd22")
CHANGE_ORDER = {"new": 0, "gone": 1, "up": 2, "down": 3, "same": 4}

# Sums shown to the reader must not round: the default context keeps only 28 digits.
_EXACT = decimal.Context(prec=200, traps=[decimal.Inexact, decimal.InvalidOperation])

STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;
max-width:1150px;padding:0 1em;color:#222;background:#fff}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.6em 0 .4em;
border-bottom:1px solid #ddd}h3{font-size:1em;margin:1em 0 .3em}
.meta{color:#555}.partial{color:#a60;font-weight:bold}
.alert{background:#fde8e8;border-left:4px solid #c00;padding:.4em .8em}
.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.3em 0 .8em}
th,td{padding:.2em .6em;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f6f6f6;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.time{white-space:nowrap}
caption{caption-side:top;text-align:left;color:#555;padding:.2em 0}
.up{color:#080}.down{color:#b00}.new{color:#06c}.gone{color:#777}
tr.gone-row td{color:#888}
tr.failing td{background:#fde8e8}tr.warning td{background:#fff6dd}
.charts{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0;border:1px solid #eee;padding:.4em}
figcaption{font-size:.85em;color:#444;max-width:360px;overflow-wrap:anywhere}
svg.chart{display:block}svg text{font:10px sans-serif;fill:#666}
footer{margin-top:2em;color:#777;font-size:.85em}
.worth-total{font-size:1.6em;margin:.2em 0}.note{background:#fff6dd;border-left:4px solid #d90;
padding:.4em .8em}tr.sum td{font-weight:600;border-top:1px solid #bbb}
.legend{font-size:.85em;color:#444}.legend .sw{display:inline-block;width:.8em;height:.8em;
margin:0 .25em 0 .8em;vertical-align:-.1em}
""".replace("\n", "")


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _amount(value: Decimal | None) -> str:
    return "" if value is None else canonical(value)


def _sum(values: Iterable[Decimal]) -> Decimal:
    return functools.reduce(_EXACT.add, values, Decimal(0))


def _source_name(source: str) -> str:
    """The source's title; its name if it is no longer registered (history outlives it)."""
    known = SOURCES.get(source)
    return source if known is None else known.title


def _table(headers: Sequence[tuple[str, bool]], rows: Iterable[str], caption: str = "") -> str:
    """``headers`` are (label, numeric); ``rows`` are ready ``<tr>`` elements."""
    head = "".join(f'<th{" class=num" if num else ""}>{_e(label)}</th>' for label, num in headers)
    cap = f"<caption>{caption}</caption>" if caption else ""
    return (f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _td(text: str, *, num: bool = False, cls: str = "") -> str:
    classes = " ".join(c for c in ("num" if num else "", cls) if c)
    attr = f' class="{classes}"' if classes else ""
    return f"<td{attr}>{_e(text)}</td>"


# -- sections ------------------------------------------------------------------------


def _header(report: Report) -> str:
    zone = zone_of(report)
    parts = [f"Day {_e(report.day.isoformat())}, midnight to midnight in {_e(report.timezone)}"]
    if report.partial:
        up_to = local_time(report.end, zone, with_date=False)
        parts.append(f'<span class="partial">(partial, up to {_e(up_to)})</span>')
    parts.append(f"generated {_e(local_time(report.generated_at, zone))}")
    alert = ""
    troubled = [h for h in report.health if h.failures or successes(h) <= 0]
    if troubled:
        names = ", ".join(_e(h.account) for h in sorted(troubled, key=lambda h: h.account))
        alert = (f'<p class="alert">Polling problems today: {names}. '
                 'See <a href="#health">poll health</a>.</p>')
    return (f"<header><h1>Holdings report for {_e(report.day.isoformat())}</h1>"
            f'<p class="meta">{" · ".join(parts)}</p>{alert}</header>')


def _totals(report: Report) -> str:
    rows = []
    for t in sorted(report.totals, key=lambda t: (t.kind, t.asset)):
        delta = _EXACT.subtract(t.total, t.previous_total)
        cls = "up" if delta > 0 else "down" if delta < 0 else ""
        rows.append("<tr>" + _td(t.asset) + _td(t.kind) + _td(canonical(t.total), num=True)
                    + _td(canonical(t.previous_total), num=True)
                    + _td(signed(delta) if delta else "unchanged", num=True, cls=cls)
                    + _td(str(t.accounts), num=True) + "</tr>")
    if not rows:
        return '<section id="totals"><h2>Totals per asset</h2><p>Nothing held.</p></section>'
    table = _table([("asset", False), ("kind", False), ("total", True),
                    ("day before", True), ("change", True), ("accounts", True)], rows,
                   "Summed over the accounts holding each asset at the end of the day.")
    return f'<section id="totals"><h2>Totals per asset</h2>{table}</section>'


def _changes(report: Report) -> str:
    moved = [ln for ln in [*report.lines, *report.gone] if ln.change != "same"]
    moved.sort(key=lambda ln: (CHANGE_ORDER.get(ln.change, 9), ln.account, ln.asset))
    if not moved:
        return '<section id="changes"><h2>Changes</h2><p>No holding changed.</p></section>'
    rows = ["<tr>" + _td(ln.change, cls=ln.change) + _td(ln.account) + _td(ln.asset)
            + _td(_amount(ln.previous_total), num=True) + _td(canonical(ln.total), num=True)
            + _td(signed(ln.delta), num=True, cls=ln.change) + "</tr>" for ln in moved]
    table = _table([("change", False), ("account", False), ("asset", False),
                    ("day before", True), ("end of day", True), ("delta", True)], rows)
    return f'<section id="changes"><h2>Changes</h2>{table}</section>'


def _health_row(report: Report, h: AccountHealth) -> str:
    zone = zone_of(report)
    failed = sum(h.failures.values())
    no_success = successes(h) <= 0
    long_gap = h.longest_gap is not None and h.longest_gap > GAP_WORTH_MENTIONING
    cls = "failing" if failed or no_success else "warning" if long_gap else ""
    status = ("not polled" if h.polls == 0 else "no successful poll" if no_success
              else "failures" if failed else "long gap" if long_gap else "ok")
    tr = f'<tr class="{cls}">' if cls else "<tr>"
    return (tr + _td(h.account) + _td(h.source)
            + _td(status) + _td(str(h.polls), num=True) + _td(str(failed), num=True)
            + _td(failure_kinds(h)) + _td(format_gap(h.longest_gap) if h.longest_gap else "",
                                         num=True)
            + _td(local_time(h.last_success, zone) if h.last_success else "never", cls="time")
            + _td(shorten(h.last_error, 200) if h.failures and h.last_error else "") + "</tr>")


def _health(report: Report) -> str:
    health = sorted(report.health, key=lambda h: h.account)
    if not health:
        return '<section id="health"><h2>Poll health</h2><p>No accounts.</p></section>'
    table = _table(
        [("account", False), ("source", False), ("status", False), ("polls", True),
         ("failed", True), ("failures by kind", False), ("longest gap", True),
         ("last success", False), ("last error", False)],
        [_health_row(report, h) for h in health],
        "Longest gap: the longest stretch of the day without a successful poll.")
    return f'<section id="health"><h2>Poll health</h2>{table}</section>'


def _holdings(report: Report) -> str:
    by_account: dict[str, list[HoldingLine]] = defaultdict(list)
    for line in [*report.lines, *report.gone]:
        by_account[line.account].append(line)
    parts = ['<section id="holdings"><h2>Holdings per account</h2>']
    if not by_account:
        parts.append("<p>Nothing held.</p>")
    for account in sorted(by_account):
        lines = sorted(by_account[account], key=lambda ln: (ln.change == "gone", ln.asset))
        rows = [('<tr class="gone-row">' if ln.change == "gone" else "<tr>")
                + _td(ln.asset) + _td(ln.kind) + _td(canonical(ln.total), num=True)
                + _td(_amount(ln.available), num=True) + _td(_amount(ln.locked), num=True)
                + _td(_amount(ln.previous_total), num=True) + _td(ln.change, cls=ln.change)
                + _td(signed(ln.delta), num=True) + "</tr>" for ln in lines]
        source = _source_name(lines[0].source)
        parts.append(f"<h3>{_e(account)} <small>({_e(source)})</small></h3>")
        parts.append(_table([("asset", False), ("kind", False), ("total", True),
                             ("available", True), ("locked", True), ("day before", True),
                             ("change", False), ("delta", True)], rows))
    parts.append("</section>")
    return "".join(parts)


def _valuations(report: Report) -> str:
    zone = zone_of(report)
    valued = sorted((ln for ln in report.lines if ln.valuation),
                    key=lambda ln: (ln.account, ln.asset))
    costed = sorted((ln for ln in report.lines if ln.cost_basis is not None),
                    key=lambda ln: (ln.account, ln.asset))
    parts = ['<section id="valuations"><h2>Exchange valuations and cost basis</h2>',
             "<p>These figures come from the exchanges and brokers themselves. They are "
             "shown as reported, are not computed here, and are never added to the "
             "amounts above or to each other.</p>"]
    if valued:
        currencies = sorted({key for ln in valued for key in ln.valuation})
        sources = ", ".join(sorted({_source_name(ln.source) for ln in valued}))
        rows = ["<tr>" + _td(ln.account) + _td(ln.asset) + _td(canonical(ln.total), num=True)
                + "".join(_td(_amount(ln.valuation.get(c)), num=True) for c in currencies)
                + _td(local_time(ln.valuation_at, zone) if ln.valuation_at else "", cls="time")
                + "</tr>"
                for ln in valued]
        parts.append(_table(
            [("account", False), ("asset", False), ("amount", True),
             *((f"value in {c.upper()}", True) for c in currencies), ("as of", False)],
            rows,
            f"Valuation <strong>as reported by the exchange</strong> ({_e(sources)}).",
        ))
    if costed:
        sources = ", ".join(sorted({_source_name(ln.source) for ln in costed}))
        rows = ["<tr>" + _td(ln.account) + _td(ln.asset) + _td(canonical(ln.total), num=True)
                + _td(_amount(ln.cost_basis), num=True) + "</tr>" for ln in costed]
        parts.append(_table(
            [("account", False), ("asset", False), ("quantity", True),
             ("cost basis per unit", True)],
            rows,
            f"<strong>Cost basis from {_e(sources)}</strong>: the average purchase price "
            "per unit as reported by the broker; not a market value.",
        ))
    if not valued and not costed:
        parts.append("<p>No source reported a valuation or a cost basis for this day.</p>")
    parts.append("</section>")
    return "".join(parts)


def _money(value: Decimal | None, currency: str, *, sign: bool = False) -> str:
    """A rounded figure for reading, the exact one on hover; "unpriced" when unknown."""
    if value is None:
        return '<td class="num unpriced">unpriced</td>'
    return (f'<td class="num" title="{_e(canonical(value))} {_e(currency)}">'
            f"{_e(readable(value, sign=sign))}</td>")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _worth_headline(report: Report, worth: Worth) -> str:
    zone, held = zone_of(report), len(worth.rows)
    when = (f"up to {_e(local_time(worth.at, zone, with_date=False))} (partial)"
            if report.partial else "at the end of the day")
    parts = [f'<p class="worth-total"><strong title="{_e(canonical(worth.value))}">'
             f"{_e(readable(worth.value))} {_e(worth.currency)}</strong></p>",
             f'<p class="meta">Net worth {when}, {_plural(held, "holding")}: holdings and '
             f"prices as of {_e(local_time(worth.at, zone))} {_e(report.timezone)}.</p>"]
    if worth.unpriced:
        names = ", ".join(_e(holding_name(r.account, r.asset)) for r in worth.unpriced)
        parts.append(f'<p class="note" id="unpriced">{len(worth.unpriced)} of {held} '
                     f"holdings could not be priced and are not counted: {names}.</p>")
    return "".join(parts)


def _worth_change(worth: Worth) -> str:
    c = worth.currency
    both = _plural(len(worth.priced), "holding") + " priced on both days"
    rows = [
        "<tr>" + _td("from price moves") + _money(worth.price_effect, c, sign=True) + "</tr>",
        "<tr>" + _td("from changes in quantity") + _money(worth.quantity_effect, c, sign=True)
        + "</tr>",
        '<tr class="sum">' + _td(both) + _money(
            _sum([worth.price_effect, worth.quantity_effect]), c, sign=True) + "</tr>",
        *("<tr>" + _td(f"{holding_name(a.account, a.asset)}: {apart_reason(a)}")
          + _money(a.counted, c, sign=True) + "</tr>" for a in worth.apart),
        '<tr class="sum">' + _td("change of the net worth") + _money(worth.change, c, sign=True)
        + "</tr>",
    ]
    table = _table([("", False), (f"in {c}", True)], rows,
                   f"The day before ended at {_e(readable(worth.previous.value))} {_e(c)}.")
    return ('<h3 id="worth-change">Change against the day before</h3>'
            '<p class="meta">From price moves: each amount of the day before times the change '
            "of its rate; from changes in quantity: each change of an amount times its rate "
            "now. Holdings new, gone or unpriced on either day are listed apart, with what "
            f"they add to the net worth.</p>{table}")


def _worth_groups(label: str, groups: Sequence[DayTotal], currency: str) -> str:
    rows = ["<tr>" + _td(t.group or "") + _money(t.value, currency)
            + _td(str(t.holdings), num=True) + _td(str(t.unpriced), num=True) + "</tr>"
            for t in groups]
    return _table([(label, False), (f"value in {currency}", True), ("holdings", True),
                   ("unpriced", True)], rows)


def _worth_holdings(report: Report, worth: Worth) -> str:
    zone, c = zone_of(report), worth.currency
    rows = ["<tr>" + _td(r.account) + _td(r.asset) + _td(canonical(r.amount), num=True)
            + _td("unpriced" if r.price is None else canonical(r.price), num=True)
            + _money(r.value, c) + _td(r.price_source or "")
            + _td(local_time(r.price_observed_at, zone) if r.price_observed_at else "",
                  cls="time") + "</tr>" for r in worth.rows]
    return _table([("account", False), ("asset", False), ("amount", True),
                   (f"rate in {c}", True), (f"value in {c}", True), ("price source", False),
                   ("price as of", False)], rows,
                  "The rate used for each holding and the oldest observation behind it.")


def _worth(report: Report) -> str:
    worth = report.worth
    if worth is None:
        return ""
    parts = ['<section id="worth"><h2>Net worth</h2>', _worth_headline(report, worth),
             _worth_change(worth)]
    if worth.rows:
        parts += ['<h3 id="worth-accounts">Value per account</h3>',
                  _worth_groups("account", worth.by_account, worth.currency),
                  '<h3 id="worth-assets">Value per asset</h3>',
                  _worth_groups("asset", worth.by_asset, worth.currency),
                  '<h3 id="worth-holdings">Value per holding</h3>',
                  _worth_holdings(report, worth)]
    parts.append("</section>")
    return "".join(parts)


# -- charts --------------------------------------------------------------------------

WIDTH = 360
LEFT = 8
RIGHT = 8
TOP = 6
DATE_ROW = 14


def _window(report: Report) -> list[date]:
    return [report.day - timedelta(days=CHART_DAYS - 1 - i) for i in range(CHART_DAYS)]


def _x(index: int, left: float, width: float) -> float:
    return left + (index + 0.5) * width / CHART_DAYS


def _date_labels(days: Sequence[date], y: float) -> str:
    return (f'<text x="{LEFT}" y="{y:.0f}">{_e(days[0].isoformat())}</text>'
            f'<text x="{WIDTH - RIGHT}" y="{y:.0f}" text-anchor="end">'
            f"{_e(days[-1].isoformat())}</text>")


def _svg(height: int, label: str, body: str) -> str:
    return (f'<svg class="chart" role="img" '
            f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
            f'aria-label="{_e(label)}">{body}</svg>')


def _bar_chart(asset: str, series: Mapping[date, Decimal], days: Sequence[date],
               color: str, partial: bool) -> str:
    """Bars of one asset's end-of-day total, one slot per day of the window."""
    plot_h = 90
    height = TOP + plot_h + DATE_ROW + 4
    # Floats below only place the marks; every number shown is exact text.
    lo = min(0.0, *(float(v) for v in series.values()))
    hi = max(0.0, *(float(v) for v in series.values()))
    span = (hi - lo) or 1.0
    plot_w = WIDTH - LEFT - RIGHT
    slot = plot_w / CHART_DAYS

    def y(value: float) -> float:
        return TOP + (hi - value) / span * plot_h

    marks = []
    for i, day in enumerate(days):
        if day not in series:
            continue
        value = series[day]
        top, bottom = y(max(float(value), 0.0)), y(min(float(value), 0.0))
        h = bottom - top
        if value != 0 and h < 1.0:  # a tiny holding is still held: keep it visible
            h = 1.0
            top = bottom - 1.0 if value > 0 else top
        opacity = ' fill-opacity="0.5"' if partial and day == days[-1] else ""
        marks.append(
            f'<rect class="mark" x="{_x(i, LEFT, plot_w) - slot * 0.35:.1f}" y="{top:.1f}" '
            f'width="{slot * 0.7:.1f}" height="{h:.1f}"{opacity}>'
            f"<title>{_e(day.isoformat())}: {_e(canonical(value))} {_e(asset)}</title></rect>")
    base = y(0.0)
    body = (f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base:.1f}" y2="{base:.1f}" '
            f'stroke="#999"/><g fill="{color}">{"".join(marks)}</g>'
            + _date_labels(days, TOP + plot_h + DATE_ROW))
    return _svg(height, f"{asset}: end-of-day total over {CHART_DAYS} days", body)


def _asset_charts(report: Report, days: Sequence[date]) -> str:
    window = set(days)
    per_asset: dict[str, dict[date, list[Decimal]]] = defaultdict(lambda: defaultdict(list))
    for point in report.history:
        if point.day in window:
            per_asset[point.asset][point.day].append(point.total)
    parts = [f'<section id="charts-assets"><h2>Last {CHART_DAYS} days per asset</h2>',
             "<p>End-of-day total summed over accounts; each chart has its own scale. "
             "Hover a bar for the exact amount.</p>"]
    if not per_asset:
        parts.append("<p>No history yet.</p>")
    figures = []
    for n, asset in enumerate(sorted(per_asset)):
        series = {day: _sum(values) for day, values in per_asset[asset].items()}
        last_day = max(series)
        caption = (f"<b>{_e(asset)}</b>: {_e(canonical(series[last_day]))} on "
                   f"{_e(last_day.isoformat())}; range {_e(canonical(min(series.values())))}"
                   f" to {_e(canonical(max(series.values())))}")
        chart = _bar_chart(asset, series, days, PALETTE[n % len(PALETTE)], report.partial)
        figures.append(f"<figure>{chart}<figcaption>{caption}</figcaption></figure>")
    parts.append(f'<div class="charts">{"".join(figures)}</div></section>')
    return "".join(parts)


def _account_chart(account: str, points: Sequence[DayPoint], days: Sequence[date]) -> str:
    """One row per asset: its end-of-day total as a step line with a dot at every change.

    Each row has its own scale (assets are not comparable with each other).
    """
    index = {day: i for i, day in enumerate(days)}
    per_asset: dict[str, dict[int, Decimal]] = defaultdict(dict)
    for point in points:
        per_asset[point.asset][index[point.day]] = point.total
    row_h, label_w = 26, 64
    left, plot_w = LEFT + label_w, WIDTH - LEFT - label_w - RIGHT
    height = TOP + row_h * len(per_asset) + DATE_ROW + 4
    rows = []
    for r, asset in enumerate(sorted(per_asset)):
        color = PALETTE[r % len(PALETTE)]
        series = per_asset[asset]
        # Floats below only place the marks; every number shown is exact text.
        lo = min(float(v) for v in series.values())
        hi = max(float(v) for v in series.values())
        top = TOP + r * row_h + 4
        inner = row_h - 10

        def y(value: Decimal, lo: float = lo, hi: float = hi, top: float = top,
              inner: float = inner) -> float:
            if hi == lo:
                return top + inner / 2
            return top + (hi - float(value)) / (hi - lo) * inner

        path: list[str] = []
        dots: list[str] = []
        previous: tuple[int, Decimal] | None = None
        last = max(series)
        for i in sorted(series):
            value = series[i]
            xi, yi = _x(i, left, plot_w), y(value)
            starts = previous is None or previous[0] != i - 1
            changed = not starts and previous is not None and previous[1] != value
            ends = i + 1 not in series
            if starts:
                path.append(f"M{xi:.1f} {yi:.1f}")  # a day without the asset breaks the line
            elif changed:
                path.append(f"H{xi:.1f}V{yi:.1f}")
            elif ends:
                path.append(f"H{xi:.1f}")
            if starts or changed or ends:
                # Exact amounts as tooltips on the first and last dot only, to keep the
                # file small; the tables have the day's amounts.
                tip = (f"<title>{_e(days[i].isoformat())}: {_e(canonical(value))} "
                       f"{_e(asset)}</title>" if previous is None or i == last
                       else "")
                dots.append(f'<circle class="mark" cx="{xi:.1f}" cy="{yi:.1f}" r="2.5">'
                            f"{tip}</circle>")
            previous = (i, value)
        rows.append(
            f'<text x="{LEFT}" y="{top + inner / 2 + 3:.1f}">{_e(asset[:10])}</text>'
            f'<g stroke="{color}" fill="{color}"><path d="{"".join(path)}" fill="none" '
            f'stroke-width="1.5"/>{"".join(dots)}</g>')
    body = "".join(rows) + _date_labels(days, height - 4)
    return _svg(height, f"{account}: end-of-day totals per asset over {CHART_DAYS} days", body)


def _account_charts(report: Report, days: Sequence[date]) -> str:
    window = set(days)
    per_account: dict[str, list[DayPoint]] = defaultdict(list)
    for point in report.history:
        if point.day in window:
            per_account[point.account].append(point)
    parts = [f'<section id="charts-accounts"><h2>Last {CHART_DAYS} days per account</h2>',
             "<p>One row per asset, each on its own scale; a dot marks every change and the "
             "last day held. Hover the first or last dot for the exact amount.</p>"]
    if not per_account:
        parts.append("<p>No history yet.</p>")
    figures = [f"<figure>{_account_chart(account, per_account[account], days)}"
               f"<figcaption><b>{_e(account)}</b></figcaption></figure>"
               for account in sorted(per_account)]
    parts.append(f'<div class="charts">{"".join(figures)}</div></section>')
    return "".join(parts)


WORTH_WIDTH = 720
WORTH_LABELS = 92  # room at the right for the scale's two figures
UNPRICED = "#d97706"
NO_VALUE = "#b91c1c"


def _no_value(point: WorthDay) -> bool:
    return not point.holdings or point.unpriced == point.holdings


def _worth_chart(worth: Worth, report: Report, span: int) -> str:
    """The net worth at the end of each of the last ``span`` days: a line, a point a day.

    A strip below the plot marks the days that do not count everything: amber where some
    holding was unpriced (its point is hollow: the value counts the priced ones only),
    red where nothing had a value. Days before the history began are left blank.
    """
    days = [report.day - timedelta(days=span - 1 - i) for i in range(span)]
    known = {d.day: d for d in worth.history}
    valued = [d.value for d in worth.history if d.day >= days[0] and not _no_value(d)]
    plot_h, strip_h = 120, 8
    strip_y = TOP + plot_h + 4
    height = strip_y + strip_h + DATE_ROW + 4
    plot_w = WORTH_WIDTH - LEFT - WORTH_LABELS
    slot = plot_w / span
    # Floats below only place the marks; every number shown is exact or rounded text.
    lo = min((float(v) for v in valued), default=0.0)
    hi = max((float(v) for v in valued), default=0.0)
    pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad
    radius = 2.5 if span <= CHART_DAYS else 1.6
    tick_w = max(slot * 0.8, 1.0)

    def tick(cls: str, color: str, xi: float, tip: str) -> str:
        return (f'<rect class="{cls}" x="{xi - tick_w / 2:.1f}" y="{strip_y}" '
                f'width="{tick_w:.1f}" height="{strip_h}" fill="{color}">'
                f"<title>{_e(tip)}</title></rect>")

    path: list[str] = []
    points: list[str] = []
    strip: list[str] = []
    joined = False
    for i, day in enumerate(days):
        point = known.get(day)
        xi = LEFT + (i + 0.5) * slot
        if point is None or _no_value(point):
            joined = False  # the line breaks: no value that day
            if point is not None:
                strip.append(tick("no-value", NO_VALUE, xi, f"{day.isoformat()}: no value "
                                  f"({_plural(point.holdings, 'holding')}, none priced)"))
            continue
        yi = TOP + (hi - float(point.value)) / (hi - lo) * plot_h
        path.append(f"{'L' if joined else 'M'}{xi:.1f} {yi:.1f}")
        joined = True
        tip = f"{day.isoformat()}: {readable(point.value)} {worth.currency}"
        if point.unpriced:
            tip += f"; {point.unpriced} of {point.holdings} holdings unpriced, not counted"
            strip.append(tick("unpriced-day", UNPRICED, xi, tip))
            points.append(f'<circle class="mark unpriced" cx="{xi:.1f}" cy="{yi:.1f}" '
                          f'r="{radius}" fill="#fff" stroke="{UNPRICED}" stroke-width="1.5">'
                          f"<title>{_e(tip)}</title></circle>")
        else:
            points.append(f'<circle class="mark" cx="{xi:.1f}" cy="{yi:.1f}" r="{radius}">'
                          f"<title>{_e(tip)}</title></circle>")
    scale_x = LEFT + plot_w + 6
    scale = "" if not valued else (
        f'<text x="{scale_x:.1f}" y="{TOP + 8}">{_e(readable(max(valued)))}</text>'
        f'<text x="{scale_x:.1f}" y="{TOP + plot_h}">{_e(readable(min(valued)))}</text>')
    if strip:
        scale += f'<text x="{scale_x:.1f}" y="{strip_y + strip_h}">not all priced</text>'
    body = (f'<rect x="{LEFT}" y="{TOP}" width="{plot_w:.1f}" height="{plot_h}" '
            f'fill="none" stroke="#ddd"/>'
            f'<path d="{"".join(path)}" fill="none" stroke="{PALETTE[0]}" stroke-width="1.5"/>'
            f'<g fill="{PALETTE[0]}">{"".join(points)}</g><g>{"".join(strip)}</g>{scale}'
            f'<text x="{LEFT}" y="{height - 4}">{_e(days[0].isoformat())}</text>'
            f'<text x="{LEFT + plot_w:.1f}" y="{height - 4}" text-anchor="end">'
            f"{_e(days[-1].isoformat())}</text>")
    return (f'<svg class="chart worth-chart" role="img" width="{WORTH_WIDTH}" '
            f'height="{height}" viewBox="0 0 {WORTH_WIDTH} {height}" '
            f'aria-label="net worth in {_e(worth.currency)} over {span} days">{body}</svg>')


def _worth_days(days: Sequence[WorthDay]) -> str:
    unpriced = sum(1 for d in days if d.unpriced and not _no_value(d))
    empty = sum(1 for d in days if _no_value(d))
    return (f"{_plural(len(days), 'day')} of history; {unpriced} with holdings unpriced, "
            f"{empty} without any value")


def _worth_charts(report: Report) -> str:
    worth = report.worth
    if worth is None:
        return ""
    parts = ['<section id="charts-worth"><h2>Net worth over time</h2>',
             f"<p>The value in {_e(worth.currency)} at the end of each day, with the holdings "
             "and prices of that moment. Hover a point for its figure.</p>",
             f'<p class="legend"><span class="sw" style="background:{PALETTE[0]}"></span>'
             f'every holding priced<span class="sw" style="background:{UNPRICED}"></span>'
             "some holdings unpriced (hollow point: counts the priced ones only)"
             f'<span class="sw" style="background:{NO_VALUE}"></span>no value at all</p>',
             '<div class="charts">']
    for span in worth.chart_days:
        shown = [d for d in worth.history if d.day > report.day - timedelta(days=span)]
        parts.append(f'<figure id="worth-{span}">{_worth_chart(worth, report, span)}'
                     f"<figcaption><b>Last {span} days</b>: {_e(_worth_days(shown))}"
                     "</figcaption></figure>")
    parts.append("</div></section>")
    return "".join(parts)


def render_html(report: Report) -> str:
    days = _window(report)
    title = f"Holdings report {report.day.isoformat()}"
    if report.partial:
        title += " (partial)"
    body = "".join([
        _header(report), _worth(report), _worth_charts(report), _totals(report),
        _changes(report), _health(report),
        _holdings(report), _valuations(report), _asset_charts(report, days),
        _account_charts(report, days),
        f"<footer>aggregator daily report · amounts are exact as stored · times in "
        f"{_e(report.timezone)}</footer>",
    ])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
            f"<body>{body}</body></html>\n")
