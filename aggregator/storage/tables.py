"""The tables. Migrations create them; ``tests/storage`` checks the two never drift apart."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from aggregator.storage.types import ExactDecimal, UtcTime

metadata = MetaData()

DetailsJson = JSON().with_variant(JSONB(), "postgresql")

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("source", String(40), nullable=False),
    # When its last successful poll finished: what confirms its open intervals
    # ("observed_at"), kept here so the latest holdings never scan the poll log.
    Column("last_ok_at", UtcTime),
)

polls = Table(
    "polls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("started_at", UtcTime, nullable=False),
    Column("finished_at", UtcTime, nullable=False),
    Column("status", String(10), nullable=False),  # ok | failed
    Column("error_kind", String(40)),
    Column("error_message", Text),
    Column("attempt", SmallInteger, nullable=False, server_default=text("1")),
    # The last ok poll of an account confirms its open intervals ("observed_at").
    Index("polls_account_status_finished", "account_id", "status", "finished_at"),
    Index("polls_finished", "finished_at"),
    # A poll's identity: a replayed poll is found, never stored twice (migration 0003).
    Index("polls_identity", "account_id", "started_at", "attempt", unique=True),
)

# Answers are kept byte for byte, once per distinct (endpoint, status, type, body).
raw_responses = Table(
    "raw_responses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sha256", LargeBinary(32), nullable=False, unique=True),
    Column("endpoint", Text, nullable=False),
    Column("http_status", SmallInteger, nullable=False),
    Column("content_type", Text),
    # "plain", or "zdelta": zlib with the body of base_id (always plain) as dictionary;
    # see aggregator/storage/answers.py. Failed answers are always plain.
    Column("encoding", String(8), nullable=False, server_default=text("'plain'")),
    Column("base_id", Integer, ForeignKey("raw_responses.id")),
    Column("body", LargeBinary, nullable=False),
)

poll_responses = Table(
    "poll_responses",
    metadata,
    Column("poll_id", Integer, ForeignKey("polls.id"), primary_key=True),
    Column("seq", SmallInteger, primary_key=True),
    Column("response_id", Integer, ForeignKey("raw_responses.id"), nullable=False),
    sqlite_with_rowid=False,
)

# One row per (account, asset) ever held: the anchor of the as-of lookups.
holding_series = Table(
    "holding_series",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("asset", String(64), nullable=False),
    Index("holding_series_account_asset", "account_id", "asset", unique=True),
)

# Change intervals: a poll that changes nothing writes nothing here.
holdings = Table(
    "holdings",
    metadata,
    Column("series_id", Integer, ForeignKey("holding_series.id"), primary_key=True),
    Column("valid_from", UtcTime, primary_key=True),
    Column("valid_to", UtcTime),  # null while current
    Column("kind", String(16), nullable=False),
    Column("total", ExactDecimal, nullable=False),
    Column("available", ExactDecimal),
    Column("locked", ExactDecimal),
    Column("details", DetailsJson, nullable=False),
    Column("poll_id", Integer, ForeignKey("polls.id"), nullable=False),  # the poll that opened it
    Index("holdings_open", "series_id", postgresql_where=text("valid_to IS NULL"),
          sqlite_where=text("valid_to IS NULL")),
    sqlite_with_rowid=False,
)


# Prices (migration 0004): every fetch like a poll, its answers in raw_responses.
price_fetches = Table(
    "price_fetches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(100), nullable=False),  # the [[prices]] name
    Column("kind", String(8), nullable=False),  # live | daily
    Column("started_at", UtcTime, nullable=False),
    Column("finished_at", UtcTime, nullable=False),
    Column("status", String(10), nullable=False),
    Column("error_kind", String(40)),
    Column("error_message", Text),
    Column("attempt", SmallInteger, nullable=False, server_default=text("1")),
    Index("price_fetches_identity", "source", "kind", "started_at", "attempt", unique=True),
    Index("price_fetches_finished", "finished_at"),
)

price_fetch_responses = Table(
    "price_fetch_responses",
    metadata,
    Column("fetch_id", Integer, ForeignKey("price_fetches.id"), primary_key=True),
    Column("seq", SmallInteger, primary_key=True),
    Column("response_id", Integer, ForeignKey("raw_responses.id"), nullable=False),
    sqlite_with_rowid=False,
)

# Append-only: a point is stored once; a provider's correction is another row.
price_observations = Table(
    "price_observations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(100), nullable=False),
    Column("base", String(64), nullable=False),
    Column("quote", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("observed_at", UtcTime, nullable=False),
    Column("price", ExactDecimal, nullable=False),
    Column("fetch_id", Integer, ForeignKey("price_fetches.id"), nullable=False),
    Index("price_observations_point", "base", "quote", "source", "kind", "observed_at",
          "price", unique=True),
)

# End-of-day values, kept current by run, report and prices backfill.
valuations = Table(
    "valuations",
    metadata,
    Column("day", Date, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True),
    Column("asset", String(64), primary_key=True),
    Column("currency", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("amount", ExactDecimal, nullable=False),
    Column("price", ExactDecimal),
    Column("value", ExactDecimal),
    Column("price_source", String(201)),
    Column("price_observed_at", UtcTime),
    sqlite_with_rowid=False,
)

networth = Table(
    "networth",
    metadata,
    Column("day", Date, primary_key=True),
    Column("currency", String(64), primary_key=True),
    Column("value", ExactDecimal, nullable=False),
    Column("holdings", Integer, nullable=False),
    Column("unpriced", Integer, nullable=False),
    sqlite_with_rowid=False,
)
