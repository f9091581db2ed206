"""Routing: routers (blueprints), path converters and the compiled matcher."""

from trellis.routing.converters import Converter as Converter
from trellis.routing.converters import register_converter as register_converter
from trellis.routing.matched import MatchedRoute as MatchedRoute
from trellis.routing.router import Mount as Mount
from trellis.routing.router import Route as Route
from trellis.routing.router import Router as Router

__all__ = ["Converter", "MatchedRoute", "Mount", "Route", "Router", "register_converter"]
