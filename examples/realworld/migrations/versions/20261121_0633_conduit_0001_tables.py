"""The Conduit tables: profiles, follows, articles, tags, favorites and comments.

Revision ID: conduit_0001
Revises:
Create Date: 2026-11-21 06:33:13

Written by `trellis db makemigrations -m conduit`, then edited: `depends_on` makes Alembic
create the auth battery's tables first (every table here points at auth_user).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import trellis.contrib.db.types

# Revision identifiers, used by Alembic.
revision: str = "conduit_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("app",)
depends_on: str | Sequence[str] | None = "trellis_auth"


def upgrade() -> None:
    """Upgrade the schema."""
    op.create_table(
        "conduit_tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conduit_tag")),
        sa.UniqueConstraint("name", name=op.f("uq_conduit_tag_name")),
    )
    op.create_table(
        "conduit_article",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("created_at", trellis.contrib.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", trellis.contrib.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["auth_user.id"],
            name=op.f("fk_conduit_article_author_id_auth_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conduit_article")),
        sa.UniqueConstraint("slug", name=op.f("uq_conduit_article_slug")),
    )
    with op.batch_alter_table("conduit_article", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conduit_article_author_id"), ["author_id"], unique=False
        )

    op.create_table(
        "conduit_follow",
        sa.Column("follower_id", sa.Integer(), nullable=False),
        sa.Column("followed_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["followed_id"],
            ["auth_user.id"],
            name=op.f("fk_conduit_follow_followed_id_auth_user"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["follower_id"],
            ["auth_user.id"],
            name=op.f("fk_conduit_follow_follower_id_auth_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("follower_id", "followed_id", name=op.f("pk_conduit_follow")),
    )
    with op.batch_alter_table("conduit_follow", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conduit_follow_followed_id"), ["followed_id"], unique=False
        )

    op.create_table(
        "conduit_profile",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("bio", sa.Text(), nullable=True),
        sa.Column("image", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["auth_user.id"],
            name=op.f("fk_conduit_profile_user_id_auth_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_conduit_profile")),
    )
    op.create_table(
        "conduit_article_tag",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["conduit_article.id"],
            name=op.f("fk_conduit_article_tag_article_id_conduit_article"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"],
            ["conduit_tag.id"],
            name=op.f("fk_conduit_article_tag_tag_id_conduit_tag"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("article_id", "tag_id", name=op.f("pk_conduit_article_tag")),
    )
    with op.batch_alter_table("conduit_article_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conduit_article_tag_tag_id"), ["tag_id"], unique=False)

    op.create_table(
        "conduit_comment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("created_at", trellis.contrib.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", trellis.contrib.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["conduit_article.id"],
            name=op.f("fk_conduit_comment_article_id_conduit_article"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["auth_user.id"],
            name=op.f("fk_conduit_comment_author_id_auth_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conduit_comment")),
    )
    with op.batch_alter_table("conduit_comment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conduit_comment_article_id"), ["article_id"], unique=False
        )

    op.create_table(
        "conduit_favorite",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["conduit_article.id"],
            name=op.f("fk_conduit_favorite_article_id_conduit_article"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["auth_user.id"],
            name=op.f("fk_conduit_favorite_user_id_auth_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "article_id", name=op.f("pk_conduit_favorite")),
    )
    with op.batch_alter_table("conduit_favorite", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conduit_favorite_article_id"), ["article_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade the schema."""
    op.drop_table("conduit_favorite")
    op.drop_table("conduit_comment")
    op.drop_table("conduit_article_tag")
    op.drop_table("conduit_profile")
    op.drop_table("conduit_follow")
    op.drop_table("conduit_article")
    op.drop_table("conduit_tag")
