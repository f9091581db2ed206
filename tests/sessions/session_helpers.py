"""Helpers of the session tests (``from session_helpers import session_cookie``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trellis import App

#: ``make_app(**settings)``: the fixture that builds an app with the parametrised backend.
MakeApp = Callable[..., App]

SECRET = "s" * 40


class Clock:
    """A clock the test moves by hand; sessions, signatures and the memory store read it."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def set_cookies(response: Any) -> list[str]:
    """Every ``Set-Cookie`` header of ``response``."""
    return list(response.headers.get_list("set-cookie"))


def session_cookie(response: Any, name: str = "session") -> str | None:
    """The ``Set-Cookie`` header for the session cookie, or ``None``."""
    found = [c for c in set_cookies(response) if c.startswith(f"{name}=")]
    assert len(found) <= 1, found
    return found[0] if found else None
