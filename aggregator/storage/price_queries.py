"""Reading prices: the price book the value rule asks, and the price log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, select

from aggregator.prices.model import Observation, PriceKind
from aggregator.storage.tables import price_observations as po

# Index-driven: (base, quote, source, kind, observed_at) leads the unique point index.
_LATEST = (
    select(po.c.base, po.c.quote, po.c.kind, po.c.observed_at, po.c.price)
    .where(po.c.base == bindparam("base"), po.c.quote == bindparam("quote"),
           po.c.source == bindparam("source"), po.c.kind == bindparam("kind"),
           po.c.observed_at <= bindparam("at"), po.c.observed_at >= bindparam("since"))
    .order_by(po.c.observed_at.desc(), po.c.id.desc())
    .limit(1)
)


class SqlPriceBook:
    """The stored observations, asked one pair at a time (each an index lookup)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, engine: Engine) -> SqlPriceBook:
        return cls(engine.connect())

    def close(self) -> None:
        self.conn.close()

    def latest(self, source: str, base: str, quote: str, at: datetime,
               live_since: datetime, daily_since: datetime) -> Observation | None:
        found: list[Observation] = []
        for kind, since in ((PriceKind.LIVE, live_since), (PriceKind.DAILY, daily_since)):
            row = self.conn.execute(_LATEST, {"base": base, "quote": quote, "source": source,
                                              "kind": str(kind), "at": at,
                                              "since": since}).first()
            if row is not None:
                found.append(Observation(row.base, row.quote, PriceKind(row.kind),
                                         row.observed_at, row.price))
        # The newer of the two; on a tie the live one, observed at that very instant.
        return max(found, key=lambda o: (o.observed_at, o.kind == PriceKind.LIVE),
                   default=None)
