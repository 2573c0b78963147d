"""Column types that keep amounts exact and times in UTC on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Numeric, Text
from sqlalchemy.types import TypeDecorator, TypeEngine

from aggregator.amounts import canonical

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """A Decimal stored exactly: canonical TEXT on SQLite, unconstrained NUMERIC elsewhere.

    SQLite has no exact decimal type: NUMERIC affinity turns long decimals into REAL, and
    SQLAlchemy's Numeric reads them back through float without a warning.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"amounts must be Decimal, got {type(value).__name__}")
        return canonical(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("an amount came back from the database as a float")
        return Decimal(value)


class UtcTime(TypeDecorator[datetime]):
    """An aware UTC datetime: integer epoch milliseconds on SQLite, timestamptz elsewhere.

    Integers are less than half the size of SQLAlchemy's text datetimes on SQLite; the
    views present them as ISO 8601 text.
    """

    impl = BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: every stored time must be aware")
        if dialect.name == "sqlite":
            return to_millis(value)
        # Milliseconds on every database, so a time shown can be given back to --at.
        return value.astimezone(UTC).replace(microsecond=value.microsecond // 1000 * 1000)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, int):
            return from_millis(value)
        assert isinstance(value, datetime)
        return value.astimezone(UTC)


def to_millis(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_millis(millis: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=millis)
