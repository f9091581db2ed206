"""Small HTML builders: every value escaped, ``Markup`` only for the tags written here."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from markupsafe import Markup, escape

__all__ = ["ErrorList", "attrs_html", "normalise_attrs", "tag"]

_ATTR_NAME = re.compile(r"^[a-zA-Z_:][-a-zA-Z0-9_:.]*$")


def normalise_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Python keyword names as HTML attribute names: ``class_`` -> ``class``, ``data_x`` ->
    ``data-x``.

    Raises:
        ValueError: A name that is not a valid attribute name (it would break out of the tag).
    """
    out: dict[str, Any] = {}
    for name, value in attrs.items():
        html_name = name.rstrip("_").replace("_", "-") if name not in ("", "_") else name
        if not _ATTR_NAME.match(html_name):
            raise ValueError(f"{name!r} is not a valid HTML attribute name")
        out[html_name] = value
    return out


def attrs_html(attrs: Mapping[str, Any]) -> Markup:
    """`` name="value"`` pairs: ``True`` writes the bare name, ``False`` and ``None`` nothing.

    Names must be valid already (``normalise_attrs``); values are escaped.
    """
    parts: list[str] = []
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        if value is True:
            parts.append(f" {name}")
        else:
            parts.append(f' {name}="{escape(value)}"')
    return Markup("".join(parts))


def tag(name: str, attrs: Mapping[str, Any], content: Any = None) -> Markup:
    """``<name attrs>content</name>``, or a void element when ``content`` is ``None``."""
    opening = Markup(f"<{name}") + attrs_html(attrs) + Markup(">")
    if content is None:
        return opening
    return opening + escape(content) + Markup(f"</{name}>")


class ErrorList(list[str]):
    """The messages of one field (or of the form); renders as an accessible list.

    It is a plain ``list`` of ``str`` (``form.errors["title"][0]``, ``len(...)``); in a
    template ``{{ form.title.errors }}`` writes ``<ul id="..." class="field-errors">`` with
    one ``<li>`` per message (nothing at all when empty). The ``id`` is what the input's
    ``aria-describedby`` points at.
    """

    def __init__(
        self, messages: Iterable[str] = (), *, id: str | None = None, form_wide: bool = False
    ) -> None:
        super().__init__(str(m) for m in messages)
        self.id = id
        self.form_wide = form_wide

    def __html__(self) -> str:
        if not self:
            return ""
        items = Markup("").join(tag("li", {}, message) for message in self)
        attrs: dict[str, Any] = {"id": self.id}
        if self.form_wide:  # announced at once: the page came back with problems
            attrs.update({"class": "errors", "role": "alert"})
        else:
            attrs["class"] = "field-errors"
        return str(tag("ul", attrs, items))
