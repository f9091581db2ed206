"""The catalogue: authors, books and their tags.

Revision ID: admin_demo_0001
Revises:
Create Date: 2026-06-01 12:00:00

Written by `trellis db makemigrations -m catalogue`. The batteries' tables (auth, the
admin's action log, error tickets) come with their own branches, applied by the same
`trellis db upgrade`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import trellis.contrib.db.types

# Revision identifiers, used by Alembic.
revision: str = "admin_demo_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("app",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    op.create_table(
        "demo_author",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("born", sa.Date(), nullable=True),
        sa.Column("biography", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_demo_author")),
        sa.UniqueConstraint("name", name=op.f("uq_demo_author_name")),
    )
    op.create_table(
        "demo_tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_demo_tag")),
        sa.UniqueConstraint("name", name=op.f("uq_demo_tag_name")),
    )
    op.create_table(
        "demo_book",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("isbn", sa.String(length=20), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column(
            "genre",
            sa.Enum(
                "novel",
                "science_fiction",
                "fantasy",
                "essay",
                name="genre",
                native_enum=False,
                length=30,
            ),
            nullable=False,
        ),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("price", sa.Numeric(precision=8, scale=2), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("created_at", trellis.contrib.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", trellis.contrib.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["demo_author.id"], name=op.f("fk_demo_book_author_id_demo_author")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_demo_book")),
        sa.UniqueConstraint("isbn", name=op.f("uq_demo_book_isbn")),
    )
    with op.batch_alter_table("demo_book", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_demo_book_author_id"), ["author_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_demo_book_published"), ["published"], unique=False)

    op.create_table(
        "demo_book_tag",
        sa.Column("book_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["book_id"],
            ["demo_book.id"],
            name=op.f("fk_demo_book_tag_book_id_demo_book"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"],
            ["demo_tag.id"],
            name=op.f("fk_demo_book_tag_tag_id_demo_tag"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("book_id", "tag_id", name=op.f("pk_demo_book_tag")),
    )


def downgrade() -> None:
    """Downgrade the schema."""
    op.drop_table("demo_book_tag")
    op.drop_table("demo_book")
    op.drop_table("demo_tag")
    op.drop_table("demo_author")
