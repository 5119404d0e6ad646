"""A store made by real runs (varied params and metrics, files, a scikit-learn fit and grid
search, a crashed run), its index, and the API over it through FastAPI's TestClient."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sklearn")

from fastapi.testclient import TestClient

from ..helpers import clean_env, crashed_run

HERE = Path(__file__).resolve().parent
TOKEN = "test-token-" + "x" * 20


def make_store(root: Path, count: int = 40) -> Path:
    subprocess.run([sys.executable, str(HERE / "make_store.py"), str(root), str(count)],
                   env=clean_env(root), check=True, timeout=300, capture_output=True)
    return root


@pytest.fixture(scope="module")
def ui_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per module; tests must not change it (copy it to edit)."""
    root = make_store(tmp_path_factory.mktemp("ui") / "autolog-runs")
    crashed_run(root, steps=50)
    return root


@pytest.fixture(scope="module")
def index(ui_store: Path) -> Iterator[Any]:
    from autolog.ui.index import Index

    built = Index(ui_store)
    built.refresh(full=True)
    built.fill_points()
    yield built
    built.stop()


def local_client(index: Any, static_dir: Path | None = None, token: str = TOKEN) -> TestClient:
    from autolog.server.app import create_app
    from autolog.server.settings import ServerConfig
    from autolog.ui.local import LocalContext

    config = ServerConfig(static_dir=str(static_dir or index.root / "no-bundle-here"))
    context = LocalContext(index.root, index=index, token=token, port=5050)
    return TestClient(create_app(config, context), base_url="http://127.0.0.1:5050")


@pytest.fixture(scope="module")
def api(index: Any) -> TestClient:
    """The local app with the bearer token set."""
    client = local_client(index)
    client.headers["Authorization"] = f"Bearer {TOKEN}"
    return client
