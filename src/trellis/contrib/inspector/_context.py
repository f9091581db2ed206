"""The record of the request being handled, where the SQL and template hooks find it."""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trellis.contrib.inspector.records import RequestRecord

#: Set by the inspector's middleware around each request it records. Sync handlers run in a
#: copy of the context, and SQLAlchemy's async engines run the driver calls in a greenlet that
#: shares it, so the hooks see the record wherever the request's work happens.
current_record: contextvars.ContextVar[RequestRecord | None] = contextvars.ContextVar(
    "trellis.inspector.record", default=None
)
