"""The compiled route matcher: a dict for static paths, a segment tree for the rest.

No IO and no per-request state live here. ``Matcher.match`` walks the tree once, static
children first, then parameters by converter priority, backtracking only when a branch fails.
"""

from __future__ import annotations

from typing import Any

from trellis.exceptions import RouteConflictError
from trellis.routing._template import COMPOSITE, PARAM, REST, STATIC, PathTemplate, Segment


class Leaf:
    """Everything registered for one path shape: a target per method."""

    __slots__ = ("allow", "route", "targets", "template", "where")

    def __init__(self, template: PathTemplate) -> None:
        self.template = template
        self.targets: dict[str, Any] = {}
        self.where: dict[str, str] = {}
        self.allow = ""
        # scope["route"] for answers of the path rather than of a route (405, auto OPTIONS).
        self.route: Any = None

    def add(self, method: str, target: Any, where: str, template: PathTemplate) -> None:
        if method in self.targets:
            raise RouteConflictError(
                f"two routes answer {method} {template.path!r}: {self.where[method]} and {where}"
                " (give one a different path or method)"
            )
        self.targets[method] = target
        self.where[method] = where


class _Node:
    __slots__ = ("leaf", "params", "rest", "static")

    def __init__(self) -> None:
        self.static: dict[str, _Node] = {}
        # (segment, child) for PARAM and COMPOSITE segments, highest priority first.
        self.params: list[tuple[Segment, _Node]] = []
        self.rest: list[tuple[Segment, Leaf]] = []
        self.leaf: Leaf | None = None


class Matcher:
    """Matches a request path to a ``Leaf`` and the converted parameter values."""

    __slots__ = ("_root", "static")

    def __init__(self) -> None:
        self.static: dict[str, Leaf] = {}
        self._root = _Node()

    def add(self, template: PathTemplate, method: str, target: Any, where: str) -> Leaf:
        """Register ``target`` for ``method`` on ``template``; clashes raise at once."""
        if template.is_static:
            leaf = self.static.get(template.path)
            if leaf is None:
                leaf = self.static[template.path] = Leaf(template)
            leaf.add(method, target, where, template)
            return leaf
        node = self._root
        segments = template.segments
        for i, seg in enumerate(segments):
            if seg.kind == STATIC:
                node = node.static.setdefault(seg.text, _Node())
            elif seg.kind == REST:
                assert i == len(segments) - 1
                for existing, rest_leaf in node.rest:
                    if existing.key == seg.key:
                        rest_leaf.add(method, target, where, template)
                        return rest_leaf
                leaf = Leaf(template)
                leaf.add(method, target, where, template)
                node.rest.append((seg, leaf))
                node.rest.sort(key=lambda p: -p[0].converters[0].priority)
                return leaf
            else:
                for existing, child in node.params:
                    if existing.key == seg.key:
                        node = child
                        break
                else:
                    child = _Node()
                    node.params.append((seg, child))
                    node.params.sort(key=_priority)
                    node = child
        if node.leaf is None:
            node.leaf = Leaf(template)
        node.leaf.add(method, target, where, template)
        return node.leaf

    def leaves(self) -> list[Leaf]:
        """Every leaf, static ones first."""
        out = list(self.static.values())
        stack = [self._root]
        while stack:
            node = stack.pop()
            if node.leaf is not None:
                out.append(node.leaf)
            out.extend(leaf for _, leaf in node.rest)
            stack.extend(node.static.values())
            stack.extend(child for _, child in node.params)
        return out

    def match(self, path: str, method: str | None = None) -> tuple[Leaf, list[Any]] | None:
        """Return the leaf for ``path`` and the converted values in template order.

        With ``method``, a leaf that answers that method is preferred: ``DELETE /users/me``
        reaches ``/users/{id}`` even though the static ``/users/me`` only has ``GET``. When no
        leaf answers the method, the first leaf that matches the path is returned (for a 405
        with its ``Allow``).
        """
        leaf = self.static.get(path)
        if leaf is not None and (method is None or method in leaf.targets):
            return leaf, []
        if not path.startswith("/"):
            return None
        values: list[Any] = []
        misses: list[tuple[Leaf, list[Any]]] = []
        found = _walk(self._root, path[1:].split("/"), 0, values, method, misses)
        if found is not None:
            return found, values
        if leaf is not None:
            return leaf, []
        return misses[0] if misses else None


def _priority(pair: tuple[Segment, _Node]) -> tuple[int, int, int]:
    seg = pair[0]
    # Composite segments (text around parameters) are more specific than a lone parameter, and
    # more literal text is more specific still ("{name}.tar.gz" before "{name}.{ext}").
    if seg.kind == COMPOSITE:
        return (0, -seg.literal, -max(c.priority for c in seg.converters))
    return (1, 0, -seg.converters[0].priority)


def _accepts(
    leaf: Leaf, method: str | None, values: list[Any], misses: list[tuple[Leaf, list[Any]]]
) -> bool:
    if method is None or method in leaf.targets:
        return True
    if not misses:
        misses.append((leaf, list(values)))
    return False


def _walk(
    node: _Node,
    parts: list[str],
    i: int,
    values: list[Any],
    method: str | None,
    misses: list[tuple[Leaf, list[Any]]],
) -> Leaf | None:
    if i == len(parts):
        leaf = node.leaf
        if leaf is not None and _accepts(leaf, method, values, misses):
            return leaf
        return None
    part = parts[i]
    child = node.static.get(part)
    if child is not None:
        found = _walk(child, parts, i + 1, values, method, misses)
        if found is not None:
            return found
    for seg, child in node.params:
        if seg.kind == PARAM:
            conv = seg.converters[0]
            if not conv.pattern.fullmatch(part):
                continue
            try:
                value = conv.to_python(part)
            except ValueError:
                continue
            values.append(value)
            found = _walk(child, parts, i + 1, values, method, misses)
            if found is not None:
                return found
            values.pop()
        else:
            assert seg.pattern is not None
            m = seg.pattern.fullmatch(part)
            if m is None:
                continue
            try:
                converted = [
                    c.to_python(m.group(g)) for c, g in zip(seg.converters, seg.groups, strict=True)
                ]
            except ValueError:
                continue
            values.extend(converted)
            found = _walk(child, parts, i + 1, values, method, misses)
            if found is not None:
                return found
            del values[len(values) - len(converted) :]
    if node.rest:
        remainder = "/".join(parts[i:])
        for seg, leaf in node.rest:
            conv = seg.converters[0]
            if conv.pattern.fullmatch(remainder):
                try:
                    values.append(conv.to_python(remainder))
                except ValueError:
                    continue
                if _accepts(leaf, method, values, misses):
                    return leaf
                values.pop()
    return None
