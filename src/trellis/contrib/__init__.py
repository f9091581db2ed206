"""Trellis's batteries: optional plugins layered on the public API (``app.install(...)``).

The micro core never imports this package; each battery needs its extra installed
(``pip install 'trellis[db]'`` ...).
"""
