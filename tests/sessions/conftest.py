"""Fixtures of the session, CSRF and security-header tests.

``backend`` runs a test with signed-cookie sessions and with server-side sessions
(``MemorySessionBackend``): what the visitor sees must be the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from session_helpers import SECRET, Clock, MakeApp

import trellis.sessions
from trellis import App
from trellis.sessions import MemorySessionBackend


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """Freeze the sessions' clock; ``clock.advance(s)`` moves it."""
    fake = Clock()
    monkeypatch.setattr(trellis.sessions, "_now", fake)
    yield fake


@pytest.fixture(params=["cookie", "memory"])
def backend(request: pytest.FixtureRequest) -> str:
    """Signed-cookie sessions or server-side ones."""
    return str(request.param)


@pytest.fixture
def make_app(backend: str) -> MakeApp:
    """``make_app(**settings)``: a production-mode app with the parametrised session backend."""

    def make(**settings: Any) -> App:
        settings.setdefault("secret_key", SECRET)
        app = App(debug=False, **settings)
        if backend == "memory":
            app.state.session_store = MemorySessionBackend()
        return app

    return make
