"""Prices and values: fetches, observations, daily valuations and net worth, their views.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.storage.types import ExactDecimal, UtcTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _iso(column: str, dialect: str) -> str:
    if dialect != "sqlite":
        return column
    return (f"CASE WHEN {column} IS NULL THEN NULL ELSE "
            f"strftime('%Y-%m-%dT%H:%M:%S', {column} / 1000, 'unixepoch') "
            f"|| printf('.%03dZ', {column} % 1000) END")


def _views(dialect: str) -> dict[str, str]:
    return {
        "prices": f"""
            SELECT o.base, o.quote, o.source, o.kind,
                   {_iso("o.observed_at", dialect)} AS observed_at, o.price, o.fetch_id
            FROM price_observations o""",
        "price_log": f"""
            SELECT f.source, {_iso("f.started_at", dialect)} AS started_at,
                   {_iso("f.finished_at", dialect)} AS finished_at, f.status, f.error_kind,
                   f.error_message, f.kind, f.attempt, f.id AS fetch_id
            FROM price_fetches f""",
        "valuations_daily": f"""
            SELECT v.day, a.name AS account, a.source, v.asset, v.kind, v.amount,
                   v.currency, v.price, v.value, v.price_source,
                   {_iso("v.price_observed_at", dialect)} AS price_observed_at
            FROM valuations v
            JOIN accounts a ON a.id = v.account_id""",
        "networth_daily": """
            SELECT n.day, n.currency, n.value, n.holdings, n.unpriced FROM networth n""",
    }


def upgrade() -> None:
    op.create_table(
        "price_fetches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(100), nullable=False),  # the [[prices]] name
        sa.Column("kind", sa.String(8), nullable=False),  # live | daily
        sa.Column("started_at", UtcTime, nullable=False),
        sa.Column("finished_at", UtcTime, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("error_kind", sa.String(40)),
        sa.Column("error_message", sa.Text),
        sa.Column("attempt", sa.SmallInteger, nullable=False, server_default=sa.text("1")),
    )
    op.create_index("price_fetches_identity", "price_fetches",
                    ["source", "kind", "started_at", "attempt"], unique=True)
    op.create_index("price_fetches_finished", "price_fetches", ["finished_at"])
    op.create_table(
        "price_fetch_responses",
        sa.Column("fetch_id", sa.Integer, sa.ForeignKey("price_fetches.id"), primary_key=True),
        sa.Column("seq", sa.SmallInteger, primary_key=True),
        sa.Column("response_id", sa.Integer, sa.ForeignKey("raw_responses.id"),
                  nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "price_observations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("base", sa.String(64), nullable=False),
        sa.Column("quote", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("observed_at", UtcTime, nullable=False),
        sa.Column("price", ExactDecimal, nullable=False),
        sa.Column("fetch_id", sa.Integer, sa.ForeignKey("price_fetches.id"), nullable=False),
    )
    # Stored once; a provider's correction of the same point is a second row (the newer
    # one is used), and nothing is ever deleted.
    op.create_index("price_observations_point", "price_observations",
                    ["base", "quote", "source", "kind", "observed_at", "price"], unique=True)
    op.create_table(
        "valuations",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("asset", sa.String(64), primary_key=True),
        sa.Column("currency", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", ExactDecimal, nullable=False),
        sa.Column("price", ExactDecimal),
        sa.Column("value", ExactDecimal),
        sa.Column("price_source", sa.String(201)),
        sa.Column("price_observed_at", UtcTime),
        sqlite_with_rowid=False,
    )
    # The sums, computed exactly by the program (SQLite's sum() goes through floats).
    op.create_table(
        "networth",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("currency", sa.String(64), primary_key=True),
        sa.Column("value", ExactDecimal, nullable=False),
        sa.Column("holdings", sa.Integer, nullable=False),
        sa.Column("unpriced", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )
    dialect = op.get_bind().dialect.name
    for name, query in _views(dialect).items():
        op.execute(f"CREATE VIEW {name} AS {query}")


def downgrade() -> None:
    for name in ("networth_daily", "valuations_daily", "price_log", "prices"):
        op.execute(f"DROP VIEW {name}")
    for table in ("networth", "valuations", "price_observations", "price_fetch_responses",
                  "price_fetches"):
        op.drop_table(table)
