"""The registry of balance sources: one line per source module.

A new source is a module beside these that declares ``SOURCE = Source(...)`` (its
config, auth, requests, parser, title, rate limit and detail keys), one line below, and
its fake in ``aggregator/sandbox/registry.py``. Everything else reads this dict when it
needs it, so nothing else names a source.
"""

from __future__ import annotations

from typing import Any

from aggregator.sources import bitopro, bitz, bitzoom, pitrade
from aggregator.sources.base import Source

SOURCES: dict[str, Source[Any]] = {
    source.name: source
    for source in (
        bitopro.SOURCE,
        bitz.SOURCE,
        bitzoom.SOURCE,
        pitrade.SOURCE,
    )
}
