"""`aggregator demo`: the README's first command, end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_prints_holdings_of_every_source(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "demo", "--dir", str(tmp_path / "demo"),
         "--duration", "3", "--interval", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("Holdings now:")[1].split("What changed")[0]
    sources = {line.split()[1] for line in table.splitlines()[3:] if line.strip()}
    assert sources == {"bitopro", "bitz", "bitzoom", "pitrade"}
    assert result.stderr.count(": ok,") >= 10  # the daemon's poll lines, 5 accounts x 2+
    assert "failed" not in result.stderr
    assert (tmp_path / "demo" / "holdings.db").exists()
