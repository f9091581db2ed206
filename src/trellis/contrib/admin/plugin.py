"""The admin's plugin: ``app.install(Admin())`` and ``admin.register(Model, ModelAdmin)``.

```py
app = App()
db = app.install(Database(url))
auth = app.install(Auth())
admin = app.install(Admin(title="Bookshop admin"))
admin.register(Book, BookAdmin)
admin.register(Author)
```

It puts itself on ``app.state.admin``, adds the ``trellis_admin`` migration branch (the action
log's table), the pages under ``prefix`` (``/admin``), the JSON API under ``api_prefix``
(``/admin/api``), its static files, and a middleware that records request rate, latency and
errors per minute for the dashboard (``app.state.admin_metrics``; per process).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from trellis.contrib.admin.metrics import MetricsMiddleware, MetricsRecorder
from trellis.contrib.admin.models import MIGRATION_BRANCH
from trellis.contrib.admin.options import OPERATIONS, ModelAdmin
from trellis.contrib.auth.permissions import declare_permission, get_access
from trellis.exceptions import ConfigurationError
from trellis.routing.router import Router

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from trellis.app import App
    from trellis.contrib.auth.models import User
    from trellis.contrib.auth.plugin import Auth
    from trellis.contrib.db.database import Database
    from trellis.http.connection import HTTPConnection

__all__ = ["MIGRATIONS_DIRECTORY", "STATIC_DIRECTORY", "TEMPLATES_DIRECTORY", "Admin"]

#: The directory of the ``trellis_admin`` branch's revision files.
MIGRATIONS_DIRECTORY = Path(__file__).parent / "migrations"
#: The admin's templates (searched after the app's own: a file of the same name wins).
TEMPLATES_DIRECTORY = Path(__file__).parent / "templates"
#: The admin's CSS and JavaScript, served under ``{prefix}/static``.
STATIC_DIRECTORY = Path(__file__).parent / "static"
#: The permission that shows the error tickets in the admin (superusers have it anyway).
TICKETS_PERMISSION = "tickets.view"
#: The permission that shows the whole action log (others see the entries of their models).
LOG_PERMISSION = "admin.log"

# First path segments under the prefix that the admin uses itself.
_RESERVED = frozenset({"static", "log", "tickets", "api", "login", "logout", "metrics"})


class Admin:
    """The admin site: pages and a JSON API for the models you register.

    Args:
        title: The site's name, at the top of every page.
        prefix: Where the pages live.
        api_prefix: Where the JSON API lives.
        metrics: Record request rate, latency and errors for the dashboard (a middleware
            around the whole application; per process).
        metrics_minutes: How many minutes of metrics to keep (and chart).
        site_url: Where the "View site" link goes.

    Raises:
        ConfigurationError: a prefix that does not start with ``/`` or ends with one.
    """

    def __init__(
        self,
        title: str = "Admin",
        prefix: str = "/admin",
        api_prefix: str = "/admin/api",
        *,
        metrics: bool = True,
        metrics_minutes: int = 60,
        site_url: str = "/",
    ) -> None:
        for name, value in (("prefix", prefix), ("api_prefix", api_prefix)):
            if not value.startswith("/") or value.endswith("/"):
                raise ConfigurationError(
                    f"Admin({name}={value!r}): start with '/' and do not end with one"
                    " (like '/admin')"
                )
        self.title = title
        self.prefix = prefix
        self.api_prefix = api_prefix
        self.site_url = site_url
        self.app: App | None = None
        self._auth: Auth | None = None
        self._db: Database | None = None
        #: The registered models' admins, by model class, in registration order.
        self.registry: dict[type[Any], ModelAdmin] = {}
        self._by_slug: dict[str, ModelAdmin] = {}
        self.metrics: MetricsRecorder | None = MetricsRecorder(metrics_minutes) if metrics else None
        from trellis.contrib.admin import site

        self.pages: Router = site.site_router(self)
        self.api: Router = Router(api_prefix, name="admin_api")
        declare_permission(TICKETS_PERMISSION, "See the error tickets in the admin")
        declare_permission(LOG_PERMISSION, "See every entry of the admin's action log")

    # -- installation -------------------------------------------------------------------------

    @property
    def auth(self) -> Auth:
        """The auth battery the admin checks users with."""
        if self._auth is None:
            raise ConfigurationError("Admin is not installed yet: app.install(Admin())")
        return self._auth

    @property
    def db(self) -> Database:
        """The ``Database`` of the models and the action log."""
        if self._db is None:
            raise ConfigurationError("Admin is not installed yet: app.install(Admin())")
        return self._db

    def setup(self, app: App) -> None:
        """Install on ``app``: needs the data and auth batteries installed before it.

        Raises:
            ConfigurationError: no ``Database`` or no ``Auth`` on the app, or another
                ``Admin`` already.
        """
        from trellis.contrib.auth.plugin import Auth
        from trellis.contrib.db.database import Database

        existing = getattr(app.state, "admin", None)
        if existing is not None and existing is not self:
            raise ConfigurationError("the application already has an Admin installed")
        database = getattr(app.state, "database", None)
        if not isinstance(database, Database):
            raise ConfigurationError(
                "Admin() needs the data battery: app.install(Database(url)) before"
                " app.install(Admin())"
            )
        auth = getattr(app.state, "auth", None)
        if not isinstance(auth, Auth):
            raise ConfigurationError(
                "Admin() needs the auth battery (users, sign-in and permissions):"
                " app.install(Auth()) before app.install(Admin())"
            )
        self.app = app
        self._db = database
        self._auth = auth
        app.state.admin = self
        database.add_migration_branch(MIGRATION_BRANCH, MIGRATIONS_DIRECTORY)
        app.include(self.pages)
        app.include(self.api)
        app.on_startup(self._build_forms)
        if self.metrics is not None:
            app.state.admin_metrics = self.metrics
            app.add_middleware(
                MetricsMiddleware, recorder=self.metrics, exclude=(self.prefix + "/static/",)
            )

    def _build_forms(self) -> None:
        """Make each model's form class at start-up: a field it cannot make fails now."""
        from trellis.contrib.admin._forms import form_class

        for model_admin in self.registry.values():
            form_class(model_admin)._ensure_built()

    # -- models -------------------------------------------------------------------------------

    def register(self, model: type[Any], admin_class: type[ModelAdmin] | None = None) -> ModelAdmin:
        """Give ``model`` pages (list, detail, add, edit, delete) and JSON endpoints.

        Its four permissions (``<table>.view``, ``.add``, ``.change``, ``.delete``) are
        declared to the auth battery.

        Args:
            model: A mapped class with a one-column primary key.
            admin_class: A ``ModelAdmin`` subclass with the options (default: ``ModelAdmin``).

        Returns:
            The ``ModelAdmin`` instance.

        Raises:
            ConfigurationError: the model is registered already, is not mapped, has a
                composite primary key, its URL part clashes, or an option names something
                the model does not have.
            AppFrozenError: the application is already serving.
        """
        if model in self.registry:
            raise ConfigurationError(f"admin.register({model.__name__}): registered already")
        cls = admin_class or ModelAdmin
        if not (isinstance(cls, type) and issubclass(cls, ModelAdmin)):
            raise ConfigurationError(
                f"admin.register({model.__name__}, {cls!r}): give a ModelAdmin subclass"
            )
        model_admin = cls(model, self)
        if len(model_admin.mapper.primary_key) != 1:
            raise ConfigurationError(
                f"admin.register({model.__name__}): the admin needs a one-column primary key"
            )
        slug = model_admin.url_slug
        if slug in _RESERVED or slug in self._by_slug or not _is_slug(slug):
            raise ConfigurationError(
                f"admin.register({model.__name__}): its URL part {slug!r} is taken or not"
                " plain (letters, digits, '_' and '-'); set slug = '...' on its ModelAdmin"
            )
        _check_options(model_admin)
        from trellis.contrib.admin import _query, api, pages

        _query.filterset(model_admin)  # its own checks, now rather than on a request

        pages.add_model_pages(self, model_admin)
        if model_admin.api:
            api.add_model_api(self, model_admin)
        self.registry[model] = model_admin
        self._by_slug[slug] = model_admin
        name = model_admin.verbose_name_plural
        for operation in OPERATIONS:
            declare_permission(model_admin.codename(operation), f"{operation.capitalize()} {name}")
        for info in model_admin.action_infos():
            if "." in info.permission:  # a codename of the project's: known to the CLI too
                declare_permission(info.permission, f"{info.label} ({name})")
        return model_admin

    def model_admin(self, model_or_slug: type[Any] | str) -> ModelAdmin:
        """The ``ModelAdmin`` of a registered model (by class or URL part).

        Raises:
            KeyError: the model is not registered.
        """
        if isinstance(model_or_slug, str):
            return self._by_slug[model_or_slug]
        return self.registry[model_or_slug]

    @property
    def codenames(self) -> frozenset[str]:
        """Every permission that lets a user into the admin."""
        names = {TICKETS_PERMISSION, LOG_PERMISSION}
        for model_admin in self.registry.values():
            names.update(model_admin.codenames)
        return frozenset(names)

    # -- who may enter ------------------------------------------------------------------------

    async def is_staff(self, db: AsyncSession, user: User, conn: HTTPConnection) -> bool:
        """Whether ``user`` may enter the admin: a superuser, or any admin permission.

        A token limited to scopes must name at least one admin permission.
        """
        if not user.is_active:
            return False
        scopes = getattr(conn.state, "auth_scopes", None)
        codenames = self.codenames
        if scopes is not None and scopes.isdisjoint(codenames):
            return False
        if user.is_superuser:
            return True
        access = await get_access(db, user)
        return not access.permissions.isdisjoint(codenames)

    def __repr__(self) -> str:
        return f"<Admin {self.prefix} models={[m.__name__ for m in self.registry]}>"


