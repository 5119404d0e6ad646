"""``autolog server``: the HTTP tracking server the ``http`` backend sends runs to.

An ASGI application (FastAPI on uvicorn) over SQLAlchemy 2, on SQLite or PostgreSQL; see
``docs/server.md``. Install it with the ``server`` extra. This package's ``__init__`` and
``cli`` import nothing heavy, so ``autolog --help`` stays fast; the application itself is
:func:`autolog.server.app.create_app`.
"""

from __future__ import annotations
