"""The registry of price sources: one line per source module."""

from __future__ import annotations

from typing import Any

from aggregator.prices.base import PriceSource

PRICE_SOURCES: dict[str, PriceSource[Any]] = {}
