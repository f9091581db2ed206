"""The admin's action log (trellis.contrib.admin.models.AdminLogEntry).

Revision ID: trellis_admin_0001
Revises:
Create Date: 2026-06-01

The column types are written out here, not imported, so that this revision keeps creating
the same table whatever later versions of Trellis change. It depends on the auth branch:
entries point at ``auth_user``.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "trellis_admin_0001"
down_revision = None
branch_labels = ("trellis_admin",)
depends_on = "trellis_auth"

_MYSQL = ("mysql", "mariadb")


def _timestamp() -> sa.types.TypeEngine[datetime]:
    # As trellis.contrib.db.UTCDateTime: timestamptz, DATETIME(6) on MariaDB.
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), *_MYSQL)


def upgrade() -> None:
    """Create ``trellis_admin_log``, indexed by time, user and model."""
    op.create_table(
        "trellis_admin_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("user_repr", sa.String(320), nullable=False),
        sa.Column("model", sa.String(150), nullable=False),
        sa.Column("object_pk", sa.String(255), nullable=False),
        sa.Column("object_repr", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("action_name", sa.String(100), nullable=True),
        sa.Column("changed_fields", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["auth_user.id"],
            name="fk_trellis_admin_log_user_id_auth_user",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_trellis_admin_log"),
    )
    op.create_index("ix_trellis_admin_log_created_at", "trellis_admin_log", ["created_at"])
    op.create_index("ix_trellis_admin_log_user_id", "trellis_admin_log", ["user_id"])
    op.create_index("ix_trellis_admin_log_model", "trellis_admin_log", ["model"])


def downgrade() -> None:
    """Drop the table (its indexes go with it)."""
    op.drop_table("trellis_admin_log")
