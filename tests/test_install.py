"""A non-editable install carries its migrations: `db upgrade` works from any folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.storage import database

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``pip install --target`` of a clean copy of the tracked files."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(source)], check=True, timeout=300)
    yield target


def test_db_upgrade_twice_from_another_folder(installed: Path, tmp_path: Path,
                                              db_url: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(installed)}
    for _ in range(2):
        result = subprocess.run(
            [str(installed / "bin" / "aggregator"), "--config", str(config), "db", "upgrade"],
            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        assert f"revision {database.SCHEMA_REVISION}" in result.stderr
    where = subprocess.run(
        [sys.executable, "-c", "import aggregator.migrations as m; print(m.__file__)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(installed))  # the installed copy, not the repository
