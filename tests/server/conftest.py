"""A live ``autolog server`` on SQLite shared by a test module, and tokens for it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from .live import LiveServer


class Api:
    """``requests`` against the server with a token (or none)."""

    def __init__(self, url: str, token: str | None):
        self.url = url
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url + path, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("server")
    live = LiveServer(f"sqlite:///{workdir / 'autolog.db'}", workdir, "--max-in-flight", "6",
                      "--max-request-mb", "2", "--max-upload-mb", "1")
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def tokens(server: LiveServer) -> dict[str, str]:
    return {scope: server.token(f"{scope}-token", scope) for scope in ("read", "write", "admin")}


@pytest.fixture
def api(server: LiveServer, tokens: dict[str, str]) -> Api:
    """A client with a write token."""
    return Api(server.url, tokens["write"])


def new_run_id() -> str:
    return os.urandom(16).hex()


def files_holding(root: Path, content: bytes) -> list[Path]:
    """Every small regular file under ``root`` whose content is exactly ``content``."""
    found = []
    for path in root.rglob("*"):
        small = path.is_file() and not path.is_symlink() and path.stat().st_size == len(content)
        if small and path.read_bytes() == content:
            found.append(path)
    return found
