"""Store one price fetch in one transaction: its log row, raw answers and observations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from aggregator.prices.model import FetchRecord
from aggregator.storage.tables import price_fetch_responses, price_fetches, price_observations
from aggregator.storage.writes import Watch, store_response, write_once

_NEW_FETCH = insert(price_fetches).returning(price_fetches.c.id)
_SAME_FETCH = select(price_fetches.c.id).where(
    price_fetches.c.source == bindparam("k_source"), price_fetches.c.kind == bindparam("k_kind"),
    price_fetches.c.started_at == bindparam("k_started"),
    price_fetches.c.attempt == bindparam("k_attempt"))
_POINT = ["base", "quote", "source", "kind", "observed_at", "price"]


@dataclass(frozen=True)
class FetchWriteResult:
    fetch_id: int
    stored: int  # observations new to the database
    duplicate: bool = False


def record_fetch(engine: Engine, record: FetchRecord, watch: Watch | None = None
                 ) -> FetchWriteResult:
    """Write ``record`` at most once (identity: source, kind, started_at, attempt).

    Observations already stored (the same point at the same price) are not stored again;
    nothing stored is ever changed or deleted.
    """

    def stored() -> FetchWriteResult | None:
        try:
            with engine.connect() as conn:
                found = conn.execute(_SAME_FETCH, _key(record)).scalar()
        except SQLAlchemyError:
            return None
        return None if found is None else FetchWriteResult(int(found), 0, duplicate=True)

    return write_once(engine, lambda conn: _write(conn, record), stored, watch)


def _key(record: FetchRecord) -> dict[str, Any]:
    return {"k_source": record.source, "k_kind": str(record.kind),
            "k_started": record.started_at, "k_attempt": record.attempts}


def _write(conn: Connection, record: FetchRecord) -> FetchWriteResult:
    found = conn.execute(_SAME_FETCH, _key(record)).scalar()
    if found is not None:
        return FetchWriteResult(int(found), 0, duplicate=True)
    fetch_id = int(conn.execute(_NEW_FETCH, {
        "source": record.source, "kind": str(record.kind), "started_at": record.started_at,
        "finished_at": record.finished_at, "status": record.status,
        "error_kind": record.error_kind, "error_message": record.error_message,
        "attempt": record.attempts}).scalar_one())
    for seq, response in enumerate(record.responses):
        conn.execute(insert(price_fetch_responses), {
            "fetch_id": fetch_id, "seq": seq, "response_id": store_response(conn, response)})
    if not record.observations:
        return FetchWriteResult(fetch_id, 0)
    rows = [{"source": record.source, "base": o.base, "quote": o.quote, "kind": str(o.kind),
             "observed_at": o.observed_at, "price": o.price, "fetch_id": fetch_id}
            for o in record.observations]
    statement = _insert_new_points(conn)
    # One row at a time, so that rowcount says which were new (a few hundred at most).
    new = sum(max(conn.execute(statement, row).rowcount, 0) for row in rows)
    return FetchWriteResult(fetch_id, new)


def _insert_new_points(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(price_observations).on_conflict_do_nothing(
            index_elements=_POINT)
    return sqlite.insert(price_observations).on_conflict_do_nothing(index_elements=_POINT)
