from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aggregator.reports.csv_report import render_csv
from aggregator.reports.files import write_report
from aggregator.reports.html_report import render_html
from aggregator.reports.model import Report
from aggregator.reports.text_report import render_text


def test_writes_three_files(report: Report, tmp_path: Path) -> None:
    directory = tmp_path / "reports" / "nested"  # created when missing
    paths = write_report(report, directory)
    assert [p.name for p in paths] == ["2024-05-14.html", "2024-05-14.csv", "2024-05-14.txt"]
    assert sorted(os.listdir(directory)) == sorted(p.name for p in paths)  # no temp files
    assert paths[0].read_text("utf-8") == render_html(report)
    assert paths[1].read_text("utf-8") == render_csv(report)
    assert paths[2].read_text("utf-8") == render_text(report)
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_rewriting_is_idempotent(report: Report, tmp_path: Path) -> None:
    first = {p: p.read_bytes() for p in write_report(report, tmp_path)}
    inodes = {p: p.stat().st_ino for p in first}
    second = write_report(report, tmp_path)
    assert {p: p.read_bytes() for p in second} == first
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in first)
    # Replaced by rename, not rewritten in place: a reader holding the old file is safe.
    assert all(p.stat().st_ino != inodes[p] for p in second)


def test_failure_leaves_old_file_and_no_temp(report: Report, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    paths = write_report(report, tmp_path)
    before = {p: p.read_bytes() for p in paths}

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_report(report, tmp_path)
    assert {p: p.read_bytes() for p in paths} == before
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in paths)
