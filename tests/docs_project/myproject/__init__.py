"""The project the docs' commands name: ``myproject:app``, ``'myproject:create_app()'``."""

from .web import app, create_app

__all__ = ["app", "create_app"]
