"""ModelForm: fields from SQLAlchemy columns, selects of related rows, saving (every database)."""

from __future__ import annotations

import datetime
import decimal
import enum
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from sqlalchemy import (
    JSON,
    Column,
    Enum,
    ForeignKey,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from trellis import App, Request
from trellis.contrib.db import Database, Session
from trellis.contrib.db.types import UTCDateTime, utcnow
from trellis.contrib.forms import (
    BooleanField,
    ChoiceField,
    DateField,
    DateTimeField,
    DecimalField,
    EmailField,
    FloatField,
    IntegerField,
    ModelForm,
    MultipleChoiceField,
    StringField,
    TextField,
)
from trellis.datastructures import MultiDict
from trellis.exceptions import ConfigurationError
from trellis.http.response import HTMLResponse
from trellis.testing import TestClient

AUTH = {"authorization": "Bearer api"}


class Base(AsyncAttrs, DeclarativeBase):
    pass


class Status(enum.Enum):
    DRAFT = "draft"
    PUBLISHED = "published"


article_tag = Table(
    "forms_article_tag",
    Base.metadata,
    Column("article_id", ForeignKey("forms_article.id"), primary_key=True),
    Column("tag_id", ForeignKey("forms_tag.id"), primary_key=True),
)


class Author(Base):
    __tablename__ = "forms_author"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class Tag(Base):
    __tablename__ = "forms_tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(30), unique=True)

    def __str__(self) -> str:
        return f"#{self.name}"


class Publisher(Base):
    __tablename__ = "forms_publisher"

    code: Mapped[str] = mapped_column(String(10), primary_key=True)


class Article(Base):
    __tablename__ = "forms_article"
    __table_args__ = (UniqueConstraint("code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(50), unique=True)
    code: Mapped[str | None] = mapped_column(String(10))
    body: Mapped[str | None] = mapped_column(Text, comment="Markdown")
    status: Mapped[Status] = mapped_column(Enum(Status, name="forms_status"), default=Status.DRAFT)
    score: Mapped[decimal.Decimal | None] = mapped_column(Numeric(5, 2))
    rating: Mapped[float | None]
    views: Mapped[int] = mapped_column(default=0)
    public: Mapped[bool] = mapped_column(default=False)
    published_on: Mapped[datetime.date | None]
    remind_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime())
    contact_email: Mapped[str | None] = mapped_column(String(200))
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    author_id: Mapped[int] = mapped_column(ForeignKey("forms_author.id"))
    author: Mapped[Author] = relationship(foreign_keys=[author_id])
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("forms_author.id"))
    publisher_code: Mapped[str | None] = mapped_column(ForeignKey("forms_publisher.code"))
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    tags: Mapped[list[Tag]] = relationship(secondary=article_tag)


class ArticleForm(ModelForm):
    class Meta:
        model = Article
        labels = {"editor_id": "Reviewed by"}
        help_texts = {"title": "A short title."}


# -- fields from columns (no database) -------------------------------------------------------


def test_fields_come_from_the_columns() -> None:
    fields = ArticleForm.base_fields
    assert list(fields) == [
        "title",
        "slug",
        "code",
        "body",
        "status",
        "score",
        "rating",
        "views",
        "public",
        "published_on",
        "remind_at",
        "contact_email",
        "author_id",
        "editor_id",
        "publisher_code",
        "tags",
    ]  # id and created_at are the database's; extra (JSON) has no form field
    kinds = {name: type(field) for name, field in fields.items()}
    assert kinds == {
        "title": StringField,
        "slug": StringField,
        "code": StringField,
        "body": TextField,
        "status": ChoiceField,
        "score": DecimalField,
        "rating": FloatField,
        "views": IntegerField,
        "public": BooleanField,
        "published_on": DateField,
        "remind_at": DateTimeField,
        "contact_email": EmailField,
        "author_id": ChoiceField,
        "editor_id": ChoiceField,
        "publisher_code": ChoiceField,
        "tags": MultipleChoiceField,
    }
    required = {name for name, field in fields.items() if field.required}
    assert required == {"title", "slug", "author_id"}
    title = fields["title"]
    assert isinstance(title, StringField) and title.max_length == 100
    assert title.help_text == "A short title."
    assert fields["body"].help_text == "Markdown"  # the column comment
    score = fields["score"]
    assert isinstance(score, DecimalField)
    assert (score.max_digits, score.decimal_places) == (5, 2)
    assert fields["status"].initial is Status.DRAFT
    assert fields["views"].initial == 0
    assert fields["author_id"].label_text == "Author"  # the relationship's name
    assert fields["editor_id"].label_text == "Reviewed by"
    assert fields["publisher_code"].label_text == "Publisher code"


def test_the_json_model() -> None:
    schema = ArticleForm.model.model_json_schema()
    assert schema["title"] == "ArticleForm"
    assert schema["required"] == ["title", "slug", "author_id"]
    assert schema["properties"]["tags"]["items"] == {"type": "integer"}
    assert schema["properties"]["slug"]["maxLength"] == 50


def test_meta_fields_exclude_and_declared_fields() -> None:
    class Short(ModelForm):
        class Meta:
            model = Article
            fields = ["slug", "title", "created_at"]

        title = TextField(max_length=100)
        confirm = BooleanField(required=True)

    assert list(Short.base_fields) == ["slug", "title", "created_at", "confirm"]
    assert isinstance(Short.base_fields["title"], TextField)
    assert isinstance(Short.base_fields["created_at"], DateTimeField)

    class NoBody(ModelForm):
        class Meta:
            model = Article
            exclude = ["body", "tags", "extra"]

    assert "body" not in NoBody.base_fields and "tags" not in NoBody.base_fields

    Made = ModelForm.for_model(Tag, labels={"name": "Tag name"})
    assert Made.__name__ == "TagForm" and list(Made.base_fields) == ["name"]
    assert Made.base_fields["name"].label_text == "Tag name"


def test_mistakes_are_reported_when_the_form_is_built() -> None:
    class NoModel(ModelForm):
        pass

    with pytest.raises(ConfigurationError, match="needs the model"):
        NoModel()

    class Unknown(ModelForm):
        class Meta:
            model = Article
            fields = ["title", "nope"]

    with pytest.raises(ConfigurationError, match="'nope' not a column"):
        _ = Unknown.base_fields

    class JsonColumn(ModelForm):
        class Meta:
            model = Article
            fields = ["extra"]

    with pytest.raises(ConfigurationError, match="no form field for the column 'extra'"):
        _ = JsonColumn.model

    class NotMapped(ModelForm):
        class Meta:
            model = dict

    with pytest.raises(ConfigurationError, match="not a mapped"):
        _ = NotMapped.title


@pytest.mark.anyio
async def test_related_choices_need_the_session() -> None:
    with pytest.raises(ConfigurationError, match="pass db="):
        await ArticleForm().load()


# -- on a database ---------------------------------------------------------------------------


async def _seed(db: Database) -> None:
    await db.create_all(Base.metadata)
    async with db.transaction() as session:
        session.add_all(
            [
                Author(name="Ada"),
                Author(name="Bob"),
                Tag(name="python"),
                Tag(name="web"),
                Tag(name="db"),
                Publisher(code="ACME"),
            ]
        )


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url, pool_size=2, max_overflow=3)
    await _seed(db)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def sync_database(db_url: str) -> Iterator[Database]:
    """``database`` for ``TestClient`` tests: seeded, no connection left open on this loop."""
    db = Database(db_url, pool_size=2, max_overflow=3)

    async def prepare() -> None:
        try:
            await _seed(db)
        finally:
            await db.dispose()

    anyio.run(prepare)
    try:
        yield db
    finally:
        anyio.run(db.dispose)


