"""The auth battery's pages in French: the catalog it ships, chosen by Accept-Language."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from trellis import App
from trellis.contrib.auth import Auth, CurrentUser, PasswordHasher, User
from trellis.contrib.db import Database, Model
from trellis.contrib.i18n import I18n
from trellis.contrib.mail import MemoryEmailBackend
from trellis.testing import TestClient

FR = {"accept-language": "fr-FR,fr;q=0.9,en;q=0.5"}
HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery staple"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'auth.db'}")
    tables = [
        t for t in Model.metadata.sorted_tables if t.info.get("migration_branch") == "trellis_auth"
    ]

    async def prepare() -> None:
        try:
            async with db.engine.begin() as conn:
                await conn.run_sync(Model.metadata.create_all, tables=tables)
            async with db.transaction() as session:
                user = User(email="ann@example.com", username="ann")
                user.password_hash = HASHER.hash(PASSWORD)
                session.add(user)
        finally:
            await db.dispose()

    anyio.run(prepare)
    try:
        yield db
    finally:
        anyio.run(db.dispose)


def make_app(
    database: Database,
    *,
    i18n: bool = True,
    mail: MemoryEmailBackend | None = None,
    **options: object,
) -> App:
    app = App(debug=True, secret_key="k" * 40)
    app.install(database)
    app.install(Auth(hasher=HASHER, pages=True, api=True, email=mail))
    if i18n:
        app.install(I18n(locales=("en", "fr"), directory="no-such-folder", **options))

    @app.get("/account")
    async def account(user: CurrentUser) -> str:
        return user.email

    return app


def csrf(response: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert match, response.text
    return html.unescape(match.group(1))


def test_the_login_page_in_french(database: Database) -> None:
    with TestClient(make_app(database)) as client:
        page = client.get("/auth/login", headers=FR)
    assert page.status_code == 200
    text = page.text
    assert '<html lang="fr">' in text
    assert "<title>Se connecter</title>" in text
    assert "<h1>Se connecter</h1>" in text
    assert '<label for="id_login">E-mail ou nom d\u2019utilisateur</label>' in text
    assert '<label for="id_password">Mot de passe</label>' in text
    assert '<button type="submit">Se connecter</button>' in text
    assert ">Mot de passe oublié ?</a>" in text
    assert "Pas encore de compte ?" in text and ">Créez-en un</a>." in text
    assert page.headers["content-language"] == "fr"


def test_the_login_page_in_english_is_unchanged(database: Database) -> None:
    with TestClient(make_app(database)) as client:
        text = client.get("/auth/login", headers={"accept-language": "en"}).text
    assert '<html lang="en">' in text
    assert "<title>Sign in</title>" in text
    assert '<label for="id_login">E-mail or user name</label>' in text
    assert ">Forgot your password?</a>" in text
    assert "<p>No account yet? <a" in text and ">Create one</a>.</p>" in text


def test_without_the_plugin_the_pages_are_english(database: Database) -> None:
    with TestClient(make_app(database, i18n=False)) as client:
        text = client.get("/auth/login", headers=FR).text
    assert '<html lang="en">' in text and "<h1>Sign in</h1>" in text


def test_errors_and_messages_in_french(database: Database) -> None:
    with TestClient(make_app(database)) as client:
        page = client.get("/auth/login", headers=FR)
        wrong = client.post(
            "/auth/login",
            data={"login": "ann", "password": "nope", "csrf_token": csrf(page)},
            headers=FR,
        )
        assert wrong.status_code == 401
        assert "E-mail, nom d\u2019utilisateur ou mot de passe incorrect." in wrong.text
        empty = client.post(
            "/auth/login", data={"login": "", "password": "", "csrf_token": csrf(page)}, headers=FR
        )
        assert "Saisissez votre adresse e-mail ou votre nom d\u2019utilisateur." in empty.text
        register = client.get("/auth/register", headers=FR)
        assert "<h1>Créer un compte</h1>" in register.text
        assert "Au moins 8 caractères, pas uniquement des chiffres" in register.text
        short = client.post(
            "/auth/register",
            data={
                "email": "bob@example.com",
                "username": "bob",
                "password": "short",
                "password2": "other",
                "csrf_token": csrf(register),
            },
            headers=FR,
        )
        assert short.status_code == 422
        assert "Le mot de passe doit comporter au moins 8 caractères." in short.text
        assert "Les deux mots de passe ne correspondent pas." in short.text


def test_the_json_api_errors_in_french(database: Database) -> None:
    with TestClient(make_app(database)) as client:
        response = client.post(
            "/api/auth/register",
            json={"email": "not-an-address", "username": "bob", "password": "x"},
            headers=FR,
        )
    assert response.status_code == 422
    messages = [e["msg"] for e in response.json()["errors"]]
    assert "Saisissez une adresse e-mail valide." in messages
    assert response.json()["title"] == "Entité impossible à traiter"


def test_the_login_redirect_keeps_the_locale_prefix(database: Database) -> None:
    with TestClient(make_app(database, url_prefix=True)) as client:
        response = client.get("/fr/account", headers={"accept": "text/html"})
        assert response.status_code in (302, 303, 307)
        location = response.headers["location"]
        assert location.startswith("/fr/auth/login?next=")
        assert "%2Ffr%2Faccount" in location
        page = client.get(location)
        assert "<h1>Se connecter</h1>" in page.text
        assert 'action="/fr/auth/login"' in page.text


def test_the_reset_email_in_french(database: Database) -> None:
    mail = MemoryEmailBackend(from_email="site@example.com")
    with TestClient(make_app(database, mail=mail)) as client:
        page = client.get("/auth/password/reset", headers=FR)
        assert "<h1>R\u00e9initialisez votre mot de passe</h1>" in page.text
        sent = client.post(
            "/auth/password/reset",
            data={"email": "ann@example.com", "csrf_token": csrf(page)},
            headers=FR,
        )
        assert sent.status_code in (200, 303)
    (message,) = mail.outbox
    assert message.subject == "R\u00e9initialisez votre mot de passe sur notre site"
    assert message.text.startswith(
        "Bonjour ann,\n\nQuelqu\u2019un (vous, nous l\u2019esp\u00e9rons)"
    )
    assert "ouvrez ce lien dans un d\u00e9lai de 1 heure :" in message.text
    assert message.html is not None and '<html lang="fr">' in message.html
