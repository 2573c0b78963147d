"""`aggregator demo`: the README's first command, end to end."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from aggregator.sandbox import demo_accounts
from aggregator.sources.registry import SOURCES


def test_demo_prints_holdings_of_every_source(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "demo", "--dir", str(tmp_path / "demo"),
         "--duration", "3", "--interval", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("Holdings now:")[1].split("What changed")[0]
    sources = {line.split()[1] for line in table.splitlines()[3:] if line.strip()}
    assert sources == set(SOURCES)
    # The daemon's poll lines: every demo account at least twice.
    assert result.stderr.count(": ok,") >= 2 * len(demo_accounts())
    assert "failed" not in result.stderr
    assert (tmp_path / "demo" / "holdings.db").exists()
    # Valued in TWD: every holding priced, and the net worth with what changed.
    worth = result.stdout.split("What it is worth now, in TWD:")[1]
    rows = [line.split() for line in worth.splitlines()[3:] if line.strip()
            and not line.startswith(("Net worth", "At "))]
    assert rows and all(len(r) == 6 and r[4] != "-" for r in rows), worth
    assert re.search(r"^Net worth: [\d,]+\.\d\d TWD \(all \d+ holdings priced\)$", worth,
                     re.MULTILINE), worth
    assert re.search(r"^At \d\d:\d\d:\d\dZ, once every account and price source had answered: "
                     r"[\d,]+\.\d\d TWD; since then [+-][\d,]+\.\d\d TWD\.$", worth,
                     re.MULTILINE), worth
