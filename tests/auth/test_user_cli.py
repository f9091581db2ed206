"""``trellis user ...`` through the ``trellis`` CLI with an app module, on every database."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from trellis.cli import main
from trellis.contrib.auth import Auth, PasswordHasher
from trellis.contrib.db import Database

APP = """
    import os

    from trellis import App
    from trellis.contrib.auth import Auth, PasswordHasher, requires
    from trellis.contrib.db import Database

    app = App()
    app.install(Database(os.environ["TEST_DB_URL"], check_on_startup=False))
    auth = app.install(
        Auth(
            hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
            permissions={"reports.view": "See the reports"},
            pages=False,
            api=False,
        )
    )


    @app.get("/publish", dependencies=[requires("articles.publish")])
    async def publish() -> str:
        return "ok"
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    for name in ("TRELLIS_APP", "TRELLIS_APP_DIR", "TRELLIS_MIGRATIONS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "shop.py").write_text(textwrap.dedent(APP))
    yield
    sys.modules.pop("shop", None)


def run(url: str, *args: str, input: str | None = None) -> Result:
    sys.modules.pop("shop", None)
    return CliRunner().invoke(
        main, ["--app", "shop:app", *args], env={"TEST_DB_URL": url}, input=input
    )


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def fails(result: Result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def authenticates(url: str, login: str, password: str) -> bool:
    async def check() -> bool:
        database = Database(url)
        auth = Auth(database, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        try:
            async with database.session() as db:
                return await auth.authenticate(db, login, password) is not None
        finally:
            await database.dispose()

    return asyncio.run(check())


def test_the_user_commands(db_url: str) -> None:
    ok(run(db_url, "db", "init"))
    assert "applied trellis_auth_0001 (trellis_auth, head)" in ok(run(db_url, "db", "upgrade"))

    output = ok(
        run(
            db_url,
            "user",
            "create",
            "Ann@Example.com",
            "--username",
            "ann",
            input="pw-1234-x\n" * 2,
        )
    )
    assert "Password: \nRepeat for confirmation: \n" in output
    assert "Created user ann@example.com (id 1)." in output
    assert authenticates(db_url, "ann", "pw-1234-x")
    fails(
        run(db_url, "user", "create", "ann@example.com", "--password", "another-pw"),
        "Error: a user with the e-mail address 'ann@example.com' exists already",
    )
    fails(
        run(db_url, "user", "create", "bob@example.com", "--password", "short"),
        "The password must have at least 8 characters.",
    )
    fails(run(db_url, "user", "create", "not-an-address", "--password", "x" * 10), "e-mail")
    boss = ok(
        run(db_url, "user", "create", "boss@example.com", "--superuser", "--password", "b0ss-pass")
    )
    assert "Created superuser boss@example.com (id 2)." in boss
    oauth = ok(run(db_url, "user", "create", "sso@example.com", "--no-password"))
    assert "Created user sso@example.com" in oauth
    assert not authenticates(db_url, "sso@example.com", "")

    # passwd: the confirmation must match
    output = ok(
        run(
            db_url, "user", "passwd", "ann", input="new-pass-1\nnope-nope\nnew-pass-1\nnew-pass-1\n"
        )
    )
    assert "do not match" in output
    assert "Password of ann@example.com changed" in output
    assert authenticates(db_url, "ann@example.com", "new-pass-1")
    assert not authenticates(db_url, "ann@example.com", "pw-1234-x")
    fails(run(db_url, "user", "passwd", "nobody", "--password", "whatever1"), "no user with")

    # grant: permissions the code uses are created on first use; others need --create
    assert "Created permission 'articles.publish'." in ok(
        run(db_url, "user", "grant", "ann", "articles.publish")
    )
    assert "ann has permission 'articles.publish' already." in ok(
        run(db_url, "user", "grant", "ann", "articles.publish")
    )
    ok(run(db_url, "user", "grant", "ann", "reports.view"))
    typo = run(db_url, "user", "grant", "ann", "artciles.publish")
    fails(typo, "unknown permission 'artciles.publish' (the code uses: ")
    assert "articles.publish" in typo.output and "reports.view" in typo.output
    assert "add --create to create it anyway" in typo.output
    ok(run(db_url, "user", "grant", "ann", "legacy.thing", "--create"))
    fails(
        run(db_url, "user", "grant", "ann", "editors", "--group"),
        "no group named 'editors': add --create to create it",
    )
    output = ok(run(db_url, "user", "grant", "ann", "editors", "--group", "--create"))
    assert "Created group 'editors'." in output and "Granted group 'editors' to ann." in output
    output = ok(run(db_url, "user", "group-grant", "editors", "articles.delete", "--create"))
    assert "Granted permission 'articles.delete' to group 'editors'." in output
    fails(run(db_url, "user", "group-grant", "nobody", "articles.delete"), "no group named")
    fails(run(db_url, "user", "grant", "nobody", "reports.view"), "no user with")

    shown = ok(run(db_url, "user", "show", "ann")).splitlines()
    assert shown == [
        "ann@example.com (id 1, user name ann)",
        "  active",
        shown[2],
        "  groups: editors",
        "  permissions: articles.delete, articles.publish, legacy.thing, reports.view",
        "  of which direct: articles.publish, legacy.thing, reports.view",
    ]
    assert shown[2].startswith("  last login: never")

    assert "Revoked permission 'legacy.thing' from ann." in ok(
        run(db_url, "user", "revoke", "ann", "legacy.thing")
    )
    assert "did not have permission 'legacy.thing'" in ok(
        run(db_url, "user", "revoke", "ann", "legacy.thing")
    )
    assert "Revoked permission 'articles.delete' from group 'editors'." in ok(
        run(db_url, "user", "group-revoke", "editors", "articles.delete")
    )
    assert "Revoked group 'editors' from ann." in ok(
        run(db_url, "user", "revoke", "ann", "editors", "--group")
    )
    shown = ok(run(db_url, "user", "show", "ann")).splitlines()
    assert shown[3:5] == ["  groups: -", "  permissions: articles.publish, reports.view"]
    assert "superuser" in ok(run(db_url, "user", "show", "boss@example.com"))
    assert "no password" in ok(run(db_url, "user", "show", "sso@example.com"))


def test_flags_that_contradict_and_missing_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    fails(
        run(url, "user", "create", "a@example.com", "--password", "x" * 10, "--no-password"),
        "--password and --no-password contradict each other",
    )
    fails(
        run(url, "user", "create", "a@example.com", "--password", "long-enough-pw"),
        "are the auth tables there? `trellis db upgrade`",
    )


def test_user_is_listed_with_its_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert "user " in ok(run(url, "--help"))
    output = ok(run(url, "user", "--help"))
    for command in ("create", "passwd", "grant", "revoke", "group-grant", "group-revoke", "show"):
        assert command in output
