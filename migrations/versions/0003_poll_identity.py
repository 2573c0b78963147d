"""A poll is stored at most once: unique (account, started_at, attempt).

The spool replays polls that were made while the database was away; a replay after a
crash, or of a write that timed out on the client but committed on the server, must find
the poll already there instead of storing it twice.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("polls_identity", "polls", ["account_id", "started_at", "attempt"],
                    unique=True)


def downgrade() -> None:
    op.drop_index("polls_identity", table_name="polls")
