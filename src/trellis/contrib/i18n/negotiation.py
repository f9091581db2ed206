"""Which of the supported locales a client asked for: ``Accept-Language`` and locale tags.

Tags are matched case-insensitively, with ``-`` and ``_`` alike (``pt-BR`` is ``pt_BR``); a
region the application lacks falls back to the language (``fr-CA`` gets ``fr``), and a bare
language gets the first supported region of it (``pt`` gets ``pt_BR``).

Example:
    ```python
    from trellis.contrib.i18n.negotiation import LocaleMatcher, parse_accept_language

    assert parse_accept_language("fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5") == [
        "fr-CH", "fr", "en", "*"
    ]
    matcher = LocaleMatcher(["en", "fr", "pt_BR"])
    assert matcher.negotiate("de, fr-CA;q=0.8, en;q=0.5") == "fr"
    assert matcher.match("PT") == "pt_BR"
    ```
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["LocaleMatcher", "parse_accept_language"]

#: Headers longer than this are cut (no browser sends one; a hostile client might).
MAX_HEADER_LENGTH = 1024
#: At most this many language ranges are considered.
MAX_RANGES = 32


def parse_accept_language(header: str) -> list[str]:
    """The language ranges of an ``Accept-Language`` header, most wanted first.

    Ranges with ``q=0`` or a malformed weight are dropped; equal weights keep their order.
    """
    ranges: list[tuple[float, int, str]] = []
    for index, item in enumerate(header[:MAX_HEADER_LENGTH].split(",")[:MAX_RANGES]):
        tag, _, params = item.partition(";")
        tag = tag.strip()
        if not tag:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:
                    q = 0.0
        if q > 0.0:
            ranges.append((-q, index, tag))
    ranges.sort()
    return [tag for _, _, tag in ranges]


def _key(tag: str) -> str:
    return tag.strip().replace("-", "_").lower()


class LocaleMatcher:
    """Match client tags against the supported locales (given as Babel identifiers).

    Args:
        locales: The supported locales (``"en"``, ``"fr"``, ``"pt_BR"``), in order of
            preference for a bare language that several regions share.
    """

    def __init__(self, locales: Sequence[str]) -> None:
        self.locales = tuple(locales)
        self._exact = {_key(locale): locale for locale in self.locales}
        self._languages: dict[str, str] = {}
        for locale in self.locales:
            self._languages.setdefault(_key(locale).split("_", 1)[0], locale)
        # PERF: browsers send a handful of distinct headers; remember their answers.
        self._cache: dict[str, str | None] = {}

    def match(self, tag: str) -> str | None:
        """The supported locale for one tag (``"fr-CA"``), or ``None``."""
        key = _key(tag)
        found = self._exact.get(key)
        if found is not None:
            return found
        return self._languages.get(key.split("_", 1)[0])

    def best(self, tags: Iterable[str]) -> str | None:
        """The supported locale of the first tag that has one."""
        for tag in tags:
            if tag == "*":
                continue
            found = self.match(tag)
            if found is not None:
                return found
        return None

    def negotiate(self, accept_language: str) -> str | None:
        """The supported locale an ``Accept-Language`` header asks for most, or ``None``."""
        cache = self._cache
        try:
            return cache[accept_language]
        except KeyError:
            pass
        found = self.best(parse_accept_language(accept_language))
        if len(cache) >= 512:
            cache.clear()
        cache[accept_language] = found
        return found
