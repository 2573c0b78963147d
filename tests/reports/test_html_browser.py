"""The HTML report in headless Chromium: it renders, its charts are there, no console errors.

Needs the Debian package ``chromium`` (the CI script installs it); skips without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from aggregator.reports.html_report import render_html
from aggregator.reports.model import Report

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