def make_app(database: Database) -> App:
    app = App(debug=True)
    app.install(database)

    @app.route("/articles/new", methods=["GET", "POST"])
    async def new(request: Request, db: Session) -> Any:
        form = await ArticleForm.from_request(request, db=db)
        if form.is_valid:
            article = await form.save(db)
            return {"id": article.id}
        return HTMLResponse(form.render(), status_code=422 if form.is_bound else 200)

    @app.route("/articles/{id:int}/edit", methods=["GET", "POST"])
    async def edit(request: Request, id: int, db: Session) -> Any:
        article = await db.get(Article, id)
        form = await ArticleForm.from_request(request, db=db, instance=article)
        if form.is_valid:
            await form.save(db)
            return {"id": id}
        return HTMLResponse(form.render(), status_code=422 if form.is_bound else 200)

    @app.post("/api/articles", status_code=201)
    async def create(form: ArticleForm.Json, db: Session) -> dict[str, Any]:  # type: ignore[valid-type]
        article = await form.save(db)
        return {"id": article.id}

    @app.get("/api/articles/{id:int}")
    async def show(id: int, db: Session) -> dict[str, Any]:
        article = await db.get(Article, id)
        assert article is not None
        tags = await article.awaitable_attrs.tags
        return {
            "title": article.title,
            "slug": article.slug,
            "status": article.status.value,
            "author_id": article.author_id,
            "editor_id": article.editor_id,
            "publisher_code": article.publisher_code,
            "score": str(article.score) if article.score is not None else None,
            "views": article.views,
            "public": article.public,
            "published_on": article.published_on and article.published_on.isoformat(),
            "remind_at": article.remind_at and article.remind_at.isoformat(),
            "tags": sorted(t.name for t in tags),
        }

    return app


