"""Small containers used by requests and responses: multi-dicts, headers, URLs, state.

All of them are plain Python with ``__slots__``; they parse lazily where it pays (headers stay as
the raw ASGI list until a lookup needs them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any, Generic, TypeVar, overload
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

__all__ = ["URL", "Headers", "MultiDict", "MutableHeaders", "QueryParams", "State"]

V = TypeVar("V")
D = TypeVar("D")


class MultiDict(Mapping[str, V], Generic[V]):
    """An immutable mapping where a key may hold several values, in arrival order.

    ``md[key]`` and ``md.get(key)`` give the *last* value (as a form or query string would
    override), ``md.getlist(key)`` gives all of them.
    """

    __slots__ = ("_dict", "_list")

    def __init__(self, items: Iterable[tuple[str, V]] | Mapping[str, V] | None = None) -> None:
        if items is None:
            pairs: list[tuple[str, V]] = []
        elif isinstance(items, MultiDict):
            pairs = items.multi_items()
        elif isinstance(items, Mapping):
            pairs = list(items.items())
        else:
            pairs = list(items)
        self._list = pairs
        self._dict: dict[str, V] = dict(pairs)

    def getlist(self, key: str) -> list[V]:
        """Return every value of ``key`` (an empty list when absent)."""
        return [v for k, v in self._list if k == key]

    def multi_items(self) -> list[tuple[str, V]]:
        """Return every ``(key, value)`` pair, repeated keys included, in order."""
        return list(self._list)

    def __getitem__(self, key: str) -> V:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __contains__(self, key: object) -> bool:
        return key in self._dict

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MultiDict):
            return NotImplemented
        return sorted(map(repr, self._list)) == sorted(map(repr, other._list))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._list!r})"


class QueryParams(MultiDict[str]):
    """The query string, parsed: a multi-dict of strings.

    Built from a raw query string (``bytes`` or ``str``), a mapping or a list of pairs. Blank
    values are kept (``?a=&b`` gives ``{"a": "", "b": ""}``); invalid percent-escapes are kept
    literally, never an exception.
    """

    __slots__ = ()

    def __init__(
        self, query: str | bytes | Iterable[tuple[str, str]] | Mapping[str, str] | None = None
    ) -> None:
        if isinstance(query, bytes):
            # Clients should percent-encode, but some (curl) send raw UTF-8: read it as UTF-8,
            # like the %XX escapes, rather than as latin-1 mojibake.
            query = query.decode("utf-8", "replace")
        if isinstance(query, str):
            if "%" in query or "+" in query:
                super().__init__(parse_qsl(query, keep_blank_values=True, errors="replace"))
            else:
                # PERF: nothing to decode, so split by hand (parse_qsl costs ~5x more).
                pairs = []
                for part in query.split("&"):
                    if part:
                        key, _, value = part.partition("=")
                        pairs.append((key, value))
                super().__init__(pairs)
        else:
            super().__init__(query)

    def __str__(self) -> str:
        return urlencode(self._list)


class Headers(Mapping[str, str]):
    """Case-insensitive, multi-valued, read-only HTTP headers.

    Wraps the raw ASGI list of ``(name, value)`` byte pairs without copying it; names are
    lower-case in ASGI so lookups lower-case the key once. ``headers["x"]`` joins nothing: it
    gives the first value; ``getlist`` gives all.
    """

    __slots__ = ("_list",)

    def __init__(
        self,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        *,
        raw: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        if raw is not None:
            self._list = raw
        elif headers is None:
            self._list = []
        else:
            items = headers.items() if isinstance(headers, Mapping) else headers
            self._list = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in items]

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """The underlying ASGI header list."""
        return self._list

    def getlist(self, key: str) -> list[str]:
        """Return every value of the header ``key``."""
        name = key.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self._list if k == name]

    def get(self, key: str, default: Any = None) -> Any:  # noqa: D102 - Mapping.get
        name = key.lower().encode("latin-1")
        for k, v in self._list:
            if k == name:
                return v.decode("latin-1")
        return default

    def __getitem__(self, key: str) -> str:
        name = key.lower().encode("latin-1")
        for k, v in self._list:
            if k == name:
                return v.decode("latin-1")
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        name = key.lower().encode("latin-1")
        return any(k == name for k, _ in self._list)

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for k, _ in self._list:
            seen.setdefault(k.decode("latin-1"), None)
        return iter(seen)

    def __len__(self) -> int:
        return len({k for k, _ in self._list})

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        """Return every ``(name, value)`` pair, repeated names included."""
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self._list]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return sorted(self._list) == sorted(other._list)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.items()!r})"


# RFC 9110 token for names; values may hold any byte but control characters (HTAB aside).
_HEADER_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE_BAD_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _check_header(name: str, value: str) -> tuple[bytes, bytes]:
    # Refuse CR, LF, NUL and the other controls: CR/LF would let a value start a new header
    # (response splitting), and servers drop the connection on the rest.
    if not isinstance(name, str) or not _HEADER_NAME_RE.fullmatch(name):
        raise ValueError(f"invalid header name {name!r}")
    if not isinstance(value, str):
        raise TypeError(f"header {name!r} value must be a str, not {type(value).__name__}")
    if _HEADER_VALUE_BAD_RE.search(value):
        raise ValueError(
            f"header {name!r} has a value with CR, LF, NUL or another control character,"
            f" refused: {value!r}"
        )
    try:
        return name.lower().encode("latin-1"), value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(
            f"header {name!r} has a value that is not latin-1 ({value!r}); percent-encode it"
        ) from None


class MutableHeaders(Headers):
    """Response headers: like ``Headers`` but writable.

    ``headers[name] = value`` replaces every value of ``name``; ``append`` adds one more.
    Values with CR, LF or NUL are refused with ``ValueError`` (no header injection).
    """

    __slots__ = ()

    def __setitem__(self, key: str, value: str) -> None:
        name, val = _check_header(key, value)
        found = False
        out: list[tuple[bytes, bytes]] = []
        for k, v in self._list:
            if k == name:
                if not found:
                    out.append((name, val))
                    found = True
            else:
                out.append((k, v))
        if not found:
            out.append((name, val))
        self._list[:] = out

    def __delitem__(self, key: str) -> None:
        name = key.lower().encode("latin-1")
        self._list[:] = [(k, v) for k, v in self._list if k != name]

    def append(self, key: str, value: str) -> None:
        """Add a value for ``key`` and keep the existing ones (``Set-Cookie``, ``Vary`` ...)."""
        self._list.append(_check_header(key, value))

    def setdefault(self, key: str, value: str) -> str:
        """Set ``key`` to ``value`` unless it is present; return the value in force."""
        current = self.get(key)
        if current is None:
            self.append(key, value)
            return value
        return str(current)

    def update(self, other: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        """Set every header of ``other``, replacing existing values."""
        items = other.items() if isinstance(other, Mapping) else other
        for k, v in items:
            self[k] = v

    def add_vary(self, value: str) -> None:
        """Add ``value`` to the ``Vary`` header unless already listed."""
        current = self.get("vary")
        if current is None:
            self["vary"] = value
        elif value.lower() not in (p.strip().lower() for p in current.split(",")):
            self["vary"] = f"{current}, {value}"


class URL:
    """A parsed URL with easy access to its parts and ways to derive new ones.

    Args:
        url: The URL as a string.
    """

    __slots__ = ("_parts", "_url")

    def __init__(self, url: str = "") -> None:
        self._url = url
        self._parts: SplitResult | None = None

    @classmethod
    def from_scope(cls, scope: MutableMapping[str, Any], host: str | None = None) -> URL:
        """Build the full request URL from an ASGI scope (``host`` overrides the Host header)."""
        scheme = scope.get("scheme", "http")
        # ASGI servers (uvicorn) and Trellis mounts put the root path inside ``path``; some
        # older servers and clients leave it out: add it only when it is missing.
        root = scope.get("root_path", "")
        path = scope["path"]
        if root and not (path == root or path.startswith(root.rstrip("/") + "/")):
            path = root + path
        query = scope.get("query_string", b"")
        if host is None:
            for k, v in scope.get("headers", ()):
                if k == b"host":
                    host = v.decode("latin-1")
                    break
            else:
                server = scope.get("server")
                if server:
                    h, p = server[0], server[1]
                    default = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(scheme)
                    host = h if p == default or p is None else f"{h}:{p}"
                else:
                    host = "localhost"
        url = f"{scheme}://{host}{_quote_path(path)}"
        if query:
            url += "?" + query.decode("latin-1")
        return cls(url)

    @property
    def parts(self) -> SplitResult:
        """The ``urllib.parse.SplitResult`` of this URL."""
        if self._parts is None:
            self._parts = urlsplit(self._url)
        return self._parts

    @property
    def scheme(self) -> str:  # noqa: D102
        return self.parts.scheme

    @property
    def netloc(self) -> str:  # noqa: D102
        return self.parts.netloc

    @property
    def hostname(self) -> str | None:  # noqa: D102
        return self.parts.hostname

    @property
    def port(self) -> int | None:
        """The port, or ``None`` when absent or invalid (the Host header is client input)."""
        try:
            return self.parts.port
        except ValueError:  # "host:abc", "host:99999"
            return None

    @property
    def path(self) -> str:  # noqa: D102
        return self.parts.path

    @property
    def query(self) -> str:  # noqa: D102
        return self.parts.query

    @property
    def fragment(self) -> str:  # noqa: D102
        return self.parts.fragment

    @property
    def is_secure(self) -> bool:
        """Whether the scheme is ``https`` or ``wss``."""
        return self.scheme in ("https", "wss")

    def replace(self, **kwargs: Any) -> URL:
        """Return a copy with parts replaced: ``scheme``, ``netloc``, ``path``, ``query``..."""
        return URL(self.parts._replace(**kwargs).geturl())

    def include_query_params(self, **params: Any) -> URL:
        """Return a copy with ``params`` set in the query string (replacing same-named ones)."""
        pairs = [
            (k, v) for k, v in parse_qsl(self.query, keep_blank_values=True) if k not in params
        ]
        pairs += [(k, str(v)) for k, v in params.items()]
        return self.replace(query=urlencode(pairs))

    def __str__(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"URL({self._url!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, URL | str):
            return self._url == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._url)


def _quote_path(path: str) -> str:
    from urllib.parse import quote

    # "%" is not safe: the ASGI path is already decoded, so a literal "%" must become "%25".
    return quote(path, safe="/:@!$&'()*+,;=-._~")


class State:
    """A namespace for arbitrary attributes: ``app.state.db = ...``, ``request.state.user``.

    Reading an attribute that was never set raises ``AttributeError`` naming it.
    """

    __slots__ = ("_state",)

    def __init__(self, initial: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_state", dict(initial or {}))

    @classmethod
    def _wrap(cls, data: dict[str, Any]) -> State:
        # Share ``data`` instead of copying it: request state lives in ``scope["state"]``.
        state = cls.__new__(cls)
        object.__setattr__(state, "_state", data)
        return state

    def __setattr__(self, name: str, value: Any) -> None:
        self._state[name] = value

    def __getattr__(self, name: str) -> Any:
        if name == "_state" or name.startswith("__"):
            # Not set yet (copy, pickle) or a protocol lookup: never recurse into _state.
            raise AttributeError(name)
        try:
            return self._state[name]
        except KeyError:
            raise AttributeError(f"state has no attribute {name!r}") from None

    def __delattr__(self, name: str) -> None:
        try:
            del self._state[name]
        except KeyError:
            raise AttributeError(f"state has no attribute {name!r}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._state

    def __reduce__(self) -> tuple[type[State], tuple[dict[str, Any]]]:
        # copy, deepcopy and pickle rebuild through __init__, never through __setattr__.
        return (State, (self._state,))

    def get(self, name: str, default: D | None = None) -> Any | D | None:
        """Return attribute ``name`` or ``default``."""
        return self._state.get(name, default)

    def __repr__(self) -> str:
        return f"State({self._state!r})"


@overload
def _first(seq: Sequence[V]) -> V | None: ...
@overload
def _first(seq: Sequence[V], default: D) -> V | D: ...
def _first(seq: Sequence[Any], default: Any = None) -> Any:
    return seq[0] if seq else default
