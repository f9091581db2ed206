"""``trellis user``: accounts, passwords and permissions from the command line.

```text
trellis user create ann@example.com --username ann --superuser    # asks for the password twice
trellis user passwd ann@example.com                               # asks for the new one twice
trellis user grant ann@example.com articles.publish               # a permission
trellis user grant ann@example.com editors --group                # membership of a group
trellis user revoke ann@example.com editors --group
trellis user group-grant editors articles.publish                 # a permission of a group
trellis user group-revoke editors articles.publish
trellis user show ann@example.com                                 # groups and permissions
```

A user is named by e-mail address or user name. ``grant`` creates a permission the code
knows (used by ``requires()`` or an object rule, or listed in ``Auth(permissions=...)``) on
first use; an unknown codename, or a group that does not exist, needs ``--create``, so that a
typo is an error rather than a new, useless permission. ``--password`` exists for scripts;
without it the password is asked for, hidden, twice.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from trellis.contrib.auth.models import Group, Permission, User
    from trellis.contrib.auth.plugin import Auth

__all__ = ["user_command"]

T = TypeVar("T")


def _run(auth: Auth, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work(db)`` in one transaction on a loop of its own, then close the connections."""

    async def main() -> T:
        try:
            async with auth.db.transaction() as db:
                return await work(db)
        finally:
            await auth.db.dispose()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from async code (tests)
        return pool.submit(asyncio.run, main()).result()


@contextmanager
def _errors() -> Iterator[None]:
    from sqlalchemy.exc import IntegrityError, SQLAlchemyError

    try:
        yield
    except IntegrityError as exc:
        raise click.ClickException(
            f"the change conflicts with existing data: {_reason(exc)}"
        ) from None
    except SQLAlchemyError as exc:
        raise click.ClickException(
            f"database error: {_reason(exc)} (are the auth tables there? `trellis db upgrade`)"
        ) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def _user(auth: Auth, db: AsyncSession, name: str) -> User:
    user = await auth.find_user(db, name)
    if user is None:
        raise click.ClickException(f"no user with the e-mail address or user name {name!r}")
    return user


async def _group(db: AsyncSession, name: str, create: bool) -> Group:
    from sqlalchemy import select

    from trellis.contrib.auth.models import Group

    group = (await db.execute(select(Group).where(Group.name == name))).scalar_one_or_none()
    if group is None:
        if not create:
            raise click.ClickException(f"no group named {name!r}: add --create to create it")
        group = Group(name=name)
        db.add(group)
        await db.flush()
        click.echo(f"Created group {name!r}.")
    return group


async def _permission(db: AsyncSession, codename: str, create: bool) -> Permission:
    from sqlalchemy import select

    from trellis.contrib.auth.models import Permission
    from trellis.contrib.auth.permissions import known_permissions

    found = (
        await db.execute(select(Permission).where(Permission.codename == codename))
    ).scalar_one_or_none()
    if found is not None:
        return found
    known = known_permissions()
    if codename not in known and not create:
        listed = ", ".join(known) or "none"
        raise click.ClickException(
            f"unknown permission {codename!r} (the code uses: {listed}); add --create to"
            " create it anyway"
        )
    permission = Permission(codename=codename, description=known.get(codename, ""))
    db.add(permission)
    await db.flush()
    click.echo(f"Created permission {codename!r}.")
    return permission


def _add(items: list[Any], item: Any) -> bool:
    """Add ``item`` to a relationship's list unless it is there; whether it was added."""
    if item in items:
        return False
    items.append(item)
    return True


def _remove(items: list[Any], field: str, name: str) -> bool:
    """Remove the item whose ``field`` is ``name`` from a relationship's list; whether found."""
    for item in items:
        if getattr(item, field) == name:
            items.remove(item)
            return True
    return False


def _change(
    auth: Auth, work: Callable[[AsyncSession], Awaitable[bool]], done: str, same: str
) -> None:
    """Run ``work``, then say ``done`` when it changed something, ``same`` when not."""
    with _errors():
        changed = _run(auth, work)
    click.echo(done if changed else same)


def _check_password(auth: Auth, password: str, email: str, username: str | None) -> None:
    policy = auth.password_policy
    if policy is None:
        from trellis.contrib.auth.flows import PasswordPolicy

        policy = PasswordPolicy()
    problems: list[str] = policy.check(password, email=email, username=username)
    if problems:
        raise click.ClickException(" ".join(problems))


def _ask_password(password: str | None) -> str:
    if password is not None:
        return password
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


