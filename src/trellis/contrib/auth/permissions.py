"""Who may do what: permissions, roles (groups) and object-level rules.

```py
from trellis.contrib.auth import requires

@app.post("/articles/{id:int}/publish", dependencies=[requires("articles.publish")])
async def publish(id: int, db: Session) -> None: ...

editors = Router("/editor", dependencies=[requires(roles=["editors", "admins"])])

@app.get("/reports")
async def reports(user: Annotated[User, requires("reports.view")]) -> list[Report]: ...
```

- A user's permissions are those granted to them plus those of their groups; one query
  reads both (and the group names), once per request: the result is kept on the request's
  database session.
- ``requires(*permissions)`` needs every permission; ``roles=`` needs membership of at least
  one of the groups. Superusers pass every check.
- Anonymous requests get 401 (303 to the login page for a browser); signed-in users
  without the permission get 403 with a message that names nothing.
- A token with scopes (``issue_token(..., scopes=[...])``, or a JWT's ``scope`` claim) may
  only use the permissions it lists, even for a superuser.

Object-level rules (``auth.object_permission``) decide for one object: the author may edit
their own article without the global ``articles.edit`` permission::

    @auth.object_permission("articles.edit")
    def author_edits(user: User, article: Article) -> bool:
        return article.author_id == user.id

    await auth.authorize(user, "articles.edit", article)      # 403 unless allowed
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from sqlalchemy import String, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from trellis.contrib.auth.dependencies import login_required, optional_user
from trellis.contrib.auth.models import (
    Group,
    Permission,
    User,
    group_permission_table,
    user_group_table,
    user_permission_table,
)
from trellis.contrib.db.dependencies import Session
from trellis.exceptions import ForbiddenError
from trellis.handlers.params import Depends
from trellis.http.connection import HTTPConnection

__all__ = [
    "Access",
    "Check",
    "ObjectRule",
    "forbidden",
    "forget_access",
    "get_access",
    "known_permissions",
    "requires",
    "user_has_perm",
]

#: ``check(user, request)`` of ``requires(check=...)``: true to let the request through.
Check = Callable[[User | None, HTTPConnection], bool | Awaitable[bool]]
#: An object-level rule: ``rule(user, obj)`` true when ``user`` may act on ``obj``.
ObjectRule = Callable[[User, Any], bool | Awaitable[bool]]

_CACHE_KEY = "trellis.auth.access"
# Codenames the code asks for (requires(), object rules, Auth(permissions=...)): the CLI
# creates these on grant without --create.
_KNOWN: dict[str, str] = {}


def known_permissions() -> dict[str, str]:
    """The permission codenames the application's code uses, with their descriptions."""
    return dict(sorted(_KNOWN.items()))


def declare_permission(codename: str, description: str = "") -> None:
    """Note ``codename`` as one the application uses (``requires()`` does it for you)."""
    if description or codename not in _KNOWN:
        _KNOWN[codename] = description


@dataclass(frozen=True, slots=True)
class Access:
    """What a user may do: their permission codenames and group names."""

    permissions: frozenset[str]
    roles: frozenset[str]


def forbidden() -> ForbiddenError:
    """The 403 of a failed check (it names no permission)."""
    return ForbiddenError("You do not have permission to do this.")


async def get_access(db: AsyncSession, user: User) -> Access:
    """The user's permissions (direct and through groups) and group names.

    One query; the result is kept on ``db`` (the request's session), so later checks in
    the same request cost nothing. ``forget_access(db)`` drops it after a change.
    """
    cache: dict[int, Access] = db.info.setdefault(_CACHE_KEY, {})
    access = cache.get(user.id)
    if access is not None:
        return access
    direct = (
        select(literal_column("'p'", String()).label("kind"), Permission.codename.label("name"))
        .join(user_permission_table, user_permission_table.c.permission_id == Permission.id)
        .where(user_permission_table.c.user_id == user.id)
    )
    through_groups = (
        select(literal_column("'p'", String()), Permission.codename)
        .join(group_permission_table, group_permission_table.c.permission_id == Permission.id)
        .join(user_group_table, user_group_table.c.group_id == group_permission_table.c.group_id)
        .where(user_group_table.c.user_id == user.id)
    )
    groups = (
        select(literal_column("'g'", String()), Group.name)
        .join(user_group_table, user_group_table.c.group_id == Group.id)
        .where(user_group_table.c.user_id == user.id)
    )
    rows = (await db.execute(union_all(direct, through_groups, groups))).all()
    access = Access(
        permissions=frozenset(name for kind, name in rows if kind == "p"),
        roles=frozenset(name for kind, name in rows if kind == "g"),
    )
    cache[user.id] = access
    return access


