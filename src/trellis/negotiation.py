"""Content negotiation: one handler, several renderings chosen by the ``Accept`` header.

A route that lists ``renderers=`` returns plain data; Trellis picks the renderer the client
prefers (``Accept`` with quality values and wildcards), or answers 406 Not Acceptable with the
types it offers. JSON, HTML through a template, CSV and XML are built in; a renderer is any
object with a ``media_type`` and a ``render(data, request)`` method, so MessagePack or YAML are
a few lines each.

Example:
    ```python
    from trellis import App
    from trellis.negotiation import CSVRenderer, JSONRenderer

    app = App()

    @app.get("/scores", renderers=[JSONRenderer(), CSVRenderer()])
    async def scores() -> list[dict[str, object]]:
        return [{"name": "ann", "points": 3}]
    ```
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol
from xml.sax.saxutils import escape, quoteattr

from trellis.exceptions import ConfigurationError, HTTPError
from trellis.http import _json
from trellis.http.response import Response

if TYPE_CHECKING:
    from trellis.http.request import Request

__all__ = [
    "CSVRenderer",
    "JSONRenderer",
    "NotAcceptableError",
    "Renderer",
    "TemplateRenderer",
    "XMLRenderer",
    "choose",
    "parse_accept",
]


class NotAcceptableError(HTTPError):
    """406: none of the route's renderings is acceptable to the client."""

    status = 406

    def __init__(self, offered: Sequence[str]) -> None:
        self.offered = tuple(offered)
        super().__init__(
            None,
            f"This resource is available as {', '.join(self.offered)}",
            extra={"available": list(self.offered)},
        )


class Renderer(Protocol):
    """What a renderer is: a media type and a way to turn data into a response."""

    media_type: str

    def render(self, data: Any, request: Request) -> Response:
        """Return the response for ``data``."""
        ...  # pragma: no cover - protocol


class JSONRenderer:
    """``application/json`` (orjson)."""

    media_type = "application/json"

    def render(self, data: Any, request: Request) -> Response:
        """Encode ``data`` as JSON."""
        return Response(_json.dumps(data), media_type=self.media_type)


class TemplateRenderer:
    """``text/html`` through a template: the data is in the context as ``data``.

    Args:
        name: The template (``app.templates`` must be configured).
        context_name: The name the data has in the template.
    """

    media_type = "text/html"

    def __init__(self, name: str, *, context_name: str = "data") -> None:
        self.name = name
        self.context_name = context_name

    def render(self, data: Any, request: Request) -> Response:
        """Render the template with the data."""
        from trellis.templating import render

        return render(self.name, request, **{self.context_name: data})


class CSVRenderer:
    """``text/csv``: a list of mappings (or of models dumped to mappings), one row each.

    The columns are the keys of the first row, in order. Cells that a spreadsheet would read as
    a formula (starting with ``=``, ``+``, ``-``, ``@``) are prefixed with ``'``.
    """

    media_type = "text/csv"

    def render(self, data: Any, request: Request) -> Response:
        """Write the rows as CSV."""
        rows = [data] if isinstance(data, Mapping) else list(data or [])
        out = io.StringIO()
        if rows:
            if not all(isinstance(row, Mapping) for row in rows):
                raise TypeError("CSVRenderer renders a list of mappings")
            columns = list(rows[0])
            writer = csv.writer(out)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_cell(row.get(col)) for col in columns])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell starting with these runs as a formula in spreadsheet programs (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


class XMLRenderer:
    """``application/xml``: mappings become elements, lists repeat an ``item`` element.

    Args:
        root: The name of the document element.
    """

    media_type = "application/xml"

    def __init__(self, root: str = "response") -> None:
        self.root = root

    def render(self, data: Any, request: Request) -> Response:
        """Write the data as XML."""
        body = '<?xml version="1.0" encoding="utf-8"?>' + _xml(self.root, data)
        return Response(body, media_type="application/xml; charset=utf-8")


def _xml(tag: str, value: Any, attrs: str = "") -> str:
    if isinstance(value, Mapping):
        inner = "".join(_member(str(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        inner = "".join(_xml("item", v) for v in value)
    elif value is None:
        return f"<{tag}{attrs}/>"
    elif isinstance(value, bool):
        inner = "true" if value else "false"
    else:
        inner = escape(str(value))
    return f"<{tag}{attrs}>{inner}</{tag}>"


def _member(key: str, value: Any) -> str:
    # Keys become element names only when they are safe XML names; others become
    # <entry key="...">, so no key can inject markup.
    if (
        key
        and (key[0].isalpha() or key[0] == "_")
        and all(c.isalnum() or c in "_-." for c in key)
        and not key.lower().startswith("xml")
    ):
        return _xml(key, value)
    return _xml("entry", value, f" key={quoteattr(key)}")


def parse_accept(header: str | None) -> list[tuple[str, float]]:
    """Return the media ranges of an ``Accept`` header, most preferred first.

    Ranges with ``q=0`` are dropped; ties keep the more specific range first.
    """
    if not header:
        return [("*/*", 1.0)]
    ranges: list[tuple[str, float, int, int]] = []
    for index, part in enumerate(header.split(",")):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for param in fields[1:]:
            if param.lower().startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        specificity = 0 if media == "*/*" else 1 if media.endswith("/*") else 2
        ranges.append((media, q, specificity, -index))
    ranges.sort(key=lambda r: (r[1], r[2], r[3]), reverse=True)
    return [(media, q) for media, q, _, _ in ranges]


def _matches(media_range: str, media_type: str) -> bool:
    if media_range == "*/*":
        return True
    if media_range.endswith("/*"):
        return media_type.split("/")[0] == media_range[:-2]
    return media_range == media_type


def choose(renderers: Sequence[Any], accept: str | None) -> Any:
    """Pick the renderer the client prefers; the route's first one wins ties and ``*/*``.

    Raises:
        NotAcceptableError: nothing the client accepts is offered.
    """
    for media_range, _ in parse_accept(accept):
        for renderer in renderers:
            if _matches(media_range, renderer.media_type):
                return renderer
    raise NotAcceptableError([r.media_type for r in renderers])


def check_renderers(renderers: Iterable[Any], where: str) -> tuple[Any, ...]:
    """Validate a route's ``renderers=`` at start-up."""
    found = tuple(renderers)
    if not found:
        raise ConfigurationError(f"{where}: renderers= is empty")
    for renderer in found:
        if not isinstance(getattr(renderer, "media_type", None), str) or not callable(
            getattr(renderer, "render", None)
        ):
            raise ConfigurationError(
                f"{where}: {renderer!r} is not a renderer (it needs a media_type and a"
                " render(data, request) method)"
            )
    return found
