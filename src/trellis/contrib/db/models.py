"""The declarative base for models, with stable constraint names, and the common mixins.

```py
class Article(IdMixin, TimestampMixin, Model):
    title: Mapped[str]                       # VARCHAR(255) on every database
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    author: Mapped[User] = relationship(back_populates="articles")
```

The table name defaults to the class name in snake_case (``BlogPost`` -> ``blog_post``);
``__tablename__`` overrides it. ``__bind_key__ = "analytics"`` keeps a model's table in the
named database of ``Database(binds=...)``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import MetaData, String
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from trellis.contrib.db.types import UTCDateTime, utcnow

__all__ = ["NAMING_CONVENTION", "IdMixin", "Model", "TimestampMixin", "table_name_for"]

#: Constraint names every database gets the same, so that migrations compare and drop them
#: by name (``uq_user_email``, ``fk_article_author_id_user``).
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def table_name_for(class_name: str) -> str:
    """The default table name of a model class: ``BlogPost`` -> ``blog_post``."""
    return _CAMEL.sub("_", class_name).lower()


def _has_mapped_base(cls: type) -> bool:
    return any("__mapper__" in vars(base) or "__table__" in vars(base) for base in cls.__mro__[1:])


class Model(AsyncAttrs, DeclarativeBase):
    """The base class of Trellis models (SQLAlchemy 2 declarative, typed with ``Mapped``).

    ``Mapped[str]`` is a ``VARCHAR(255)`` (MariaDB needs a length; use ``Text`` for long
    text) and ``Mapped[datetime]`` a UTC, timezone-aware timestamp on every database.
    ``await obj.awaitable_attrs.relation`` loads a lazy relationship in async code.
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        str: String(255),
        datetime: UTCDateTime(),
    }
    #: The name of the database (a key of ``Database(binds=...)``) that holds the table.
    __bind_key__: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if (
            "__tablename__" not in vars(cls)
            and "__table__" not in vars(cls)
            and not vars(cls).get("__abstract__", False)
            and not _has_mapped_base(cls)
        ):
            cls.__tablename__ = table_name_for(cls.__name__)
        super().__init_subclass__(**kwargs)
        table = vars(cls).get("__table__")
        if table is not None and cls.__bind_key__ is not None:
            table.info.setdefault("bind_key", cls.__bind_key__)

    def __repr__(self) -> str:
        mapper = self.__mapper__
        keys = ", ".join(
            f"{column.key}={getattr(self, str(column.key), None)!r}"
            for column in mapper.primary_key
        )
        return f"<{type(self).__name__} {keys}>"


class IdMixin:
    """An integer primary key named ``id`` (auto-incremented by the database)."""

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-100)


class TimestampMixin:
    """``created_at`` and ``updated_at``: UTC timestamps the model keeps up to date."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow, sort_order=100)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, sort_order=101)