def forget_access(db: AsyncSession, user: User | None = None) -> None:
    """Drop what ``get_access`` kept on ``db`` (for ``user``, or everyone)."""
    cache: dict[int, Access] | None = db.info.get(_CACHE_KEY)
    if cache is None:
        return
    if user is None:
        cache.clear()
    else:
        cache.pop(user.id, None)


async def user_has_perm(db: AsyncSession, user: User | None, codename: str) -> bool:
    """Whether ``user`` has the permission ``codename`` (superusers have them all).

    Inactive and anonymous (``None``) users have none.
    """
    if user is None or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return codename in (await get_access(db, user)).permissions


async def _allowed(
    db: AsyncSession,
    user: User,
    permissions: tuple[str, ...],
    roles: tuple[str, ...],
    scopes: frozenset[str] | None,
) -> bool:
    if scopes is not None and not scopes.issuperset(permissions):
        return False
    if user.is_superuser:
        return True
    access = await get_access(db, user)
    if not access.permissions.issuperset(permissions):
        return False
    return not roles or not access.roles.isdisjoint(roles)


async def _call(fn: Callable[..., Any], *args: Any) -> bool:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return bool(result)


def requires(
    *permissions: str,
    roles: Iterable[str] = (),
    authenticated: bool = True,
    check: Check | None = None,
) -> Any:
    """A dependency that lets only allowed users through (and gives the user).

    Use it in ``dependencies=[...]`` of a route, a router or the app, or as a parameter's
    marker: ``user: Annotated[User, requires("reports.view")]``.

    Args:
        permissions: Codenames the user needs, every one.
        roles: Group names; the user needs to be in at least one.
        authenticated: Refuse anonymous requests (401). With ``False`` and no permissions
            or roles, anonymous requests go on to ``check`` with ``None`` as the user.
        check: ``check(user, request)`` (sync or async), a last condition: false gives 403
            (401 when anonymous).

    Returns:
        A ``Depends`` marker; its value is the user (``None`` for an allowed anonymous).
    """
    perms = tuple(permissions)
    wanted_roles = tuple(roles)
    if isinstance(roles, str):
        raise TypeError(f"requires(roles=...) takes a list of group names, not {roles!r}")
    for codename in perms:
        if not isinstance(codename, str) or not codename:
            raise TypeError(f"requires() takes permission codenames, got {codename!r}")
        declare_permission(codename)
    needs_user = authenticated or bool(perms) or bool(wanted_roles)

    async def dependency(
        conn: HTTPConnection,
        db: Session,
        user: Annotated[User | None, Depends(optional_user)],
    ) -> User | None:
        if user is None:
            if needs_user:
                raise login_required(conn)
        elif (perms or wanted_roles) and not await _allowed(
            db, user, perms, wanted_roles, getattr(conn.state, "auth_scopes", None)
        ):
            raise forbidden()
        if check is not None and not await _call(check, user, conn):
            if user is None:
                raise login_required(conn)
            raise forbidden()
        return user

    label = ", ".join(
        [*map(repr, perms), *([f"roles={list(wanted_roles)!r}"] if wanted_roles else [])]
    )
    dependency.__name__ = dependency.__qualname__ = f"requires({label})"
    return Depends(dependency)


class ObjectRules:
    """The object-level rules of an application, by permission codename."""

    def __init__(self) -> None:
        self._rules: dict[str, list[ObjectRule]] = {}

    def register(self, codename: str) -> Callable[[ObjectRule], ObjectRule]:
        """Decorator: ``rule(user, obj)`` may grant ``codename`` on an object."""
        declare_permission(codename)

        def decorator(rule: ObjectRule) -> ObjectRule:
            self._rules.setdefault(codename, []).append(rule)
            return rule

        return decorator

    async def allows(self, user: User, codename: str, obj: Any) -> bool:
        """Whether one of the rules for ``codename`` grants it to ``user`` on ``obj``."""
        for rule in self._rules.get(codename, ()):
            if await _call(rule, user, obj):
                return True
        return False
