"""The notes, and the editor group that may pin and delete them.

Revision ID: showcase_0001
Revises:
Create Date: 2026-11-21 05:00:00

Written by `trellis db makemigrations -m notes`, then edited: `depends_on` makes Alembic
create the auth battery's tables first (a note points at auth_user), and the data part adds
the "editor" group with the admin's permissions to change and delete notes, so that
`trellis user grant ann editor --group` works on a fresh database.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import trellis.contrib.db.types

# Revision identifiers, used by Alembic.
revision: str = "showcase_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("app",)
depends_on: str | Sequence[str] | None = "trellis_auth"

EDITOR_GROUP = "editor"
EDITOR_PERMISSIONS = {
    "showcase_note.change": "Change notes",
    "showcase_note.delete": "Delete notes",
}

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
user_group = sa.table("auth_user_group", sa.column("group_id", sa.Integer()))


def upgrade() -> None:
    """Create the note table and the editor group."""
    op.create_table(
        "showcase_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("created_at", trellis.contrib.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", trellis.contrib.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["auth_user.id"],
            name=op.f("fk_showcase_note_author_id_auth_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_showcase_note")),
    )
    op.create_index(
        op.f("ix_showcase_note_author_id"), "showcase_note", ["author_id"], unique=False
    )
    op.create_index("ix_showcase_note_pinned_id", "showcase_note", ["pinned", "id"], unique=False)

    bind = op.get_bind()
    bind.execute(group.insert().values(name=EDITOR_GROUP))
    group_id = bind.execute(sa.select(group.c.id).where(group.c.name == EDITOR_GROUP)).scalar_one()
    for codename, description in EDITOR_PERMISSIONS.items():
        find = sa.select(permission.c.id).where(permission.c.codename == codename)
        permission_id = bind.execute(find).scalar()
        if permission_id is None:
            bind.execute(permission.insert().values(codename=codename, description=description))
            permission_id = bind.execute(find).scalar_one()
        bind.execute(
            group_permission.insert().values(group_id=group_id, permission_id=permission_id)
        )


def downgrade() -> None:
    """Drop the note table and the editor group (the permissions stay: users may hold them)."""
    bind = op.get_bind()
    group_id = bind.execute(sa.select(group.c.id).where(group.c.name == EDITOR_GROUP)).scalar()
    if group_id is not None:
        # Foreign keys are off while SQLite migrates: delete the links, not only the group.
        bind.execute(user_group.delete().where(user_group.c.group_id == group_id))
        bind.execute(group_permission.delete().where(group_permission.c.group_id == group_id))
        bind.execute(group.delete().where(group.c.id == group_id))
    op.drop_index("ix_showcase_note_pinned_id", table_name="showcase_note")
    op.drop_index(op.f("ix_showcase_note_author_id"), table_name="showcase_note")
    op.drop_table("showcase_note")
