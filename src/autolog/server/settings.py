"""The server's configuration: what ``autolog server`` options set.

One dataclass, passed to :func:`autolog.server.app.create_app`. With ``--workers N`` uvicorn starts
the app in child processes from an import string, so the configuration travels to them as JSON
in a private environment variable (it is not a user setting; the options are).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

__all__ = ["ENV", "MiB", "ServerConfig"]

MiB = 1024 * 1024
ENV = "_AUTOLOG_SERVER_CONFIG"


@dataclass
class ServerConfig:
    #: SQLAlchemy URL: sqlite:///path.db or postgresql://user:pass@host/db
    db: str = "sqlite:///autolog.db"
    #: directory where artifact files are stored (shared storage for several servers)
    artifacts: str = "autolog-artifacts"
    #: require a bearer token on every endpoint but /healthz
    auth: bool = True
    #: largest JSON request body, after gzip inflation
    max_request_bytes: int = 32 * MiB
    #: largest artifact file upload
    max_upload_bytes: int = 2048 * MiB
    #: requests handled at once by one process; more get 503 + Retry-After
    max_in_flight: int = 64
    #: seconds a connection has to send a whole request head (unauthenticated requests: their
    #: body too)
    header_timeout: float = 10.0
    #: seconds to wait for the next part of a request body before answering 408
    body_timeout: float = 30.0
    #: unauthenticated requests (pages, sign-in) handled at once by one process
    max_anonymous: int = 16
    #: of those, from one client address
    max_anonymous_per_client: int = 4
    #: database connections per process (PostgreSQL)
    pool_size: int = 10
    #: the web UI's built bundle (index.html + assets/); None: the one in the package
    static_dir: str | None = None

    def to_environ(self) -> None:
        os.environ[ENV] = json.dumps(asdict(self))

    @classmethod
    def from_environ(cls) -> ServerConfig:
        raw = os.environ.get(ENV)
        return cls(**json.loads(raw)) if raw else cls()