def _is_slug(value: str) -> bool:
    return bool(value) and all(c.isalnum() or c in "_-" for c in value) and value.isascii()


def _check_options(model_admin: ModelAdmin) -> None:
    """Every name an option gives must be something of the model: found at start-up."""
    name = model_admin.model.__name__
    columns = model_admin.columns
    relationships = model_admin.relationships

    def fail(option: str, value: str, what: str) -> ConfigurationError:
        return ConfigurationError(
            f"{type(model_admin).__name__}.{option} names {value!r}, which is not {what} of"
            f" {name}; its columns are {', '.join(columns)}"
        )

    for field in model_admin.search_fields:
        if field not in columns:
            raise fail("search_fields", field, "a column")
    for field in model_admin.list_filter:
        if field not in columns:
            raise fail("list_filter", field, "a column")
    for item in model_admin.ordering:
        if item.removeprefix("-") not in columns:
            raise fail("ordering", item, "a column")
    for field in model_admin.sortable_by or ():
        if field not in columns:
            raise fail("sortable_by", field, "a column")
    for option in ("readonly_fields", "exclude"):
        for field in getattr(model_admin, option):
            if field not in columns and field not in relationships:
                raise fail(option, field, "a column or relationship")
    for field in model_admin.fields or ():
        if field not in columns and field not in relationships:
            raise fail("fields", field, "a column or relationship")
    for shown in model_admin.list_display:
        if callable(shown):
            continue
        item = shown
        if (
            item not in columns
            and item not in relationships
            and not callable(getattr(model_admin, item, None))
            and not hasattr(model_admin.model, item)
        ):
            raise fail("list_display", item, "a column, relationship, method or attribute")
    known = model_admin.all_actions()
    for action_name in model_admin.actions or ():
        if action_name not in known:
            raise ConfigurationError(
                f"{type(model_admin).__name__}.actions names {action_name!r}: give"
                " 'delete_selected' or the name of an @action method"
            )
    if model_admin.list_per_page < 1 or model_admin.list_max_per_page < model_admin.list_per_page:
        raise ConfigurationError(
            f"{type(model_admin).__name__}: list_per_page must be at least 1 and at most"
            " list_max_per_page"
        )
    for search in model_admin.search_fields:
        from trellis.contrib.db.filters import _is_text

        if not _is_text(columns[search].type):
            raise ConfigurationError(
                f"{type(model_admin).__name__}.search_fields names {search!r}, which is not a"
                " text column: search looks in text; filter on it with list_filter"
            )
