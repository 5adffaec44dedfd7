"""Request handlers, one module per method family, and ``ROUTES``, the table that maps every
method to its handler (``symphony.handlers._registry``)."""

from symphony.handlers._registry import ROUTES

__all__ = ["ROUTES"]
