"""Handlers: how a function or view becomes an endpoint (compiled once at start-up)."""
