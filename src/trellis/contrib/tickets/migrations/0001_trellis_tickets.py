"""The table of DatabaseTicketStore (trellis.contrib.tickets).

Revision ID: trellis_tickets_0001
Revises:
Create Date: 2026-05-01

The column types are written out here, not imported, so that this revision keeps creating
the same table whatever later versions of Trellis change.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "trellis_tickets_0001"
down_revision = None
branch_labels = ("trellis_tickets",)
depends_on = None

_MYSQL = ("mysql", "mariadb")


def _timestamp() -> sa.types.TypeEngine[datetime]:
    # As trellis.contrib.db.UTCDateTime: timestamptz, DATETIME(6) on MariaDB.
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), *_MYSQL)


def upgrade() -> None:
    """Create ``trellis_ticket``, indexed on its creation time."""
    op.create_table(
        "trellis_ticket",
        sa.Column("ticket_id", sa.String(64), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("exception_type", sa.String(255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("data", sa.Text().with_variant(mysql.LONGTEXT(), *_MYSQL), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name="pk_trellis_ticket"),
    )
    op.create_index("ix_trellis_ticket_created_at", "trellis_ticket", ["created_at"])


def downgrade() -> None:
    """Drop the table."""
    op.drop_index("ix_trellis_ticket_created_at", table_name="trellis_ticket")
    op.drop_table("trellis_ticket")
