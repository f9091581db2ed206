"""The auth battery's tables (trellis.contrib.auth.models).

Revision ID: trellis_auth_0001
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

revision = "trellis_auth_0001"
down_revision = None
branch_labels = ("trellis_auth",)
depends_on = None

_MYSQL = ("mysql", "mariadb")


def _timestamp() -> sa.types.TypeEngine[datetime]:
    # As trellis.contrib.db.UTCDateTime: timestamptz, DATETIME(6) on MariaDB.
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), *_MYSQL)


def _exact(length: int) -> sa.types.TypeEngine[str]:
    # Compared byte for byte: MariaDB's default collations ignore case.
    return sa.String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), *_MYSQL)


def _fk(column: str, table: str, name: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{table}.id"], name=name, ondelete="CASCADE")


def upgrade() -> None:
    """Create users, groups, permissions, their links, tokens and OAuth accounts."""
    op.create_table(
        "auth_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("username", sa.String(150), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("is_superuser", sa.Boolean(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("last_login", _timestamp(), nullable=True),
        sa.Column("password_changed_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_auth_user"),
        sa.UniqueConstraint("email", name="uq_auth_user_email"),
        sa.UniqueConstraint("username", name="uq_auth_user_username"),
    )
    op.create_table(
        "auth_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(150), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_auth_group"),
        sa.UniqueConstraint("name", name="uq_auth_group_name"),
    )
    op.create_table(
        "auth_permission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("codename", sa.String(150), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_auth_permission"),
        sa.UniqueConstraint("codename", name="uq_auth_permission_codename"),
    )
    op.create_table(
        "auth_user_group",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        _fk("user_id", "auth_user", "fk_auth_user_group_user_id_auth_user"),
        _fk("group_id", "auth_group", "fk_auth_user_group_group_id_auth_group"),
        sa.PrimaryKeyConstraint("user_id", "group_id", name="pk_auth_user_group"),
    )
    op.create_index("ix_auth_user_group_group_id", "auth_user_group", ["group_id"])
    op.create_table(
        "auth_group_permission",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("permission_id", sa.Integer(), nullable=False),
        _fk("group_id", "auth_group", "fk_auth_group_permission_group_id_auth_group"),
        _fk(
            "permission_id",
            "auth_permission",
            "fk_auth_group_permission_permission_id_auth_permission",
        ),
        sa.PrimaryKeyConstraint("group_id", "permission_id", name="pk_auth_group_permission"),
    )
    op.create_index(
        "ix_auth_group_permission_permission_id", "auth_group_permission", ["permission_id"]
    )
    op.create_table(
        "auth_user_permission",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("permission_id", sa.Integer(), nullable=False),
        _fk("user_id", "auth_user", "fk_auth_user_permission_user_id_auth_user"),
        _fk(
            "permission_id",
            "auth_permission",
            "fk_auth_user_permission_permission_id_auth_permission",
        ),
        sa.PrimaryKeyConstraint("user_id", "permission_id", name="pk_auth_user_permission"),
    )
    op.create_index(
        "ix_auth_user_permission_permission_id", "auth_user_permission", ["permission_id"]
    )
    op.create_table(
        "auth_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", _exact(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("expires_at", _timestamp(), nullable=True),
        sa.Column("last_used_at", _timestamp(), nullable=True),
        sa.Column("revoked_at", _timestamp(), nullable=True),
        _fk("user_id", "auth_user", "fk_auth_token_user_id_auth_user"),
        sa.PrimaryKeyConstraint("id", name="pk_auth_token"),
        sa.UniqueConstraint("token_hash", name="uq_auth_token_token_hash"),
    )
    op.create_index("ix_auth_token_user_id", "auth_token", ["user_id"])
    op.create_table(
        "auth_oauth_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(50), nullable=False),
        sa.Column("subject", _exact(255), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        _fk("user_id", "auth_user", "fk_auth_oauth_account_user_id_auth_user"),
        sa.PrimaryKeyConstraint("id", name="pk_auth_oauth_account"),
        sa.UniqueConstraint("provider", "subject", name="uq_auth_oauth_account_provider_subject"),
    )
    op.create_index("ix_auth_oauth_account_user_id", "auth_oauth_account", ["user_id"])


def downgrade() -> None:
    """Drop the tables, those that point at others first (their indexes go with them)."""
    for table in (
        "auth_oauth_account",
        "auth_token",
        "auth_user_permission",
        "auth_group_permission",
        "auth_user_group",
        "auth_permission",
        "auth_group",
        "auth_user",
    ):
        op.drop_table(table)
