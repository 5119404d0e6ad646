"""Live servers for tests: ``autolog server`` in a subprocess, and a throwaway PostgreSQL.

Both listen on 127.0.0.1 on a free port and are stopped by their fixtures. PostgreSQL comes from
``AUTOLOG_TEST_POSTGRES_URL`` when CI provides one, else from ``initdb``/``pg_ctl`` (run as the
``postgres`` user when the tests run as root); without either, PostgreSQL tests skip and say why.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from autolog.server import auth
from autolog.server.db import Database

__all__ = ["LiveServer", "Postgres", "free_port", "postgres_or_skip", "schema_head"]


def schema_head() -> str:
    """The newest schema revision the server's migrations reach."""
    from alembic.script import ScriptDirectory

    from autolog.server.db import MIGRATIONS

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """``python -m autolog.server`` on 127.0.0.1; ``kill()`` is a SIGKILL, ``start()`` again
    restarts it on the same port, database and artifact directory."""

    def __init__(self, db_url: str, workdir: Path, *extra: str, port: int | None = None):
        self.db_url = db_url
        self.workdir = workdir
        self.artifacts = workdir / "artifacts"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"server-{self.port}.log"
        workdir.mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float = 60) -> LiveServer:
        level = "warning"  # "info" shows the access log in server-<port>.log
        command = [sys.executable, "-m", "autolog.server", "--host", "127.0.0.1",
                   "--port", str(self.port), "--db", self.db_url,
                   "--artifacts", str(self.artifacts), "--log-level", level, *self.extra]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOLOG_")}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env=env, cwd=self.workdir)
        self._wait(timeout)
        return self

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.returncode}):\n"
                                   f"{self.log.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not start in {timeout}s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, requests in flight are cut."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def token(self, name: str | None = None, scope: str = "write") -> str:
        db = Database(self.db_url)
        try:
            db.migrate()
            secret, _ = auth.create_token(db, name or f"t-{uuid.uuid4().hex[:10]}", scope)
        finally:
            db.dispose()
        return secret

    def revoke(self, name: str) -> None:
        db = Database(self.db_url)
        try:
            auth.revoke_token(db, name)
        finally:
            db.dispose()


# -- PostgreSQL ------------------------------------------------------------------------------


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in ["/usr/local/bin/" + name,
                      *sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)]:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class Postgres:
    """A PostgreSQL cluster in a temporary directory, or the one CI gives by URL."""

    def __init__(self) -> None:
        self.external = os.environ.get("AUTOLOG_TEST_POSTGRES_URL")
        self.dir: Path | None = None
        self.port = 0
        self._as: list[str] = []

    @property
    def url(self) -> str:
        if self.external:
            return self.external
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def database(self) -> str:
        """A fresh, empty database on the cluster; its URL."""
        import psycopg

        name = f"autolog_{uuid.uuid4().hex[:12]}"
        plain = self.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = self.url.rpartition("/")
        return f"{base}/{name}"

    def start(self) -> Postgres:
        if self.external:
            return self
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not (initdb and pg_ctl):
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: install "
                        "Debian's postgresql package, or set AUTOLOG_TEST_POSTGRES_URL")
        self.dir = Path(tempfile.mkdtemp(prefix="autolog-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        data = self.dir / "data"
        self._run(initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run(pg_ctl, "-D", str(data), "-o", options, "-l", str(self.dir / "log"),
                  "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        if self.external or self.dir is None:
            return
        pg_ctl = _pg_bin("pg_ctl")
        if pg_ctl:
            subprocess.run([*self._as, pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate",
                            "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self._as, *command], capture_output=True, text=True,
                                timeout=120)
        if result.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


def postgres_or_skip() -> Postgres:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg (the server extra) is not installed")
    return Postgres().start()
