"""``./app.py``, the application of the commands that name none (``trellis db upgrade``)."""

from myproject.web import app

__all__ = ["app"]
