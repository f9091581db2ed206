"""Static files: a safe ASGI app that serves a directory.

No request can reach outside the directory: ``..`` segments, backslashes, NUL bytes, drive
letters and absolute paths are refused, and every path is resolved (``os.path.realpath``) and
checked to lie under the directory, so a symlink pointing elsewhere is not followed unless
``follow_symlinks=True``. Files are sent with ``FileResponse``: ETag, ``Last-Modified``, 304,
``Range`` and the configured ``Cache-Control``.
"""

from __future__ import annotations

import asyncio
import os
import stat as _stat
from typing import NamedTuple
from urllib.parse import quote

from trellis.exceptions import ConfigurationError
from trellis.http.files import FileResponse, guess_media_type
from trellis.http.response import PlainTextResponse, Response
from trellis.types import Receive, Scope, Send

__all__ = ["StaticFiles"]

_NOT_FOUND = "Not Found"


class _Found(NamedTuple):
    path: str  # resolved, what is opened
    name: str  # as requested, what the media type is guessed from
    stat: os.stat_result
    is_index: bool  # a directory's index.html


class StaticFiles:
    """Serve the files of a directory (an ASGI app to mount at a prefix).

    Only ``GET`` and ``HEAD`` are answered (other methods get 405 with ``Allow``). A missing
    file, a directory (unless ``html=True`` and it has an ``index.html``) and any path that
    tries to leave the directory get a plain-text 404.

    The request path is taken from ``scope["path"]``; when it starts with
    ``scope["root_path"]`` (the mount prefix, as Trellis mounts apps) that prefix is removed
    first, and a path already stripped of it is used as it is.

    Args:
        directory: The directory to serve. A relative path is resolved against the current
            directory now, when the app is built.
        html: HTML site mode: a directory serves its ``index.html`` (``/docs`` redirects to
            ``/docs/`` so relative links work) and a missing file serves the top-level
            ``404.html`` with status 404 when there is one.
        follow_symlinks: Serve files through symlinks that point outside ``directory``. Off
            by default: anyone who can create a symlink in the directory could then publish
            any file the server process can read.
        cache_control: The ``Cache-Control`` header of every file served; ``None`` for none.
        check_dir: Check now that ``directory`` exists (raise ``ConfigurationError`` if not);
            turn off when the directory is created after start-up.

    Raises:
        ConfigurationError: ``check_dir`` is on and ``directory`` is not a directory.

    Example:
        ```python
        app.mount("/static", StaticFiles("static/"), name="static")
        ```
    """

    __slots__ = ("_root", "cache_control", "directory", "follow_symlinks", "html")

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        html: bool = False,
        follow_symlinks: bool = False,
        cache_control: str | None = "public, max-age=3600",
        check_dir: bool = True,
    ) -> None:
        self.directory = os.path.abspath(os.fspath(directory))
        self.html = html
        self.follow_symlinks = follow_symlinks
        self.cache_control = cache_control
        if cache_control is not None and any(c in cache_control for c in "\r\n\0"):
            raise ConfigurationError(f"cache_control holds CR, LF or NUL: {cache_control!r}")
        if check_dir and not os.path.isdir(self.directory):
            raise ConfigurationError(
                f"StaticFiles directory {os.fspath(directory)!r} does not exist or is not a "
                f"directory (resolved to {self.directory!r}); create it, fix the path, or pass "
                "check_dir=False if it is created later"
            )
        # Resolved once: the containment check compares every file's real path against it.
        self._root = os.path.realpath(self.directory)

    def _inside(self, real: str) -> bool:
        if self.follow_symlinks:
            return True
        try:
            return os.path.commonpath((self._root, real)) == self._root
        except ValueError:  # different drives on Windows
            return False

    def _find(self, path: str) -> _Found | None:
        parts = _safe_parts(path)
        if parts is None:
            return None
        name = os.path.join(self.directory, *parts)
        try:
            real = os.path.realpath(name)
            if not self._inside(real):
                return None
            st = os.stat(real)
            if _stat.S_ISREG(st.st_mode):
                if path.endswith("/"):
                    return None  # "file.css/" is not a file URL
                return _Found(real, name, st, False)
            if self.html and _stat.S_ISDIR(st.st_mode):
                index = os.path.realpath(os.path.join(real, "index.html"))
                if not self._inside(index):
                    return None
                st = os.stat(index)
                if _stat.S_ISREG(st.st_mode):
                    return _Found(index, index, st, True)
        except (OSError, ValueError):
            # Missing, not a directory, no permission, name too long: all look the same to
            # the client, so nothing about the disk leaks.
            return None
        return None

    def lookup(self, path: str) -> tuple[str, os.stat_result] | None:
        """Find the file that serves ``path``; this touches the disk, so call it in a thread.

        Args:
            path: The URL path below the mount, already percent-decoded (``"css/site.css"``;
                leading slashes do not matter).

        Returns:
            The resolved file path and its ``os.stat`` result, or ``None`` when nothing may be
            served for ``path`` (missing, a directory without index, or refused as unsafe).
        """
        found = self._find(path)
        return None if found is None else (found.path, found.stat)

    def _not_found_page(self) -> _Found | None:
        return self._find("404.html") if self.html else None

    def _file_response(self, found: _Found, status_code: int = 200) -> Response:
        headers = {"cache-control": self.cache_control} if self.cache_control else None
        return FileResponse(
            found.path,
            status_code=status_code,
            headers=headers,
            media_type=guess_media_type(found.name),
            stat_result=found.stat,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (ASGI)."""
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})
            return
        if scope["type"] != "http":
            return
        response: Response
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            response = PlainTextResponse("Method Not Allowed", 405, headers={"allow": "GET, HEAD"})
            await response(scope, receive, send)
            return
        path, full = _split_path(scope)
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(None, self._find, path)
        if found is None:
            page = await loop.run_in_executor(None, self._not_found_page)
            if page is None:
                response = PlainTextResponse(_NOT_FOUND, 404)
            else:
                response = self._file_response(page, 404)
        elif found.is_index and not full.endswith("/"):
            # "/docs" -> "/docs/": relative links in the index resolve below the directory.
            # Leading slashes are collapsed so "//evil.example" cannot become the target.
            location = "/" + quote(full.lstrip("/"), safe="/:@!$&'()*+,;=-._~") + "/"
            query = scope.get("query_string", b"")
            if query:
                location += "?" + query.decode("latin-1")
            response = Response(b"", 307, headers={"location": location})
        else:
            response = self._file_response(found)
        await response(scope, receive, send)

    def __repr__(self) -> str:
        return f"StaticFiles({self.directory!r}, html={self.html!r})"


def _split_path(scope: Scope) -> tuple[str, str]:
    """Return the path below the mount and the full path of the request."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and (path == root_path or path.startswith(root_path.rstrip("/") + "/")):
        return path[len(root_path) :], path
    return path, root_path.rstrip("/") + path


def _safe_parts(path: str) -> list[str] | None:
    """Split a URL path into file-name segments, or ``None`` if it could leave the directory."""
    # The server has already percent-decoded the path, so "%2e%2e" arrives here as "..", and
    # "%5c" as a backslash; nothing is decoded again, so "%252e" stays a literal name.
    if "\0" in path or "\\" in path:
        return None
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == ".." or os.path.isabs(part) or os.path.splitdrive(part)[0]:
            return None
        if os.sep in part or (os.altsep and os.altsep in part):
            return None
        parts.append(part)
    return parts
