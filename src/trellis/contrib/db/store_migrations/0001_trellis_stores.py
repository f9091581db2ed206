"""The tables of DatabaseCache and DatabaseSessionStore (trellis.contrib.db.stores).

Revision ID: trellis_stores_0001
Revises:
Create Date: 2026-05-01

The column types are written out here, not imported, so that this revision keeps creating
the same tables whatever later versions of Trellis change.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "trellis_stores_0001"
down_revision = None
branch_labels = ("trellis_stores",)
depends_on = None

_MYSQL = ("mysql", "mariadb")


def _key() -> sa.types.TypeEngine[str]:
    # Compared byte for byte: MariaDB's text collations ignore case and trailing spaces.
    return sa.String(255).with_variant(mysql.VARBINARY(1020), *_MYSQL)


def _json_text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.LONGTEXT(), *_MYSQL)


def _timestamp() -> sa.types.TypeEngine[datetime]:
    # As trellis.contrib.db.UTCDateTime: timestamptz, DATETIME(6) on MariaDB.
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), *_MYSQL)


def upgrade() -> None:
    """Create ``trellis_cache`` and ``trellis_session``, each indexed on its expiry."""
    op.create_table(
        "trellis_cache",
        sa.Column("cache_key", _key(), nullable=False),
        sa.Column("value", _json_text(), nullable=True),
        sa.Column("int_value", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("cache_key", name="pk_trellis_cache"),
    )
    op.create_index("ix_trellis_cache_expires_at", "trellis_cache", ["expires_at"])
    op.create_table(
        "trellis_session",
        sa.Column("session_id", _key(), nullable=False),
        sa.Column("data", _json_text(), nullable=False),
        sa.Column("expires_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name="pk_trellis_session"),
    )
    op.create_index("ix_trellis_session_expires_at", "trellis_session", ["expires_at"])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_index("ix_trellis_session_expires_at", table_name="trellis_session")
    op.drop_table("trellis_session")
    op.drop_index("ix_trellis_cache_expires_at", table_name="trellis_cache")
    op.drop_table("trellis_cache")
