from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from aggregator.reports.html_report import render_html
from aggregator.reports.model import AccountHealth, Report

from .conftest import HUGE, build_report, with_health

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Tree(HTMLParser):
    """Collects every element with its attributes, parent chain and text; checks nesting."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str | None]]] = []
        self.elements: list[tuple[str, dict[str, str | None], tuple[str, ...]]] = []
        self.charts: list[list[str]] = []  # tags inside each element of class "chart"
        self.text: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        for chart, depth in self._open_charts():
            del depth
            chart.append(tag)
        if "chart" in classes:
            self.charts.append([])
        self.elements.append((tag, attributes, tuple(classes)))
        if tag not in VOID:
            self.stack.append((tag, attributes))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def _open_charts(self) -> list[tuple[list[str], int]]:
        # Charts whose element is still open: count open elements of class "chart".
        open_count = sum(1 for _, a in self.stack if "chart" in (a.get("class") or "").split())
        return [(chart, 0) for chart in self.charts[len(self.charts) - open_count:]]

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {[t for t, _ in self.stack]})")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Tree:
    tree = Tree()
    tree.feed(html)
    tree.close()
    assert tree.errors == []
    assert tree.stack == []
    return tree


def test_self_contained_and_well_formed(any_report: Report) -> None:
    html = render_html(any_report)
    tree = parse(html)
    for tag, attrs, _ in tree.elements:
        assert tag not in ("link", "img", "iframe", "object", "embed"), tag
        for name in ("src", "href", "xlink:href", "action", "data"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http://", "https://", "//")), (tag, name, value)
        if tag == "script":
            assert "src" not in attrs
    assert "@import" not in html and "url(" not in html
    # The error message's URL appears as text only, escaped.
    assert "https://api.bitz.example" in "".join(tree.text)
    assert "<html><body>Service" not in html and "&lt;html&gt;&lt;body&gt;Service" in html
    assert len(html.encode()) < 200_000


def test_charts_have_visible_marks(any_report: Report) -> None:
    tree = parse(render_html(any_report))
    # One per asset with any history in the window, one per account.
    assets = {p.asset for p in any_report.history}
    accounts = {p.account for p in any_report.history}
    assert len(tree.charts) == len(assets) + len(accounts) >= 2
    for tags in tree.charts:
        assert "circle" in tags or "rect" in tags, tags
    marks = [(tag, classes) for tag, _, classes in tree.elements if "mark" in classes]
    assert {tag for tag, _ in marks} == {"rect", "circle"}


def test_single_day_history_still_draws_marks(single_day_report: Report) -> None:
    html = render_html(single_day_report)
    tree = parse(html)
    assert len(tree.charts) >= 2
    for tags in tree.charts:
        assert tags.count("rect") + tags.count("circle") >= 1
    # Tiny and huge holdings are drawn in the same chart: both visible (non-zero height).
    heights = [float(attrs["height"] or 0) for tag, attrs, cls in tree.elements
               if tag == "rect" and "mark" in cls]
    assert heights and min(heights) >= 1.0


def test_sections_and_exact_amounts(report: Report) -> None:
    report = with_health(report, AccountHealth(
        "bitzoom-<futures>", "bitzoom", 4, {"token_expired": 4}, "expired & <gone>",
        timedelta(days=1), None))
    html = render_html(report)
    tree = parse(html)
    text = " ".join(" ".join(tree.text).split())
    ids = {attrs.get("id") for _, attrs, _ in tree.elements}
    assert {"totals", "changes", "health", "holdings", "valuations", "charts-assets",
            "charts-accounts"} <= ids
    assert "123456789.123456789012345678" in text and str(HUGE) in html
    assert "0.000000000000000001" in text
    assert "as reported by the exchange" in text
    assert "Cost basis from PiTrade" in text
    assert "150.25" in text and "6870.3" in text
    # Failing accounts are highlighted; names are escaped.
    failing_rows = [attrs for tag, attrs, cls in tree.elements if tag == "tr" and "failing" in cls]
    assert len(failing_rows) == 2
    assert "bitzoom-&lt;futures&gt;" in html and "bitzoom-<futures>" not in html
    assert "expired &amp; &lt;gone&gt;" in html
    assert "30 timeout, 6 server_error" in text and "3 h 00 min" in text
    for change in ("new", "gone", "up", "down"):
        assert f"<td class=\"{change}\">{change}</td>" in html


def test_partial_marker_and_header() -> None:
    html = render_html(build_report(partial=True))
    assert "(partial, up to 14:30)" in html
    assert "<title>Holdings report 2024-05-14 (partial)</title>" in html
    assert "generated 2024-05-15 06:00" in html


def test_empty_history_and_no_valuations() -> None:
    report = build_report()
    bare = dataclasses.replace(
        report, history=[], lines=[dataclasses.replace(ln, valuation={}, cost_basis=None)
                                   for ln in report.lines],
        generated_at=datetime(2024, 5, 15, tzinfo=UTC))
    html = render_html(bare)
    parse(html)
    assert "No history yet." in html
    assert "No source reported a valuation or a cost basis" in html


def test_deterministic(report: Report) -> None:
    assert render_html(report) == render_html(build_report())