@pytest.fixture
def client(sync_database: Database) -> Iterator[TestClient]:
    with TestClient(make_app(sync_database)) as client:
        yield client


def token_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_selects_of_related_rows(client: TestClient) -> None:
    html = client.get("/articles/new").text
    author = html[html.index('<select id="id_author_id"') :]
    author = author[: author.index("</select>")]
    assert "required" in author.split(">")[0]
    assert '<option value="1">Ada</option>' in author and '<option value="2">Bob</option>' in author
    assert '<option value="">---------</option>' in author  # nothing chosen yet
    assert '<option value="ACME">Publisher #ACME</option>' in html  # no name: class and key
    tags = html[html.index('<select id="id_tags"') :]
    assert tags.startswith('<select id="id_tags" name="tags" multiple>')
    assert '<option value="3">#db</option>' in tags  # Tag.__str__
    assert '<option value="draft" selected>Draft</option>' in html  # the column default
    assert 'maxlength="100"' in html


def test_create_then_edit(client: TestClient) -> None:
    token = token_of(client.get("/articles/new").text)
    created = client.post(
        "/articles/new",
        data={
            "title": "Hello",
            "slug": "hello",
            "author_id": "2",
            "tags": ["1", "3"],
            "status": "published",
            "score": "12.50",
            "views": "7",
            "public": "on",
            "published_on": "2024-05-01",
            "remind_at": "2024-05-02T09:30",
            "publisher_code": "ACME",
            "csrf_token": token,
        },
    )
    assert created.status_code == 200, created.text
    article_id = created.json()["id"]
    assert client.get(f"/api/articles/{article_id}").json() == {
        "title": "Hello",
        "slug": "hello",
        "status": "published",
        "author_id": 2,
        "editor_id": None,
        "publisher_code": "ACME",
        "score": "12.50",
        "views": 7,
        "public": True,
        "published_on": "2024-05-01",
        "remind_at": "2024-05-02T09:30:00+00:00",
        "tags": ["db", "python"],
    }

    page = client.get(f"/articles/{article_id}/edit").text
    assert 'id="id_title" name="title" required aria-describedby="id_title_help"' in page
    assert 'value="Hello"' in page
    assert '<option value="2" selected>Bob</option>' in page
    assert '<option value="1" selected>#python</option>' in page
    assert '<option value="2">#web</option>' in page
    assert '<option value="3" selected>#db</option>' in page
    assert 'value="2024-05-02T09:30"' in page
    assert 'value="12.50"' in page

    edited = client.post(
        f"/articles/{article_id}/edit",
        data={
            "title": "Hello again",
            "slug": "hello",  # its own slug: not taken
            "author_id": "1",
            "editor_id": "2",
            "tags": ["2"],
            "status": "draft",
            "csrf_token": token_of(page),
        },
    )
    assert edited.status_code == 200, edited.text
    after = client.get(f"/api/articles/{article_id}").json()
    assert after["title"] == "Hello again"
    assert (after["author_id"], after["editor_id"]) == (1, 2)
    assert after["tags"] == ["web"]
    assert after["public"] is False  # unticked
    assert after["score"] is None and after["views"] == 0


def test_bad_choices_and_taken_slugs(client: TestClient) -> None:
    token = token_of(client.get("/articles/new").text)
    base = {"title": "A", "slug": "a", "author_id": "1", "csrf_token": token}
    assert client.post("/articles/new", data=base).status_code == 200
    taken = client.post("/articles/new", data={**base, "slug": "a"})
    assert taken.status_code == 422
    assert "Article with this Slug already exists." in taken.text
    bad = client.post(
        "/articles/new", data={**base, "slug": "b", "author_id": "99", "tags": ["1", "42"]}
    )
    assert bad.status_code == 422
    assert bad.text.count("Select a valid choice.") == 2
    assert '<option value="1" selected>#python</option>' in bad.text  # kept


