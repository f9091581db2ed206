"""Scrubbing: secrets never reach a stored ticket.

Two passes. **By name**: a header, cookie, query parameter, form field, JSON key or local
variable whose name looks secret has its value replaced by ``"[scrubbed]"``. A name looks
secret when it matches ``secret|token|passw|pwd|key|auth|session|csrf|cookie|credential|
signature`` (case-insensitive, anywhere in the name: ``X-API-Key``, ``csrf_token``,
``new_password``) or one of the patterns given to ``Scrubber(names=...)``; the headers
``Authorization``, ``Proxy-Authorization``, ``Cookie``, ``Set-Cookie``, ``X-API-Key`` and
``X-CSRF-Token`` always are. **By value**: every secret value found by name (the
credentials of ``Authorization``, the password of a Basic header, cookie values ...) is then
replaced wherever else it appears in the ticket: the path, the exception message, the
traceback, local variables. Values shorter than 4 characters are left to the first pass (they
would blank out unrelated text).

```py
scrubber = Scrubber(names=[r"^pin$", "iban"])
scrubber.is_secret("X-Api-Key")     # True
scrubber.is_secret("pin")           # True (one of ours)
```
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from trellis.contrib.tickets.models import SCRUBBED

__all__ = ["ALWAYS_SECRET_HEADERS", "SCRUBBED", "SECRET_NAMES", "Scrubber", "Secrets"]

#: The pattern of names whose values are secret (searched, case-insensitive).
SECRET_NAMES = r"secret|token|passw|pwd|key|auth|session|csrf|cookie|credential|signature"

#: Headers scrubbed whatever the patterns say.
ALWAYS_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-csrf-token"}
)

#: Secret values shorter than this are not searched for in free text.
MIN_VALUE_LENGTH = 4

#: At most this many secret values are searched for in free text (the rest are still
#: scrubbed by name); the search costs time in proportion.
MAX_VALUES = 256

# name=value in free text: a query string, keyword arguments in a repr. Every part is
# bounded (a name starts a word, a quoted value may lack its closing quote), so that the
# work stays linear in the text's length whatever an attacker puts in a message.
_PAIR = re.compile(
    r"(?<![\w.\-])([A-Za-z_][\w.\-]{0,63})="
    r"""('(?:[^'\\\n]|\\.){0,1000}'?|"(?:[^"\\\n]|\\.){0,1000}"?|[^\s&;,)'"]{1,1000})"""
)
# The password of a URL: scheme://user:password@host.
_USERINFO = re.compile(r"(?<![\w+.\-])([A-Za-z][\w+.\-]{0,31}://[^\s:/@]{0,256}:)[^\s@/]{1,1000}@")


class Scrubber:
    """Finds secret names and collects secret values, then removes them from text.

    One ``Scrubber`` serves every ticket (its patterns); the values of one ticket are kept
    in a ``Secrets`` collection made by ``secrets()``.

    Args:
        names: More name patterns (regular expressions, searched case-insensitively) on top
            of ``SECRET_NAMES``.
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        patterns = [SECRET_NAMES, *names]
        self.pattern = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)

    def is_secret(self, name: str) -> bool:
        """Whether values under ``name`` are secret."""
        return self.pattern.search(name) is not None

    def is_secret_header(self, name: str) -> bool:
        """Whether the header ``name`` is secret (the always-secret headers, or by pattern)."""
        return name.lower() in ALWAYS_SECRET_HEADERS or self.is_secret(name)

    def secrets(self) -> Secrets:
        """A new, empty collection of one ticket's secret values."""
        return Secrets(self)


class Secrets:
    """The secret values of one ticket, and the scrubbing of data structures and text."""

    __slots__ = ("_pattern", "scrubber", "values")

    def __init__(self, scrubber: Scrubber) -> None:
        self.scrubber = scrubber
        self.values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: Any) -> None:
        """Remember ``value`` (a string, or the strings inside a list or dict) as secret."""
        if isinstance(value, str):
            if len(value) >= MIN_VALUE_LENGTH and len(self.values) < MAX_VALUES * 4:
                # As it may appear elsewhere: plain, in a repr, URL-encoded.
                self.values.update(
                    (value, repr(value)[1:-1], quote(value, safe=""), quote_plus(value))
                )
                self._pattern = None
        elif isinstance(value, bytes):
            self.add(value.decode("utf-8", "replace"))
        elif isinstance(value, Mapping):
            for item in value.values():
                self.add(item)
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                self.add(item)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self.add(str(value))

    def add_authorization(self, value: str) -> None:
        """Remember an ``Authorization`` value: the whole, the credentials, a Basic password."""
        self.add(value)
        scheme, _, credentials = value.strip().partition(" ")
        credentials = credentials.strip()
        self.add(credentials)
        if scheme.lower() == "basic" and credentials:
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return
            self.add(decoded)
            self.add(decoded.partition(":")[2])

    def text(self, value: str) -> str:
        """``value`` with the secrets in it replaced by ``"[scrubbed]"``.

        The known secret values go first; then any ``name=value`` whose name looks secret
        (``?api_key=...`` in a URL, ``password='...'`` in a repr) and the password of a URL
        (``postgresql://app:pw@db``).
        """
        if not value:
            return value
        if self.values:
            if self._pattern is None:
                # Longest first: a value that contains another is replaced whole.
                ordered = sorted(self.values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
            value = self._pattern.sub(SCRUBBED, value)
        if "=" in value:
            value = _PAIR.sub(self._pair, value)
        if "@" in value:
            value = _USERINFO.sub(rf"\g<1>{SCRUBBED}@", value)
        return value

    def _pair(self, match: re.Match[str]) -> str:
        name = match.group(1)
        return f"{name}={SCRUBBED}" if self.scrubber.is_secret(name) else match.group(0)

    def deep(self, value: Any) -> Any:
        """A copy of a JSON-able structure with every string passed through ``text``."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.deep(v) for v in value]
        return value

    def by_name(self, value: Any, *, depth: int = 8, items: int = 100, length: int = 2000) -> Any:
        """A JSON-able, bounded copy of ``value`` whose secret-named keys are scrubbed.

        Dicts are scrubbed key by key (the secret values remembered), lists item by item,
        strings cut at ``length`` characters; at most ``items`` entries per container and
        ``depth`` levels; anything else becomes its ``repr``-free type name.
        """
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return value if len(value) <= length else value[:length] + "…"
        if depth <= 0:
            return "…"
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for index, (key, item) in enumerate(value.items()):
                if index >= items:
                    out["…"] = f"{len(value) - items} more"
                    break
                name = str(key)
                if self.scrubber.is_secret(name):
                    self.add(item)
                    out[name] = SCRUBBED
                else:
                    out[name] = self.by_name(item, depth=depth - 1, items=items, length=length)
            return out
        if isinstance(value, list | tuple):
            listed = [
                self.by_name(item, depth=depth - 1, items=items, length=length)
                for item in value[:items]
            ]
            if len(value) > items:
                listed.append(f"… {len(value) - items} more")
            return listed
        return f"<{type(value).__name__}>"
