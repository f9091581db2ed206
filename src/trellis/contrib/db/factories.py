"""Model factories for tests: objects with sensible values, overridden where a test cares.

```py
class UserFactory(Factory[User]):
    name = "Ann"
    email = Sequence(lambda n: f"user{n}@example.com")

class ArticleFactory(Factory[Article]):
    title = Sequence(lambda n: f"Article {n}")
    slug = LazyAttribute(lambda a: a.title.lower().replace(" ", "-"))
    author = SubFactory(UserFactory)

article = ArticleFactory.build(title="Hello")              # not saved
article = await ArticleFactory.create(session)             # added and flushed: has its id
articles = await ArticleFactory.create_batch(session, 3, author__name="Bob")
```

A factory's attributes are the model's constructor arguments: plain values (shared by every
object: give a mutable default through ``LazyAttribute``), ``Sequence`` (a number that grows
by one for each object the factory makes), ``LazyAttribute`` (computed from the object's
other values) and ``SubFactory`` (a related object made by another factory; assign it to a
relationship, and ``name__field=`` overrides the related object's fields). Keyword
arguments override any of them.
"""

from __future__ import annotations

import itertools
import typing
from collections.abc import Callable, Iterator
from types import FunctionType
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["Factory", "LazyAttribute", "Sequence", "SubFactory"]

M = TypeVar("M")
T = TypeVar("T")


class Sequence(Generic[T]):
    """``fn(n)``, where ``n`` is 1 for the factory's first object, 2 for the next...

    Every ``Sequence`` of one object gets the same ``n``.
    """

    def __init__(self, fn: Callable[[int], T]) -> None:
        self.fn = fn


class LazyAttribute(Generic[T]):
    """``fn(obj)``: a value computed from the object's other values (``obj.title``).

    ``obj`` is not the model instance, which does not exist yet, but a view of the values
    it is about to get; they are worked out in whatever order the functions need them.
    """

    def __init__(self, fn: Callable[[Any], T]) -> None:
        self.fn = fn


class SubFactory(Generic[M]):
    """A related object made by ``factory``, with ``defaults`` for its fields.

    Assign it to a relationship (``author = SubFactory(UserFactory)``): ``create()`` adds the
    object, and the relationship cascades to the related one, so one flush inserts both.
    """

    def __init__(self, factory: type[Factory[M]], **defaults: Any) -> None:
        self.factory = factory
        self.defaults = defaults


class _Values:
    """The values of the object being built, each worked out when first asked for."""

    def __init__(
        self,
        factory: type[Factory[Any]],
        declarations: dict[str, Any],
        overrides: dict[str, Any],
        nested: dict[str, dict[str, Any]],
        n: int,
    ) -> None:
        self._factory = factory
        self._declarations = declarations
        self._nested = nested
        self._n = n
        self._done: dict[str, Any] = dict(overrides)
        self._busy: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._done:
            return self._done[name]
        if name not in self._declarations:
            raise AttributeError(f"{self._factory.__name__} has no attribute {name!r}")
        if name in self._busy:
            cycle = " -> ".join([*self._busy[self._busy.index(name) :], name])
            raise ValueError(
                f"{self._factory.__name__}: the attributes depend on each other: {cycle}"
            )
        self._busy.append(name)
        try:
            value = self._resolve(name, self._declarations[name])
        finally:
            self._busy.pop()
        self._done[name] = value
        return value

    def _resolve(self, name: str, declaration: Any) -> Any:
        if isinstance(declaration, Sequence):
            return declaration.fn(self._n)
        if isinstance(declaration, LazyAttribute):
            return declaration.fn(self)
        if isinstance(declaration, SubFactory):
            return declaration.factory.build(
                **{**declaration.defaults, **self._nested.get(name, {})}
            )
        return declaration

    def all(self) -> dict[str, Any]:
        for name in self._declarations:
            getattr(self, name)
        return self._done


class Factory(Generic[M]):
    """The base of model factories: ``class ArticleFactory(Factory[Article]): ...``.

    The model is the type argument (or a ``model = Article`` attribute). See the module
    documentation for the attributes.
    """

    #: The model class the factory makes.
    model: ClassVar[type[Any]]
    _declarations: ClassVar[dict[str, Any]] = {}
    _counter: ClassVar[Iterator[int]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in () if "model" in vars(cls) else vars(cls).get("__orig_bases__", ()):
            origin = typing.get_origin(base)
            if isinstance(origin, type) and issubclass(origin, Factory):
                (model,) = typing.get_args(base)
                # A TypeVar (or Any) is no model: a base class for factories.
                if isinstance(model, type) and model is not Any:
                    cls.model = model
        cls._declarations = {
            **cls._declarations,
            **{
                name: value
                for name, value in vars(cls).items()
                if not name.startswith("_") and name != "model" and not _is_method(value)
            },
        }
        cls._counter = itertools.count(1)

    def __init__(self) -> None:
        raise TypeError(f"{type(self).__name__}.build() or .create() makes objects")

    @classmethod
    def reset_sequence(cls, to: int = 1) -> None:
        """Start the ``Sequence`` numbers again at ``to`` (the next object gets it)."""
        cls._counter = itertools.count(to)

    @classmethod
    def attributes(cls, **overrides: Any) -> dict[str, Any]:
        """The constructor arguments of the next object, without making it."""
        direct: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for key, value in overrides.items():
            name, sep, field = key.partition("__")
            if sep:
                if not isinstance(cls._declarations.get(name), SubFactory):
                    raise TypeError(
                        f"{cls.__name__}: {key}= sets a field of {name}, which is not a SubFactory"
                    )
                nested.setdefault(name, {})[field] = value
            else:
                direct[key] = value
        return _Values(cls, cls._declarations, direct, nested, next(cls._counter)).all()

    @classmethod
    def build(cls, **overrides: Any) -> M:
        """A new object, not added to any session; ``overrides`` replace declared values."""
        model: Callable[..., M] | None = getattr(cls, "model", None)
        if model is None:
            raise TypeError(f"{cls.__name__} has no model: class {cls.__name__}(Factory[Article])")
        return model(**cls.attributes(**overrides))

    @classmethod
    def build_batch(cls, size: int, **overrides: Any) -> list[M]:
        """``size`` new objects, not added to any session."""
        return [cls.build(**overrides) for _ in range(size)]

    @classmethod
    async def create(cls, session: AsyncSession, **overrides: Any) -> M:
        """A new object added to ``session`` and flushed (its id is known; no commit)."""
        obj = cls.build(**overrides)
        session.add(obj)
        await session.flush()
        return obj

    @classmethod
    async def create_batch(cls, session: AsyncSession, size: int, **overrides: Any) -> list[M]:
        """``size`` new objects added to ``session`` and flushed together."""
        objects = cls.build_batch(size, **overrides)
        session.add_all(objects)
        await session.flush()
        return objects


def _is_method(value: Any) -> bool:
    return isinstance(value, FunctionType | classmethod | staticmethod | property)
