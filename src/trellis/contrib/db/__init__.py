"""The data battery: SQLAlchemy 2 models, per-request transactions, several databases.

```python
from sqlalchemy.orm import Mapped

from trellis import App
from trellis.contrib.db import Database, IdMixin, Model, Session
from trellis.testing import TestClient

app = App()
db = app.install(Database("sqlite:///app.db"))


class Note(IdMixin, Model):
    text: Mapped[str]


@app.post("/notes")
async def add(text: str, db: Session) -> dict[str, int]:
    note = Note(text=text)
    db.add(note)
    await db.flush()
    return {"id": note.id}  # committed when the handler returns


with TestClient(app) as client:
    client.call(db.create_all)  # a project runs `trellis db upgrade`
    assert client.post("/notes", params={"text": "hi"}).json() == {"id": 1}
```

Needs the ``db`` extra: ``pip install 'trellis[db]'``.
"""

from trellis.contrib.db.bulk import bulk_insert, bulk_update
from trellis.contrib.db.database import Database, DatabaseUnavailableError, database_of
from trellis.contrib.db.dependencies import Session, SyncSession
from trellis.contrib.db.filters import Filters, FilterSet
from trellis.contrib.db.models import NAMING_CONVENTION, IdMixin, Model, TimestampMixin
from trellis.contrib.db.pagination import (
    CursorPage,
    CursorParams,
    Page,
    PageParams,
    cursor_params,
    page_params,
    paginate,
    paginate_keyset,
)
from trellis.contrib.db.queries import first_or_404, get_or_404
from trellis.contrib.db.schemas import apply, model_schema
from trellis.contrib.db.types import UTCDateTime, utcnow

__all__ = [
    "NAMING_CONVENTION",
    "CursorPage",
    "CursorParams",
    "Database",
    "DatabaseUnavailableError",
    "FilterSet",
    "Filters",
    "IdMixin",
    "Model",
    "Page",
    "PageParams",
    "Session",
    "SyncSession",
    "TimestampMixin",
    "UTCDateTime",
    "apply",
    "bulk_insert",
    "bulk_update",
    "cursor_params",
    "database_of",
    "first_or_404",
    "get_or_404",
    "model_schema",
    "page_params",
    "paginate",
    "paginate_keyset",
    "utcnow",
]
