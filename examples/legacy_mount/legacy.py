"""The old site: a Flask guestbook, as it was before the move to Trellis.

Nothing here knows about Trellis. Mounted under ``/legacy`` it is served as it always was:
Flask sees the prefix as ``SCRIPT_NAME``, so its routes and ``url_for`` work unchanged.

- ``GET /``: the entries and a form to sign the guestbook.
- ``POST /entries``: the form's target; a mistake comes back next to the form (400), a
  success redirects to the list (303).
- ``GET /api/entries``: the entries as JSON.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask, jsonify, redirect, render_template_string, request, url_for
from flask.typing import ResponseReturnValue

NAME_MAX = 40
MESSAGE_MAX = 200

# The data both sides use. Flask serves requests from several threads at once: one lock.
_lock = threading.Lock()
_entries: list[dict[str, Any]] = [
    {"id": 1, "name": "Ada", "message": "First!"},
]


def entries() -> list[dict[str, Any]]:
    """A copy of the guestbook's entries, oldest first (the Trellis side reads them too)."""
    with _lock:
        return [dict(entry) for entry in _entries]


def add_entry(name: str, message: str) -> dict[str, Any]:
    """Add an entry and return it."""
    with _lock:
        entry = {"id": len(_entries) + 1, "name": name, "message": message}
        _entries.append(entry)
        return dict(entry)


PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Guestbook (legacy)</title></head>
<body>
<h1>Guestbook</h1>
<p>Served by Flask at <code>{{ request.script_root }}{{ request.path }}</code>.</p>
<ul id="entries">
{% for entry in entries %}<li><strong>{{ entry.name }}</strong>: {{ entry.message }}</li>
{% endfor %}</ul>
<form method="post" action="{{ url_for('sign') }}">
{% if error %}<p id="error" role="alert">{{ error }}</p>{% endif %}
<label>Name <input name="name" value="{{ form.name }}" maxlength="{{ name_max }}" required></label>
<label>Message
  <input name="message" value="{{ form.message }}" maxlength="{{ message_max }}" required></label>
<button type="submit">Sign</button>
</form>
</body>
</html>
"""

legacy = Flask(__name__)


def page(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    html = render_template_string(
        PAGE,
        entries=entries(),
        error=error,
        form=request.form,
        name_max=NAME_MAX,
        message_max=MESSAGE_MAX,
    )
    return html, status


@legacy.get("/")
def index() -> ResponseReturnValue:
    return page()


@legacy.post("/entries")
def sign() -> ResponseReturnValue:
    name = request.form.get("name", "").strip()
    message = request.form.get("message", "").strip()
    if not name or not message:
        return page("Give a name and a message.", 400)
    if len(name) > NAME_MAX or len(message) > MESSAGE_MAX:
        return page(f"At most {NAME_MAX} characters of name, {MESSAGE_MAX} of message.", 400)
    add_entry(name, message)
    # url_for knows the mount: this is /legacy/ when served inside Trellis.
    return redirect(url_for("index"), 303)


@legacy.get("/api/entries")
def api_entries() -> ResponseReturnValue:
    return jsonify(entries())
