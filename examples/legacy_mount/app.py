"""A Flask site mounted inside a Trellis app: move an old site over a page at a time.

Run it with ``python examples/legacy_mount/app.py`` (it needs Flask: ``pip install flask``)
and open http://127.0.0.1:8000. The Trellis app serves its own routes; everything under
``/legacy`` goes to the Flask guestbook in [legacy.py](legacy.py), unchanged, through
``trellis.wsgi.WSGIApp``.

- ``GET /``: the new home page (Trellis).
- ``GET /api/entries``: the new, typed JSON API over the guestbook's data (Trellis),
  described at ``/openapi.json`` and ``/docs`` (the Flask routes are not: Trellis knows
  nothing of them).
- ``/legacy/...``: the old site (Flask): its page, its form post and its JSON route.

Trellis's middleware wraps the mount too: the allowed hosts and the security headers apply
to the Flask pages as to the Trellis ones.
"""

from __future__ import annotations

from typing import Any

# legacy.py, next to this file: its folder is on sys.path when this file is run or served.
import legacy
from pydantic import BaseModel

from trellis import App, HTMLResponse
from trellis.openapi import APIDocs
from trellis.wsgi import WSGIApp

HOME = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>New site</title></head>
<body>
<h1>The new site</h1>
<p>Served by Trellis. The guestbook is still the old Flask site:</p>
<ul>
<li><a href="/legacy/">the guestbook</a> (Flask, under <code>/legacy</code>)</li>
<li><a href="/legacy/api/entries">its JSON</a> (Flask)</li>
<li><a href="/api/entries">the new JSON API</a> (Trellis)</li>
</ul>
</body>
</html>
"""


class Entry(BaseModel):
    """An entry of the guestbook, as the new API shows it."""

    id: int
    name: str
    message: str


def create_app(**settings: Any) -> App:
    """Build the site: Trellis routes, and the Flask site under ``/legacy``.

    Args:
        **settings: Settings to override (``debug=True``, ``secret_key=...``); the others
            come from ``TRELLIS_*``.
    """
    app = App(**settings)
    app.install(APIDocs())
    # Flask runs in a pool of threads: at most 10 of its requests at once.
    app.mount("/legacy", WSGIApp(legacy.legacy, workers=10), name="legacy")

    @app.get("/", include_in_schema=False)
    async def home() -> HTMLResponse:
        return HTMLResponse(HOME)

    @app.get("/api/entries")
    async def list_entries() -> list[Entry]:
        """The guestbook's entries, oldest first (the same data as the Flask site's)."""
        return [Entry(**entry) for entry in legacy.entries()]

    return app


app = create_app()

if __name__ == "__main__":
    app.run()
