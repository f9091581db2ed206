"""Articles, and the editor group that may publish them.

Revision ID: newsroom_0001
Revises:
Create Date: 2026-05-01 12:00:00

Written by `trellis db makemigrations -m articles`, then edited: `depends_on` makes Alembic
create the auth battery's tables first (the articles point at auth_user), and the data part
adds the "editor" group with the "articles.publish" permission, so that
`trellis user grant ann editor --group` works on a fresh database.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import trellis.contrib.db.types

# Revision identifiers, used by Alembic.
revision: str = "newsroom_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("app",)
depends_on: str | Sequence[str] | None = "trellis_auth"

EDITOR_GROUP = "editor"
PUBLISH = "articles.publish"

permission = sa.table(
    "auth_permission",
    sa.column("id", sa.Integer()),
    sa.column("codename", sa.String()),
    sa.column("description", sa.String()),
)
group = sa.table("auth_group", sa.column("id", sa.Integer()), sa.column("name", sa.String()))
group_permission = sa.table(
    "auth_group_permission",
    sa.column("group_id", sa.Integer()),
    sa.column("permission_id", sa.Integer()),
)


def upgrade() -> None:
    """Create the article table and the editor group."""
    op.create_table(
        "newsroom_article",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("published_at", trellis.contrib.db.types.UTCDateTime(), nullable=True),
        sa.Column("created_at", trellis.contrib.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", trellis.contrib.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["auth_user.id"],
            name=op.f("fk_newsroom_article_author_id_auth_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_newsroom_article")),
    )
    op.create_index(
        op.f("ix_newsroom_article_author_id"), "newsroom_article", ["author_id"], unique=False
    )
    op.create_index(
        op.f("ix_newsroom_article_published"), "newsroom_article", ["published"], unique=False
    )

    bind = op.get_bind()
    permission_id = bind.execute(
        sa.select(permission.c.id).where(permission.c.codename == PUBLISH)
    ).scalar()
    if permission_id is None:
        bind.execute(permission.insert().values(codename=PUBLISH, description="Publish articles"))
        permission_id = bind.execute(
            sa.select(permission.c.id).where(permission.c.codename == PUBLISH)
        ).scalar_one()
    group_id = bind.execute(sa.select(group.c.id).where(group.c.name == EDITOR_GROUP)).scalar()
    if group_id is None:
        bind.execute(group.insert().values(name=EDITOR_GROUP))
        group_id = bind.execute(
            sa.select(group.c.id).where(group.c.name == EDITOR_GROUP)
        ).scalar_one()
    linked = bind.execute(
        sa.select(group_permission.c.group_id).where(
            group_permission.c.group_id == group_id,
            group_permission.c.permission_id == permission_id,
        )
    ).first()
    if linked is None:
        bind.execute(
            group_permission.insert().values(group_id=group_id, permission_id=permission_id)
        )


def downgrade() -> None:
    """Drop the article table and the editor group (the permission stays: users may hold it)."""
    bind = op.get_bind()
    group_id = bind.execute(sa.select(group.c.id).where(group.c.name == EDITOR_GROUP)).scalar()
    if group_id is not None:
        # Foreign keys are off while SQLite migrates: delete the links, not only the group.
        user_group = sa.table("auth_user_group", sa.column("group_id", sa.Integer()))
        bind.execute(user_group.delete().where(user_group.c.group_id == group_id))
        bind.execute(group_permission.delete().where(group_permission.c.group_id == group_id))
        bind.execute(group.delete().where(group.c.id == group_id))
    op.drop_index(op.f("ix_newsroom_article_published"), table_name="newsroom_article")
    op.drop_index(op.f("ix_newsroom_article_author_id"), table_name="newsroom_article")
    op.drop_table("newsroom_article")
