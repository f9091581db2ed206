"""Path parameter converters: how ``{name:type}`` in a route path matches and converts.

Built in: ``str`` (default, one segment), ``int``, ``float``, ``slug``, ``uuid`` and ``path``
(the rest of the path, slashes included). Register your own with ``register_converter``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, ClassVar

__all__ = [
    "Converter",
    "FloatConverter",
    "IntConverter",
    "PathConverter",
    "SlugConverter",
    "StringConverter",
    "UUIDConverter",
    "get_converter",
    "register_converter",
]


class Converter:
    r"""Base class of path converters.

    Subclasses set ``regex`` (matched against one path segment, or against the rest of the
    path when ``matches_slash`` is true) and may override ``to_python`` and ``to_url``.
    ``to_python`` may raise ``ValueError`` to reject a segment the regex let through (the
    route then does not match). ``priority`` orders converters tried at the same place:
    higher first, so ``{id:int}`` is tried before ``{name}``.

    Example:
        ```python
        from datetime import date

        from trellis import App
        from trellis.routing import Converter, register_converter
        from trellis.testing import TestClient


        class DateConverter(Converter):
            regex = r"\d{4}-\d{2}-\d{2}"

            def to_python(self, value: str) -> date:
                return date.fromisoformat(value)

            def to_url(self, value: date) -> str:
                return value.isoformat()


        register_converter("date", DateConverter)
        app = App()


        @app.get("/archive/{day:date}", name="archive")
        async def archive(day: date) -> dict[str, str]:
            return {"weekday": day.strftime("%A")}


        with TestClient(app) as client:
            assert client.get("/archive/2024-05-17").json() == {"weekday": "Friday"}
            assert client.get("/archive/yesterday").status_code == 404
        assert app.url_for("archive", day=date(2024, 5, 17)) == "/archive/2024-05-17"
        ```
    """

    regex: ClassVar[str] = "[^/]+"
    matches_slash: ClassVar[bool] = False
    priority: ClassVar[int] = 10
    #: The type ``to_python`` returns, when known: a handler parameter annotated with it needs
    #: no further validation.
    python_type: ClassVar[type | None] = None

    def __init__(self) -> None:
        self.pattern = re.compile(self.regex)

    def to_python(self, value: str) -> Any:
        """Convert a matched segment to the handler's value."""
        return value

    def to_url(self, value: Any) -> str:
        """Convert a value back to its path form (for ``url_for``)."""
        return str(value)


class StringConverter(Converter):
    """``{name}`` or ``{name:str}``: one non-empty path segment."""

    python_type = str

    priority = 0

    def to_url(self, value: Any) -> str:
        """Refuse values that would change the path's shape."""
        text = str(value)
        if not text or "/" in text:
            raise ValueError(f"a str path parameter cannot be empty or contain '/': {text!r}")
        return text


class IntConverter(Converter):
    """``{name:int}``: a non-negative decimal integer."""

    python_type = int

    regex = "[0-9]+"
    priority = 30

    def to_python(self, value: str) -> int:  # noqa: D102
        return int(value)

    def to_url(self, value: Any) -> str:  # noqa: D102
        number = int(value)
        if number < 0:
            raise ValueError("negative numbers are not supported by the int converter")
        return str(number)


class FloatConverter(Converter):
    """``{name:float}``: a non-negative decimal number (``3`` or ``3.14``)."""

    python_type = float

    regex = r"[0-9]+(?:\.[0-9]+)?"
    priority = 25

    def to_python(self, value: str) -> float:  # noqa: D102
        return float(value)

    def to_url(self, value: Any) -> str:  # noqa: D102
        number = float(value)
        if number < 0 or number != number or number in (float("inf"), float("-inf")):
            raise ValueError("the float converter takes finite non-negative numbers")
        return repr(number)


class SlugConverter(Converter):
    """``{name:slug}``: ASCII letters, digits, hyphens and underscores."""

    python_type = str

    regex = "[-a-zA-Z0-9_]+"
    priority = 15


class UUIDConverter(Converter):
    """``{name:uuid}``: a UUID in its canonical 8-4-4-4-12 hex form; gives ``uuid.UUID``."""

    python_type = uuid.UUID

    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    priority = 40

    def to_python(self, value: str) -> uuid.UUID:  # noqa: D102
        return uuid.UUID(value)


class PathConverter(Converter):
    """``{name:path}``: the rest of the path, slashes included (must end the route path)."""

    python_type = str

    regex = ".*"
    matches_slash = True
    priority = -10


_CONVERTERS: dict[str, type[Converter]] = {
    "str": StringConverter,
    "int": IntConverter,
    "float": FloatConverter,
    "slug": SlugConverter,
    "uuid": UUIDConverter,
    "path": PathConverter,
}


def register_converter(name: str, converter: type[Converter]) -> None:
    """Make ``{param:name}`` available in route paths of every app."""
    if not name.isidentifier():
        raise ValueError(f"converter name must be an identifier, got {name!r}")
    _CONVERTERS[name] = converter


def get_converter(name: str) -> Converter:
    """Return a converter instance for ``name``.

    Raises:
        KeyError: no converter has that name.
    """
    try:
        cls = _CONVERTERS[name]
    except KeyError:
        known = ", ".join(sorted(_CONVERTERS))
        raise KeyError(f"unknown path converter {name!r} (known: {known})") from None
    return cls()
