"""Route path templates: parse ``/users/{id:int}`` once, match segments, build URLs back."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from trellis.exceptions import ConfigurationError, URLBuildError
from trellis.routing.converters import Converter, StringConverter, get_converter

_PARAM_RE = re.compile(r"{([^{}:]*)(?::([^{}]*))?}")

# Segment kinds
STATIC = 0
PARAM = 1  # the whole segment is one parameter
COMPOSITE = 2  # text and parameters mixed, matched by one regex
REST = 3  # a converter that takes the rest of the path (``path``)


class Segment:
    __slots__ = ("converters", "groups", "key", "kind", "literal", "names", "pattern", "text")

    def __init__(
        self,
        kind: int,
        text: str,
        names: tuple[str, ...] = (),
        converters: tuple[Converter, ...] = (),
        pattern: re.Pattern[str] | None = None,
        key: str = "",
        groups: tuple[int, ...] = (),
        literal: int = 0,
    ) -> None:
        self.kind = kind
        self.text = text
        self.names = names
        self.converters = converters
        self.pattern = pattern
        # Two segments with the same key match the same strings (names do not matter).
        self.key = key
        # COMPOSITE: the regex group holding each parameter (a converter's regex may have
        # groups of its own, so they are not simply 1, 2, 3 ...).
        self.groups = groups
        # COMPOSITE: how many literal characters surround the parameters (more is more specific).
        self.literal = literal


class PathTemplate:
    """A parsed route path.

    Args:
        path: The path with ``{name}`` / ``{name:converter}`` placeholders.
        where: Who declared it, for error messages.
    """

    __slots__ = ("converters", "is_static", "param_names", "path", "segments", "shape")

    def __init__(self, path: str, where: str = "") -> None:
        if not path.startswith("/"):
            raise ConfigurationError(f"route path {path!r} must start with '/' ({where})")
        self.path = path
        segments: list[Segment] = []
        names: list[str] = []
        raw_segments = path[1:].split("/")
        for index, raw in enumerate(raw_segments):
            segment = _parse_segment(raw, path, where)
            if segment.kind == REST and index != len(raw_segments) - 1:
                raise ConfigurationError(
                    f"route path {path!r}: a {{name:path}} parameter must be the last segment"
                    f" ({where})"
                )
            for name in segment.names:
                if name in names:
                    raise ConfigurationError(
                        f"route path {path!r} uses the parameter {name!r} twice ({where})"
                    )
                names.append(name)
            segments.append(segment)
        self.segments = tuple(segments)
        self.param_names = tuple(names)
        self.converters: dict[str, Converter] = {}
        for seg in segments:
            self.converters.update(zip(seg.names, seg.converters, strict=True))
        self.is_static = not names
        self.shape = "/" + "/".join(s.key for s in segments)

    def build(self, params: Mapping[str, Any]) -> str:
        """Fill the placeholders with ``params`` (converted and percent-encoded)."""
        if self.is_static:
            return self.path
        missing = [n for n in self.param_names if n not in params]
        if missing:
            raise URLBuildError(f"route {self.path!r} needs the parameter(s) {', '.join(missing)}")
        out: list[str] = []
        for seg in self.segments:
            if seg.kind == STATIC:
                out.append(seg.text)
                continue

            def fill(match: re.Match[str]) -> str:
                name = match.group(1).strip()
                conv = self.converters[name]
                try:
                    text = conv.to_url(params[name])
                except Exception as exc:  # a converter's to_url may fail in any way
                    raise URLBuildError(
                        f"route {self.path!r}: bad value for {name!r}: {exc}"
                    ) from None
                if not conv.pattern.fullmatch(text):
                    raise URLBuildError(
                        f"route {self.path!r}: value {text!r} for {name!r} does not match"
                        f" {conv.regex!r}"
                    )
                safe = "/" if conv.matches_slash else ""
                return quote(text, safe=safe + "-._~!$&'()*+,;=:@")

            out.append(_PARAM_RE.sub(fill, seg.text))
        return "/" + "/".join(out)


def _parse_segment(raw: str, path: str, where: str) -> Segment:
    matches = list(_PARAM_RE.finditer(raw))
    if not matches:
        if "{" in raw or "}" in raw:
            raise ConfigurationError(f"route path {path!r} has an unbalanced brace ({where})")
        return Segment(STATIC, raw, key=raw)
    names: list[str] = []
    convs: list[Converter] = []
    for m in matches:
        name = m.group(1).strip()
        if not name.isidentifier():
            raise ConfigurationError(
                f"route path {path!r}: {m.group(0)!r} needs a valid identifier as its name"
                f" ({where})"
            )
        conv_name = (m.group(2) or "str").strip()
        try:
            convs.append(get_converter(conv_name))
        except KeyError as exc:
            raise ConfigurationError(f"route path {path!r}: {exc.args[0]} ({where})") from None
        names.append(name)
    whole = len(matches) == 1 and matches[0].group(0) == raw
    if whole:
        conv = convs[0]
        kind = REST if conv.matches_slash else PARAM
        return Segment(
            kind, raw, (names[0],), (conv,), conv.pattern, key=f"{{{type(conv).__name__}}}"
        )
    if any(c.matches_slash for c in convs):
        raise ConfigurationError(
            f"route path {path!r}: a path parameter must fill its whole segment ({where})"
        )
    regex, key, pos = "", "", 0
    groups: list[int] = []
    group = 1
    for m, conv in zip(matches, convs, strict=True):
        literal = raw[pos : m.start()]
        if "{" in literal or "}" in literal:
            raise ConfigurationError(f"route path {path!r} has an unbalanced brace ({where})")
        regex += re.escape(literal) + f"({conv.regex})"
        key += literal + f"{{{type(conv).__name__}}}"
        groups.append(group)
        group += 1 + conv.pattern.groups
        pos = m.end()
    if "{" in raw[pos:] or "}" in raw[pos:]:
        raise ConfigurationError(f"route path {path!r} has an unbalanced brace ({where})")
    regex += re.escape(raw[pos:])
    key += raw[pos:]
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise ConfigurationError(
            f"route path {path!r}: the segment {raw!r} does not make a valid regex ({exc});"
            f" a converter used twice in one segment cannot have named groups ({where})"
        ) from None
    literal_chars = len(raw) - sum(len(m.group(0)) for m in matches)
    return Segment(
        COMPOSITE,
        raw,
        tuple(names),
        tuple(convs),
        pattern,
        key=key,
        groups=tuple(groups),
        literal=literal_chars,
    )


class HostTemplate:
    """A host pattern such as ``{tenant}.example.com`` (a ``str`` part stops at dots).

    Host names are matched case-insensitively and the port is ignored. A converter other than
    ``str`` (``{id:int}.example.com``) gives converted values, like path parameters.
    """

    __slots__ = ("converters", "names", "pattern", "template")

    def __init__(self, template: str) -> None:
        self.template = template
        names: list[str] = []
        converters: dict[str, Converter] = {}
        regex, pos = "", 0
        for m in _PARAM_RE.finditer(template):
            name = m.group(1).strip()
            conv_name = (m.group(2) or "str").strip()
            if not name.isidentifier():
                raise ConfigurationError(f"host pattern {template!r}: bad name {name!r}")
            if name in converters:
                raise ConfigurationError(
                    f"host pattern {template!r} uses the parameter {name!r} twice"
                )
            try:
                conv = get_converter(conv_name)
            except KeyError as exc:
                raise ConfigurationError(f"host pattern {template!r}: {exc.args[0]}") from None
            part = "[^.:]+" if isinstance(conv, StringConverter) else conv.regex
            regex += re.escape(template[pos : m.start()].lower()) + f"(?P<{name}>{part})"
            names.append(name)
            converters[name] = conv
            pos = m.end()
        regex += re.escape(template[pos:].lower())
        outside = _PARAM_RE.sub("", template)
        if "{" in outside or "}" in outside:
            raise ConfigurationError(f"host pattern {template!r} has an unbalanced brace")
        self.names = tuple(names)
        self.converters = converters
        # The port is ignored: routes are chosen by host name.
        try:
            self.pattern = re.compile(regex + r"(?::[0-9]+)?")
        except re.error as exc:
            raise ConfigurationError(f"host pattern {template!r} is not valid: {exc}") from None

    def match(self, host: str) -> dict[str, Any] | None:
        """Return the (converted) host parameters when ``host`` matches, else ``None``."""
        m = self.pattern.fullmatch(host.lower())
        if m is None:
            return None
        values: dict[str, Any] = {}
        for name, conv in self.converters.items():
            try:
                values[name] = conv.to_python(m.group(name))
            except ValueError:
                return None
        return values