def test_the_json_api_from_the_same_form(client: TestClient) -> None:
    created = client.post(
        "/api/articles",
        json={"title": "Api", "slug": "api", "author_id": 1, "tags": [2, 3], "status": "draft"},
        headers=AUTH,
    )
    assert created.status_code == 201, created.text
    shown = client.get(f"/api/articles/{created.json()['id']}").json()
    assert shown["tags"] == ["db", "web"] and shown["views"] == 0
    bad = client.post(
        "/api/articles",
        json={"title": "", "slug": "api", "author_id": 7, "tags": [9], "views": "x"},
        headers=AUTH,
    )
    assert bad.status_code == 422
    assert [e["loc"] for e in bad.json()["errors"]] == [
        ["body", "title"],
        ["body", "views"],
    ]  # the model's checks first; choices and uniqueness once those pass
    bad = client.post(
        "/api/articles",
        json={"title": "T", "slug": "api", "author_id": 7, "tags": [9]},
        headers=AUTH,
    )
    assert bad.json()["errors"] == [
        {"loc": ["body", "author_id"], "msg": "Select a valid choice.", "type": "invalid_choice"},
        {"loc": ["body", "tags"], "msg": "Select a valid choice.", "type": "invalid_choice"},
        {
            "loc": ["body", "slug"],
            "msg": "Article with this Slug already exists.",
            "type": "unique",
        },
    ]
    taken = client.post(
        "/api/articles", json={"title": "T", "slug": "api", "author_id": 1}, headers=AUTH
    )
    assert taken.json()["errors"] == [
        {
            "loc": ["body", "slug"],
            "msg": "Article with this Slug already exists.",
            "type": "unique",
        }
    ]


@pytest.mark.anyio
async def test_save_outside_a_request(database: Database) -> None:
    async with database.transaction() as db:
        form = ArticleForm(
            MultiDict([("title", "T"), ("slug", "t"), ("author_id", "1"), ("tags", "2")]), db=db
        )
        assert await form.validate()
        article = await form.save()
        assert article.id is not None and form.instance is article
        second = ArticleForm(MultiDict([("title", "U"), ("slug", "t")]), db=db)
        assert not await second.validate()
        with pytest.raises(RuntimeError, match="not valid"):
            await second.save(db)
    async with database.transaction() as db:
        saved = await db.scalar(select(Article).where(Article.slug == "t"))
        assert saved is not None and [t.name for t in await saved.awaitable_attrs.tags] == ["web"]
        # editing with an instance passed to save()
        form = ArticleForm(
            MultiDict([("title", "T2"), ("slug", "t"), ("author_id", "2")]),
            db=db,
            instance=saved,
        )
        assert await form.validate()
        await form.save(db, instance=saved)
        assert saved.title == "T2" and await saved.awaitable_attrs.tags == []


class Note(Base):
    __tablename__ = "forms_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[str] = mapped_column(String(20))  # a name of the Form API


@pytest.mark.anyio
async def test_a_column_named_like_the_api_is_reached_by_key() -> None:
    NoteForm = ModelForm.for_model(Note)
    form = NoteForm(MultiDict([("data", "hello")]))
    assert await form.validate()
    assert form.data == {"data": "hello"}  # the API's data: the values
    assert form["data"].value == "hello"
    assert 'name="data"' in str(form.render())


class Page(Base):
    __tablename__ = "forms_page"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(50))
    body: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(String(100), default="")
    views: Mapped[int] = mapped_column(default=0)


@pytest.mark.anyio
async def test_blank_not_null_inputs_with_a_default_get_the_default(database: Database) -> None:
    await database.create_all(Base.metadata)
    PageForm = ModelForm.for_model(Page)
    async with database.transaction() as db:
        form = PageForm(MultiDict([("title", "T"), ("body", ""), ("summary", "")]), db=db)
        assert await form.validate(), form.errors
        page = await form.save()
        assert (page.body, page.summary, page.views) == ("", "", 0)
    async with database.transaction() as db:
        saved = await db.get(Page, page.id)
        assert saved is not None
        saved.body, saved.summary, saved.views = "text", "short", 5
    async with database.transaction() as db:
        saved = await db.get(Page, page.id)
        form = PageForm(
            MultiDict([("title", "T"), ("body", ""), ("summary", ""), ("views", "")]),
            db=db,
            instance=saved,
        )
        assert await form.validate(), form.errors
        await form.save()  # blank resets to the default: no NULL in a NOT NULL column
    async with database.transaction() as db:
        saved = await db.get(Page, page.id)
        assert saved is not None
        assert (saved.body, saved.summary, saved.views) == ("", "", 0)
