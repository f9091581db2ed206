"""Installing the admin and registering models: what is checked at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from admin_helpers import SECRET_KEY, Author, Base, Book, BookAdmin, Tag, make_app
from sqlalchemy import Column, ForeignKey, Integer, Table
from sqlalchemy.orm import Mapped, mapped_column

from trellis import App
from trellis.contrib.admin import Admin, ModelAdmin
from trellis.contrib.admin.models import MIGRATION_BRANCH
from trellis.contrib.auth import Auth
from trellis.contrib.auth.permissions import known_permissions
from trellis.contrib.db import Database
from trellis.exceptions import AppFrozenError, ConfigurationError
from trellis.testing import TestClient


def test_needs_the_database_and_auth_batteries() -> None:
    app = App(debug=True)
    with pytest.raises(ConfigurationError, match=r"app.install\(Database\(url\)\)"):
        app.install(Admin())
    app.install(Database("sqlite://"))
    with pytest.raises(ConfigurationError, match=r"app.install\(Auth\(\)\) before"):
        app.install(Admin())
    app.install(Auth())
    admin = app.install(Admin(title="Shop"))
    assert app.state.admin is admin
    assert app.state.admin_metrics is admin.metrics
    assert MIGRATION_BRANCH in app.state.database.migration_branches
    with pytest.raises(ConfigurationError, match="already has an Admin"):
        app.install(Admin())


def test_an_uninstalled_admin_says_so() -> None:
    admin = Admin()
    with pytest.raises(ConfigurationError, match="not installed"):
        _ = admin.auth
    with pytest.raises(ConfigurationError, match="not installed"):
        _ = admin.db


@pytest.mark.parametrize("prefix", ["admin", "/admin/", ""])
def test_prefixes_are_checked(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="start with '/'"):
        Admin(prefix=prefix)


def test_register_declares_the_permissions(tmp_path: Path) -> None:
    make_app(f"sqlite:///{tmp_path / 'a.db'}")
    known = known_permissions()
    for operation in ("view", "add", "change", "delete"):
        assert f"book.{operation}" in known
        assert f"author.{operation}" in known
    assert known["book.change"] == "Change Books"
    assert "tickets.view" in known and "admin.log" in known


LINK = Table("admin_test_link", Base.metadata, Column("x", Integer, ForeignKey("tag.id")))


class Pair(Base):
    __tablename__ = "admin_test_pair"

    left: Mapped[int] = mapped_column(primary_key=True)
    right: Mapped[int] = mapped_column(primary_key=True)


def _admin() -> Admin:
    app = App(debug=True, secret_key=SECRET_KEY)
    app.install(Database("sqlite://"))
    app.install(Auth())
    return app.install(Admin())


def test_registration_mistakes_are_found_at_once() -> None:
    admin = _admin()
    admin.register(Book, BookAdmin)
    with pytest.raises(ConfigurationError, match="registered already"):
        admin.register(Book)
    with pytest.raises(ConfigurationError, match="one-column primary key"):
        admin.register(Pair)
    with pytest.raises(ConfigurationError, match="give a ModelAdmin subclass"):
        admin.register(Author, object)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not a mapped model"):
        admin.register(str)

    class Log(ModelAdmin):
        slug = "log"

    with pytest.raises(ConfigurationError, match="URL part 'log' is taken"):
        admin.register(Author, Log)

    for option, value, message in [
        ("search_fields", ("nope",), "search_fields names 'nope'"),
        ("search_fields", ("id",), "not a text column"),
        ("list_filter", ("nope",), "list_filter names 'nope'"),
        ("ordering", ("-nope",), "ordering names '-nope'"),
        ("list_display", ("nope",), "list_display names 'nope'"),
        ("readonly_fields", ("nope",), "readonly_fields names 'nope'"),
        ("fields", ("nope",), "fields names 'nope'"),
        ("exclude", ("nope",), "exclude names 'nope'"),
        ("sortable_by", ("nope",), "sortable_by names 'nope'"),
        ("actions", ("nope",), "actions names 'nope'"),
        ("list_per_page", 0, "list_per_page must be at least 1"),
    ]:
        bad = type("BadAdmin", (ModelAdmin,), {option: value})
        with pytest.raises(ConfigurationError, match=message):
            admin.register(Tag, bad)
    assert Tag not in admin.registry


def test_register_after_start_is_refused(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'a.db'}", register=False)
    with TestClient(app), pytest.raises(AppFrozenError):
        app.state.admin.register(Book, BookAdmin)


def test_registering_before_installing_works(tmp_path: Path) -> None:
    admin = Admin()
    book_admin = admin.register(Book, BookAdmin)
    assert admin.model_admin(Book) is book_admin
    assert admin.model_admin("book") is book_admin
    app = App(debug=True, secret_key=SECRET_KEY)
    app.install(Database(f"sqlite:///{tmp_path / 'a.db'}"))
    app.install(Auth())
    app.install(admin)
    assert "/admin/book" in {route["path"] for route in app.describe_routes()}
    assert "Book" in repr(admin)


def test_a_link_table_and_options_of_relationships() -> None:
    admin = _admin()

    class TagAdmin(ModelAdmin):
        list_display = ("name", lambda tag: tag.name.upper())
        label = "Label"
        label_plural = "Labels"

    tag_admin = admin.register(Tag, TagAdmin)
    assert tag_admin.verbose_name == "Label"
    assert tag_admin.verbose_name_plural == "Labels"
    assert tag_admin.codenames == ("tag.view", "tag.add", "tag.change", "tag.delete")
    # a table is not a mapped class
    with pytest.raises(ConfigurationError, match="not a mapped model"):
        admin.register(LINK)  # type: ignore[arg-type]
