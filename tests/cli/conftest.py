"""The CLI tests' store, recorded once by real trainings (``train_store.py``), and the command
run as a person runs it: ``python -m autolog ...`` in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

from ..helpers import clean_env

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store the trainings recorded; tests must not change it (``store_copy`` to edit)."""
    root = tmp_path_factory.mktemp("cli-trained") / "autolog-runs"
    done = subprocess.run([sys.executable, str(HERE / "train_store.py")],
                          env=clean_env(root, KERAS_BACKEND="torch"), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


@pytest.fixture
def store_copy(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained store this test may change (no index, no delivery state)."""
    root = tmp_path / "copy" / "autolog-runs"
    shutil.copytree(trained, root, ignore=shutil.ignore_patterns(".index*", ".changed"))
    return root


def cli(*args: str, store: Path | None = None, cwd: Path | None = None,
        env: dict[str, str] | None = None, stdin: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``autolog ARGS`` in a subprocess; ``store`` becomes AUTOLOG_DIR unless ``env`` drops it
    (``env`` adds to, or with a None value removes from, the environment)."""
    environ = clean_env(store or Path("unused"))
    if store is None:
        environ.pop("AUTOLOG_DIR")
    environ.update(COLUMNS="200", NO_COLOR="1")
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return subprocess.run([sys.executable, "-m", "autolog", *args], env=environ, cwd=cwd,
                          input=stdin, capture_output=True, text=True, timeout=timeout,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    """The command's stdout, once it is known to have succeeded."""
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


__all__ = ["cli", "ok", "os"]
