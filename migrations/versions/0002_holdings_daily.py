"""The holdings_daily view: end-of-day holdings per account, asset and UTC day.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# A holding counts for a day when it was in force at the day's last instant, i.e. it
# began before the next midnight and did not end before it.
SQLITE = """
CREATE VIEW holdings_daily AS
WITH RECURSIVE days(day) AS (
    SELECT date(min(valid_from) / 1000, 'unixepoch') FROM holdings
    UNION ALL
    SELECT date(day, '+1 day') FROM days WHERE day < date('now')
)
SELECT d.day AS day, a.name AS account, a.source, s.asset, h.kind, h.total, h.available,
       h.locked
FROM days d
JOIN holdings h
  ON h.valid_from < CAST(strftime('%s', d.day, '+1 day') AS INTEGER) * 1000
 AND (h.valid_to IS NULL
      OR h.valid_to >= CAST(strftime('%s', d.day, '+1 day') AS INTEGER) * 1000)
JOIN holding_series s ON s.id = h.series_id
JOIN accounts a ON a.id = s.account_id
"""

POSTGRESQL = """
CREATE VIEW holdings_daily AS
SELECT d.day::date AS day, a.name AS account, a.source, s.asset, h.kind, h.total,
       h.available, h.locked
FROM generate_series(
        (SELECT date_trunc('day', min(valid_from) AT TIME ZONE 'UTC') FROM holdings),
        date_trunc('day', now() AT TIME ZONE 'UTC'),
        interval '1 day') AS d(day)
JOIN holdings h
  ON h.valid_from < (d.day + interval '1 day') AT TIME ZONE 'UTC'
 AND (h.valid_to IS NULL OR h.valid_to >= (d.day + interval '1 day') AT TIME ZONE 'UTC')
JOIN holding_series s ON s.id = h.series_id
JOIN accounts a ON a.id = s.account_id
"""


def upgrade() -> None:
    op.execute(SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRESQL)


def downgrade() -> None:
    op.execute("DROP VIEW holdings_daily")
