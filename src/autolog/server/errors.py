"""Errors the server's own code raises on purpose; ``app.py`` maps each to a 4xx status."""

from __future__ import annotations

__all__ = ["AmbiguousPrefix", "BadPageToken", "NoSuchRun"]


class NoSuchRun(LookupError):
    """404: no run with this id (or prefix) on the server."""


class AmbiguousPrefix(ValueError):
    """400: the id prefix matches several runs."""


class BadPageToken(ValueError):
    """400: a page token this server did not issue."""
