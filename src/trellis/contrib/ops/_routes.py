"""The route of a request, as its path template: the label metrics use instead of the path.

A raw path (``/users/8412``) would make one time series per user; the template
(``/users/{id}``) makes one per route. The lookup reads the application's compiled matcher
after the response went out, the same way ``App._dispatch`` found the route.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from trellis.types import Scope

if TYPE_CHECKING:
    from trellis.app import App
    from trellis.routing._matcher import Matcher
    from trellis.routing.router import FlatMount

__all__ = ["UNMATCHED", "label_of", "route_of"]

#: The label of a request no route answered (a 404, a trailing-slash redirect).
UNMATCHED = "<unmatched>"

_PARAM = re.compile(r"{([^{}:]*)(?::([^{}]*))?}")
# Template path -> label; as many entries as the app has routes.
_labels: dict[str, str] = {}


def label_of(template: str) -> str:
    """``/users/{id:int}`` -> ``/users/{id}``: the converters are not part of the label."""
    label = _labels.get(template)
    if label is None:
        label = _labels[template] = _PARAM.sub(lambda m: "{" + m.group(1) + "}", template)
    return label


def route_of(app: App, scope: Scope) -> str:
    """The path template of the route that answered ``scope``, or ``UNMATCHED``.

    Converters are left out: ``/users/{id:int}`` is labelled ``/users/{id}``.
    A request answered by a mounted application is labelled with the mount's path followed
    by ``/*`` (its own routes are that application's business).
    """
    path: str = scope["path"]
    root = scope.get("root_path")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        path = path[len(root) :] or "/"
    method = scope.get("method", "GET")
    if app._hosts:
        host = _host_of(scope)
        for group in app._hosts:
            if group.host.match(host) is not None:
                found = _find(group.matcher, group.mounts, path, method)
                if found is not None:
                    return found
    # PERF: a static path is one dict lookup (the common case: no parameters).
    leaf = app._static.get(path)
    if leaf is not None and method in leaf.targets:
        return label_of(leaf.template.path)
    return _find(app._matcher, app._mounts, path, method) or UNMATCHED


def _find(matcher: Matcher, mounts: list[FlatMount], path: str, method: str) -> str | None:
    found = matcher.match(path, method)
    if found is not None:
        return label_of(found[0].template.path)
    for mount in mounts:
        mp = mount.path
        if path == mp or path.startswith(mp + "/") or mp == "":
            return mp + "/*"
    return None


def _host_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return str(value.decode("latin-1"))
    return ""
