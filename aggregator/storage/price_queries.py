"""Reading prices: the price book the value rule asks, and the price log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, Subquery, bindparam, literal, select, union_all

from aggregator.prices.model import Observation, PriceKind
from aggregator.storage.tables import price_observations as po


def _latest(kind: PriceKind) -> Subquery:
    # Index-driven: (base, quote, source, kind, observed_at) leads the unique point index.
    return (
        select(po.c.base, po.c.quote, po.c.kind, po.c.observed_at, po.c.price)
        .where(po.c.base == bindparam("base"), po.c.quote == bindparam("quote"),
               po.c.source == bindparam("source"), po.c.kind == str(kind),
               po.c.observed_at <= bindparam("at"),
               po.c.observed_at >= bindparam(f"since_{kind}"))
        .order_by(po.c.observed_at.desc(), po.c.id.desc())
        .limit(1)
        .subquery()
    )


# The newest live and the newest daily observation in one round trip.
_LATEST = union_all(select(_latest(PriceKind.LIVE)), select(_latest(PriceKind.DAILY)))
_ANY = select(literal(1)).where(po.c.base == bindparam("base"), po.c.quote == bindparam("quote"),
                                po.c.source == bindparam("source")).limit(1)


class SqlPriceBook:
    """The stored observations, asked one pair at a time (each an index lookup).

    Most pairs the value rule asks for were never observed (every source is tried in
    both directions, then every pivot), so a pair with no observation at all is
    remembered for the life of the book and not asked again: one lookup instead of one
    per instant.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._observed: dict[tuple[str, str, str], bool] = {}

    @classmethod
    def open(cls, engine: Engine) -> SqlPriceBook:
        return cls(engine.connect())

    def close(self) -> None:
        self.conn.close()

    def latest(self, source: str, base: str, quote: str, at: datetime,
               live_since: datetime, daily_since: datetime) -> Observation | None:
        pair = {"base": base, "quote": quote, "source": source}
        key = (source, base, quote)
        if key not in self._observed:
            self._observed[key] = self.conn.execute(_ANY, pair).first() is not None
        if not self._observed[key]:
            return None
        found = [Observation(row.base, row.quote, PriceKind(row.kind), row.observed_at,
                             row.price)
                 for row in self.conn.execute(_LATEST, {**pair, "at": at,
                                                        "since_live": live_since,
                                                        "since_daily": daily_since})]
        # The newer of the two; on a tie the live one, observed at that very instant.
        return max(found, key=lambda o: (o.observed_at, o.kind == PriceKind.LIVE),
                   default=None)