def user_command(auth: Auth) -> click.Group:
    """The ``user`` command group for ``auth``'s application."""

    @click.group("user")
    def user() -> None:
        """User accounts: create, passwd, grant, revoke, group-grant, group-revoke, show."""

    @user.command("create")
    @click.argument("email")
    @click.option("--username", default=None, help="A user name to sign in with.")
    @click.option("--password", default=None, help="The password (asked for when left out).")
    @click.option(
        "--no-password", is_flag=True, help="No password: the user signs in through OAuth only."
    )
    @click.option("--superuser", is_flag=True, help="Passes every permission check.")
    def create(
        email: str, username: str | None, password: str | None, no_password: bool, superuser: bool
    ) -> None:
        """Create a user with e-mail address EMAIL."""
        from trellis.contrib.auth.flows import check_email, check_username
        from trellis.contrib.auth.models import User

        email, problems = check_email(email)
        if username is not None:
            username, more = check_username(username)
            problems += more
        if problems:
            raise click.ClickException(" ".join(problems))
        if no_password and password is not None:
            raise click.ClickException("--password and --no-password contradict each other")
        secret = None if no_password else _ask_password(password)
        if secret is not None:
            _check_password(auth, secret, email, username)

        async def work(db: AsyncSession) -> int:
            from sqlalchemy import or_, select

            taken = or_(User.email == email, *([User.username == username] if username else []))
            if (await db.execute(select(User.id).where(taken))).first() is not None:
                raise click.ClickException(
                    f"a user with the e-mail address {email!r}"
                    + (f" or the user name {username!r}" if username else "")
                    + " exists already"
                )
            new = User(email=email, username=username, is_superuser=superuser)
            await auth.aset_password(new, secret)
            db.add(new)
            await db.flush()
            return new.id

        with _errors():
            user_id = _run(auth, work)
        kind = "superuser" if superuser else "user"
        click.echo(f"Created {kind} {email} (id {user_id}).")

    @user.command("passwd")
    @click.argument("user_name", metavar="USER")
    @click.option("--password", default=None, help="The new password (asked for when left out).")
    def passwd(user_name: str, password: str | None) -> None:
        """Set the password of USER (e-mail address or user name)."""

        async def find(db: AsyncSession) -> tuple[str, str | None]:
            found = await _user(auth, db, user_name)
            return found.email, found.username

        with _errors():
            email, username = _run(auth, find)
        secret = _ask_password(password)
        _check_password(auth, secret, email, username)

        async def work(db: AsyncSession) -> None:
            from trellis.contrib.auth.tokens import revoke_user_tokens

            found = await _user(auth, db, user_name)
            await auth.aset_password(found, secret)
            await revoke_user_tokens(db, found, "bearer")

        with _errors():
            _run(auth, work)
        click.echo(f"Password of {email} changed; their sessions and bearer tokens are signed out.")

    @user.command("grant")
    @click.argument("user_name", metavar="USER")
    @click.argument("name", metavar="PERMISSION_OR_GROUP")
    @click.option("--group", "is_group", is_flag=True, help="NAME is a group: add USER to it.")
    @click.option("--create", is_flag=True, help="Create the permission or group if missing.")
    def grant(user_name: str, name: str, is_group: bool, create: bool) -> None:
        """Give USER a permission, or (--group) membership of a group."""

        async def work(db: AsyncSession) -> bool:
            found = await _user(auth, db, user_name)
            if is_group:
                return _add(await found.awaitable_attrs.groups, await _group(db, name, create))
            permission = await _permission(db, name, create)
            return _add(await found.awaitable_attrs.permissions, permission)

        what = f"group {name!r}" if is_group else f"permission {name!r}"
        _change(auth, work, f"Granted {what} to {user_name}.", f"{user_name} has {what} already.")

    @user.command("revoke")
    @click.argument("user_name", metavar="USER")
    @click.argument("name", metavar="PERMISSION_OR_GROUP")
    @click.option("--group", "is_group", is_flag=True, help="NAME is a group: remove USER from it.")
    def revoke(user_name: str, name: str, is_group: bool) -> None:
        """Take a permission, or (--group) membership of a group, from USER."""

        async def work(db: AsyncSession) -> bool:
            found = await _user(auth, db, user_name)
            if is_group:
                return _remove(await found.awaitable_attrs.groups, "name", name)
            return _remove(await found.awaitable_attrs.permissions, "codename", name)

        what = f"group {name!r}" if is_group else f"permission {name!r}"
        _change(
            auth,
            work,
            f"Revoked {what} from {user_name}.",
            f"{user_name} did not have {what} (directly).",
        )

    @user.command("group-grant")
    @click.argument("group_name", metavar="GROUP")
    @click.argument("codename", metavar="PERMISSION")
    @click.option("--create", is_flag=True, help="Create the group or permission if missing.")
    def group_grant(group_name: str, codename: str, create: bool) -> None:
        """Give GROUP a permission (its members get it)."""

        async def work(db: AsyncSession) -> bool:
            group = await _group(db, group_name, create)
            permission = await _permission(db, codename, create)
            return _add(await group.awaitable_attrs.permissions, permission)

        _change(
            auth,
            work,
            f"Granted permission {codename!r} to group {group_name!r}.",
            f"Group {group_name!r} has permission {codename!r} already.",
        )

    @user.command("group-revoke")
    @click.argument("group_name", metavar="GROUP")
    @click.argument("codename", metavar="PERMISSION")
    def group_revoke(group_name: str, codename: str) -> None:
        """Take a permission from GROUP."""

        async def work(db: AsyncSession) -> bool:
            group = await _group(db, group_name, False)
            return _remove(await group.awaitable_attrs.permissions, "codename", codename)

        _change(
            auth,
            work,
            f"Revoked permission {codename!r} from group {group_name!r}.",
            f"Group {group_name!r} did not have permission {codename!r}.",
        )

    @user.command("show")
    @click.argument("user_name", metavar="USER")
    def show(user_name: str) -> None:
        """Show USER: flags, groups and permissions."""
        from trellis.contrib.auth.permissions import get_access

        async def work(db: AsyncSession) -> list[str]:
            found = await _user(auth, db, user_name)
            access = await get_access(db, found)
            direct = sorted(p.codename for p in await found.awaitable_attrs.permissions)
            flags = [
                "active" if found.is_active else "inactive",
                *(["superuser"] if found.is_superuser else []),
                *([] if found.has_usable_password else ["no password"]),
            ]
            return [
                f"{found.email} (id {found.id}, user name {found.username or '-'})",
                f"  {', '.join(flags)}",
                f"  last login: {found.last_login.isoformat() if found.last_login else 'never'}",
                f"  groups: {', '.join(sorted(access.roles)) or '-'}",
                f"  permissions: {', '.join(sorted(access.permissions)) or '-'}",
                f"  of which direct: {', '.join(direct) or '-'}",
            ]

        with _errors():
            lines = _run(auth, work)
        for line in lines:
            click.echo(line)

    return user
