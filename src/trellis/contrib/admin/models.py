"""The admin's action log: who changed what, and when (table ``trellis_admin_log``).

Every change made through the admin (pages or JSON API) writes one ``AdminLogEntry`` in the
same transaction as the change itself: a change that fails (a constraint, a crash) leaves no
entry, and an entry never describes a change that did not happen.

Only field *names* are recorded, never their values: a log must not become a second copy of
passwords, tokens or personal data.

The table belongs to the ``trellis_admin`` migration branch (``trellis db upgrade`` creates it
once ``Admin`` is installed; it runs after the ``trellis_auth`` branch, whose users it points
at).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from trellis.contrib.db.models import IdMixin, Model
from trellis.contrib.db.types import utcnow

__all__ = ["ACTIONS", "MIGRATION_BRANCH", "AdminLogEntry"]

#: The label of the admin's migration branch (``Table.info["migration_branch"]``).
MIGRATION_BRANCH = "trellis_admin"
#: What an entry records: a row added, changed or deleted, or a custom bulk action run on it.
ACTIONS = ("add", "change", "delete", "action")

_REPR_MAX = 200


class AdminLogEntry(IdMixin, Model):
    """One change made through the admin.

    Attributes:
        created_at: When (UTC).
        user_id: Who: the ``auth_user`` id (``None`` once that user is deleted).
        user_repr: Who, as shown then (user name or e-mail address): kept when the user goes.
        model: The table of the object (``"book"``).
        object_pk: The object's primary key, as text.
        object_repr: How the object was shown (at most 200 characters).
        action: ``"add"``, ``"change"``, ``"delete"`` or ``"action"`` (a custom bulk action).
        action_name: The name of the bulk action (``"delete_selected"``, ``"publish"``), or
            ``None`` for a single add, change or delete.
        changed_fields: The names of the fields an add or a change set (never their values).
    """

    __tablename__ = "trellis_admin_log"
    __table_args__ = {"info": {"migration_branch": MIGRATION_BRANCH}}

    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("auth_user.id", ondelete="SET NULL"), index=True, default=None
    )
    user_repr: Mapped[str] = mapped_column(String(320), default="")
    model: Mapped[str] = mapped_column(String(150), index=True)
    object_pk: Mapped[str] = mapped_column(String(255))
    object_repr: Mapped[str] = mapped_column(String(255), default="")
    action: Mapped[str] = mapped_column(String(16))
    action_name: Mapped[str | None] = mapped_column(String(100), default=None)
    changed_fields: Mapped[list[str]] = mapped_column(JSON, default=list)

    def __init__(self, **fields: Any) -> None:
        repr_ = fields.get("object_repr")
        if isinstance(repr_, str) and len(repr_) > _REPR_MAX:
            fields["object_repr"] = repr_[: _REPR_MAX - 1] + "…"
        fields.setdefault("changed_fields", [])
        super().__init__(**fields)

    @property
    def is_addition(self) -> bool:
        """Whether the entry records a new object."""
        return self.action == "add"

    @property
    def is_change(self) -> bool:
        """Whether the entry records a change of an object."""
        return self.action == "change"

    @property
    def is_deletion(self) -> bool:
        """Whether the entry records a deletion (single or bulk)."""
        return self.action == "delete"

    def __str__(self) -> str:
        what = self.action_name or self.action
        return f"{self.user_repr or 'someone'} {what} {self.model} {self.object_pk}"
