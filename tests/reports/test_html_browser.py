"""The HTML report in headless Chromium: it renders, its charts are there, no console errors.

Needs the Debian package ``chromium`` (the CI script installs it); skips without it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from aggregator.reports.build import build_report
from aggregator.reports.html_report import render_html
from aggregator.reports.model import Report
from aggregator.reports.worth import with_worth
from aggregator.storage import database

from .worth_history import DAYS, SETTINGS, ZONE, write_history

CHROMIUM = "/usr/bin/chromium"
# Page console output in Chromium's log: "INFO:CONSOLE:1] ..." (newer) or "CONSOLE(1)".
CONSOLE_LINE = re.compile(r":CONSOLE[:(]|Uncaught")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not path:
        pytest.skip(f"{CHROMIUM} not found: install the Debian package 'chromium' "
                    "(apt-get install -y chromium) to run the browser tests")
    return path


def _run(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
         "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE_LINE.search(line)]


def _load(chromium: str, tmp_path: Path, html: str) -> tuple[str, list[str]]:
    page = tmp_path / "report.html"
    page.write_text(html, "utf-8")
    done = _run(chromium, tmp_path / "profile-dom", "--enable-logging=stderr", "--v=0",
                "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, _console_errors(done.stderr)


def test_renders_with_charts_and_no_console_errors(chromium: str, any_report: Report,
                                                  tmp_path: Path) -> None:
    dom, errors = _load(chromium, tmp_path, render_html(any_report))
    assert errors == []
    charts = re.findall(r'<svg class="chart".*?</svg>', dom, re.S)
    assert len(charts) >= 2
    for chart in charts:
        assert "<circle" in chart or "<rect" in chart
    assert "Holdings report for 2024-05-14" in dom


def test_screenshot(chromium: str, any_report: Report, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(any_report), "utf-8")
    png = tmp_path / "report.png"
    done = _run(chromium, tmp_path / "profile-shot", f"--screenshot={png}",
                "--window-size=1200,2000", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert png.exists(), done.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000, f"screenshot is only {len(data)} bytes: a blank page?"


def test_console_check_catches_errors(chromium: str, tmp_path: Path) -> None:
    """The check above is not vacuous: a page that throws is caught."""
    _, errors = _load(chromium, tmp_path,
                      "<!DOCTYPE html><html><body><script>missing();</script></body></html>")
    assert any("Uncaught" in line for line in errors), errors


# Measures the net-worth chart as laid out, into an attribute --dump-dom shows (the
# report itself has no script; this is added to the copy loaded here only).
MEASURE = """<script>
const out = {};
for (const id of ["worth-30", "worth-365"]) {
  const svg = document.querySelector("#" + id + " svg");
  if (!svg) continue;
  const box = svg.getBoundingClientRect();
  // Laid out, not hidden by CSS, of some size and on the page's width.
  const shown = (el) => { const b = el.getBoundingClientRect();
    return el.checkVisibility({visibilityProperty: true, opacityProperty: true})
      && b.width > 0 && b.height > 0 && b.left >= 0 && b.right <= innerWidth + 1; };
  out[id] = {width: box.width, height: box.height, visible: shown(svg),
    points: [...svg.querySelectorAll("circle.mark")].filter(shown).length,
    unpriced: [...svg.querySelectorAll(".unpriced-day")].filter(shown).length,
    hollow: svg.querySelectorAll("circle.unpriced").length,
    line: svg.querySelector("path").getTotalLength()};
}
document.body.setAttribute("data-measured", JSON.stringify(out));
</script>"""


@pytest.fixture
def valued_report(sqlite_url: str) -> Report:
    engine = database.open_database(sqlite_url)
    try:
        database.upgrade(engine)
        write_history(engine)
        return with_worth(engine, build_report(engine, DAYS[-1], ZONE), SETTINGS)
    finally:
        engine.dispose()


def _measure(chromium: str, tmp_path: Path, html: str) -> tuple[str, dict[str, Any]]:
    dom, errors = _load(chromium, tmp_path, html.replace("</body>", MEASURE + "</body>"))
    assert errors == []
    found = re.search(r'data-measured="([^"]*)"', dom)
    assert found, dom[-2000:]
    measured: dict[str, Any] = json.loads(found[1].replace("&quot;", '"'))
    return dom, measured


def test_the_net_worth_chart_is_visible(chromium: str, valued_report: Report,
                                        tmp_path: Path) -> None:
    dom, measured = _measure(chromium, tmp_path, render_html(valued_report))
    chart = measured["worth-30"]
    assert chart["visible"] and chart["width"] >= 300 and chart["height"] >= 100, chart
    # Four days of history: four points, the first three hollow and marked unpriced
    # (DOGE never has a price; BTC none on the third day); a line joins them.
    assert (chart["points"], chart["hollow"], chart["unpriced"]) == (4, 3, 3), chart
    assert chart["line"] > 10, chart
    assert "worth-365" not in measured  # the history is not a year long
    assert "Net worth" in dom and "1,666,321.12 TWD" in dom


def test_visibility_check_catches_a_hidden_chart(chromium: str, valued_report: Report,
                                                 tmp_path: Path) -> None:
    """The measure above is not vacuous: a chart laid out at no size is caught."""
    for hide in ("svg.worth-chart{visibility:hidden}", "#charts-worth{display:none}",
                 "svg.worth-chart circle{opacity:0}"):
        html = render_html(valued_report).replace("</style>", hide + "</style>")
        _, measured = _measure(chromium, tmp_path, html)
        assert measured["worth-30"]["points"] == 0, hide
