"""Initial schema: accounts, poll log, raw bodies, holding intervals and the SQL views.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from aggregator.storage.types import ExactDecimal, UtcTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _iso(column: str, dialect: str) -> str:
    """A time column as the views show it: timestamptz, or ISO 8601 text on SQLite."""
    if dialect != "sqlite":
        return column
    return (f"CASE WHEN {column} IS NULL THEN NULL ELSE "
            f"strftime('%Y-%m-%dT%H:%M:%S', {column} / 1000, 'unixepoch') "
            f"|| printf('.%03dZ', {column} % 1000) END")


def _views(dialect: str) -> dict[str, str]:
    return {
        "holdings_latest": f"""
            SELECT a.name AS account, a.source, s.asset, h.kind, h.total, h.available,
                   h.locked, {_iso("a.last_ok_at", dialect)} AS observed_at,
                   {_iso("h.valid_from", dialect)} AS valid_from, h.details
            FROM holdings h
            JOIN holding_series s ON s.id = h.series_id
            JOIN accounts a ON a.id = s.account_id
            WHERE h.valid_to IS NULL""",
        "holdings_history": f"""
            SELECT a.name AS account, a.source, s.asset, h.kind, h.total, h.available,
                   h.locked, {_iso("h.valid_from", dialect)} AS valid_from,
                   {_iso("h.valid_to", dialect)} AS valid_to, h.details, h.poll_id
            FROM holdings h
            JOIN holding_series s ON s.id = h.series_id
            JOIN accounts a ON a.id = s.account_id""",
        "poll_log": f"""
            SELECT a.name AS account, a.source, {_iso("p.started_at", dialect)} AS started_at,
                   {_iso("p.finished_at", dialect)} AS finished_at, p.status, p.error_kind,
                   p.error_message, p.attempt, p.id AS poll_id
            FROM polls p
            JOIN accounts a ON a.id = p.account_id""",
    }


def upgrade() -> None:
    details = sa.JSON().with_variant(JSONB(), "postgresql")
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("last_ok_at", UtcTime),
    )
    op.create_table(
        "polls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("started_at", UtcTime, nullable=False),
        sa.Column("finished_at", UtcTime, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("error_kind", sa.String(40)),
        sa.Column("error_message", sa.Text),
        sa.Column("attempt", sa.SmallInteger, nullable=False, server_default=sa.text("1")),
    )
    op.create_index("polls_account_status_finished", "polls",
                    ["account_id", "status", "finished_at"])
    op.create_index("polls_finished", "polls", ["finished_at"])
    op.create_table(
        "raw_responses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("http_status", sa.SmallInteger, nullable=False),
        sa.Column("content_type", sa.Text),
        sa.Column("encoding", sa.String(8), nullable=False, server_default=sa.text("'plain'")),
        sa.Column("base_id", sa.Integer, sa.ForeignKey("raw_responses.id")),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "poll_responses",
        sa.Column("poll_id", sa.Integer, sa.ForeignKey("polls.id"), primary_key=True),
        sa.Column("seq", sa.SmallInteger, primary_key=True),
        sa.Column("response_id", sa.Integer, sa.ForeignKey("raw_responses.id"),
                  nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "holding_series",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("asset", sa.String(64), nullable=False),
    )
    op.create_index("holding_series_account_asset", "holding_series", ["account_id", "asset"],
                    unique=True)
    op.create_table(
        "holdings",
        sa.Column("series_id", sa.Integer, sa.ForeignKey("holding_series.id"),
                  primary_key=True),
        sa.Column("valid_from", UtcTime, primary_key=True),
        sa.Column("valid_to", UtcTime),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("total", ExactDecimal, nullable=False),
        sa.Column("available", ExactDecimal),
        sa.Column("locked", ExactDecimal),
        sa.Column("details", details, nullable=False),
        sa.Column("poll_id", sa.Integer, sa.ForeignKey("polls.id"), nullable=False),
        # Intervals of one series stay together on disk, in time order.
        sqlite_with_rowid=False,
    )
    op.create_index("holdings_open", "holdings", ["series_id"],
                    postgresql_where=sa.text("valid_to IS NULL"),
                    sqlite_where=sa.text("valid_to IS NULL"))
    dialect = op.get_bind().dialect.name
    for name, query in _views(dialect).items():
        op.execute(f"CREATE VIEW {name} AS {query}")


def downgrade() -> None:
    for name in ("poll_log", "holdings_history", "holdings_latest"):
        op.execute(f"DROP VIEW {name}")
    for table in ("holdings", "holding_series", "poll_responses", "raw_responses", "polls",
                  "accounts"):
        op.drop_table(table)
