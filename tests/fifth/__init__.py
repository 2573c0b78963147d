"""A fifth balance source, Quintet, made only of the pieces the README's "Adding a source"
asks for: one source module (``source.py``), one fake (``fake.py``) and one registry line
each (``register``). tests/sources/test_fifth_source.py shows that this is enough.

The package registry would hold the two lines; a test adds them at run time instead, so the
real registries stay as they are. A subprocess (the daemon) gets them from a
``sitecustomize`` module that calls ``register()`` when Python starts (see ``site_dir``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aggregator.sandbox.registry import FAKES
from aggregator.sources.registry import SOURCES
from tests.fifth import fake, source

ROOT = Path(__file__).resolve().parents[2]


Put = Callable[[dict[str, Any], str, Any], None]


def register(put: Put = dict.__setitem__) -> None:
    """The line in aggregator/sources/registry.py and the one in aggregator/sandbox/registry.py.

    ``put`` stores one entry; a test passes ``monkeypatch.setitem`` so it is undone after.
    """
    put(SOURCES, source.SOURCE.name, source.SOURCE)
    put(FAKES, fake.FAKE.source, fake.FAKE)


def site_dir(folder: Path) -> str:
    """A PYTHONPATH under which every Python process starts with Quintet registered.

    Python imports ``sitecustomize`` from the path at start-up, before the program runs,
    so the daemon subprocess is the unmodified ``python -m aggregator run``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text("import tests.fifth\n\ntests.fifth.register()\n")
    return f"{folder}{os.pathsep}{ROOT}"
