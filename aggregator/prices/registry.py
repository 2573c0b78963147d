"""The registry of price sources: one line per source module.

A new price source is a module beside these that declares ``SOURCE = PriceSource(...)``
(its config, requests and parsers), its recorded answers in ``tests/prices/recorded/``,
a fake in the sandbox, and one line below.
"""

from __future__ import annotations

from typing import Any

from aggregator.prices import bitopro, coingecko, manual, yahoo
from aggregator.prices.base import PriceSource

PRICE_SOURCES: dict[str, PriceSource[Any]] = {
    source.name: source
    for source in (
        bitopro.SOURCE,
        coingecko.SOURCE,
        yahoo.SOURCE,
        manual.SOURCE,
    )
}
