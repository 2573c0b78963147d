"""Writing a day's report files, each atomically, so a reader never sees half a report."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from aggregator.reports.csv_report import render_csv
from aggregator.reports.html_report import render_html
from aggregator.reports.model import Report
from aggregator.reports.text_report import render_text

# Reports are documents meant to be read by people and tools other than the daemon (a web
# server, a mail job, the operator's own account), like the output of any command; the
# temp file NamedTemporaryFile makes is 0600, so without a chmod the rename would leave
# reports only the service user can read. Who may read them is decided by the report
# directory's mode (e.g. systemd's StateDirectoryMode=0750), not by each file.
REPORT_MODE = 0o644


def _write_atomically(path: Path, text: str) -> None:
    """Temp file in the same directory, flushed and fsynced, then renamed over ``path``."""
    data = text.encode("utf-8")
    with tempfile.NamedTemporaryFile(
        delete=False, dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    ) as tmp:
        tmp_path = Path(tmp.name)
        try:
            tmp.write(data)
            tmp.flush()
            os.fchmod(tmp.fileno(), REPORT_MODE)
            os.fsync(tmp.fileno())
        except BaseException:
            tmp.close()
            tmp_path.unlink(missing_ok=True)
            raise
    try:
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _fsync_directory(directory: Path) -> None:
    """Make the renames durable; not every platform can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_report(report: Report, directory: Path) -> list[Path]:
    """Write ``D.html``, ``D.csv`` and ``D.txt`` for ``report.day`` into ``directory``.

    The HTML file is written last: its presence marks the day as done (the daemon looks
    for it to find missed days), so an interruption leaves the day to be written again.
    Returns the paths, HTML first.
    """
    directory.mkdir(parents=True, exist_ok=True)
    name = report.day.isoformat()
    rendered = [
        (directory / f"{name}.csv", render_csv(report)),
        (directory / f"{name}.txt", render_text(report)),
        (directory / f"{name}.html", render_html(report)),
    ]
    for path, text in rendered:
        _write_atomically(path, text)
    _fsync_directory(directory)
    return [rendered[2][0], rendered[0][0], rendered[1][0]]
