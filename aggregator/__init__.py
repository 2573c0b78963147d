"""Portfolio balance aggregation daemon."""

__version__ = "0.1.0"
