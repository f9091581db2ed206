"""The admin battery: pages and a JSON API to manage your models, for staff users.

```python
from sqlalchemy.orm import Mapped, mapped_column

from trellis import App
from trellis.contrib.admin import Admin, ModelAdmin
from trellis.contrib.auth import Auth
from trellis.contrib.db import Database, IdMixin, Model
from trellis.testing import TestClient


class Book(IdMixin, Model):
    title: Mapped[str]
    published: Mapped[bool] = mapped_column(default=False)


class BookAdmin(ModelAdmin):
    list_display = ("title", "published")
    search_fields = ("title",)
    list_filter = ("published",)


app = App()
app.install(Database("sqlite://"))
app.install(Auth())
admin = app.install(Admin(title="Bookshop"))
admin.register(Book, BookAdmin)

with TestClient(app) as client:
    # staff only: a browser that is not signed in is sent to the login page
    page = client.get("/admin/book", headers={"accept": "text/html"}, follow_redirects=False)
    assert page.headers["location"] == "/auth/login?next=%2Fadmin%2Fbook"
```

Each registered model gets a list (search, filters, sorting, pages, bulk actions), a detail
page, add and edit forms (``trellis.contrib.forms.ModelForm``: foreign keys as selects,
many-to-many as multi-selects), a delete confirmation, and JSON endpoints under
``/admin/api`` in the OpenAPI document. Every page and endpoint checks the user's permissions
(``<table>.view``, ``.add``, ``.change``, ``.delete``); every change is written to the action
log (``AdminLogEntry``) in the same transaction. The dashboard charts request rate, latency
and errors (per process), counts the models' rows and lists the latest error tickets when
``trellis.contrib.tickets`` is installed.

Needs the ``db`` and ``auth`` extras (and Jinja2 for the pages).
"""

from trellis.contrib.admin.metrics import MetricsMiddleware, MetricsRecorder, MinuteStats
from trellis.contrib.admin.models import AdminLogEntry
from trellis.contrib.admin.options import ActionInfo, ModelAdmin, action
from trellis.contrib.admin.plugin import Admin

__all__ = [
    "ActionInfo",
    "Admin",
    "AdminLogEntry",
    "MetricsMiddleware",
    "MetricsRecorder",
    "MinuteStats",
    "ModelAdmin",
    "action",
]
