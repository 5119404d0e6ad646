"""Connecting to the database (SQLite or PostgreSQL) and migrating its schema.

SQLite runs in WAL mode (readers never wait for the writer) with ``synchronous=NORMAL``, reads
through a memory map (half the CPU of a runs-table count at 100,000 runs); writes
open with ``BEGIN IMMEDIATE`` so a transaction never fails half-way on a lock it could not
upgrade, and one thread per process writes at a time (SQLite has a single writer anyway, and a
queue on a lock is fairer than threads polling ``busy_timeout``). PostgreSQL goes through
psycopg 3; ``postgresql://`` URLs are read as ``postgresql+psycopg://``.

The schema is migrated with Alembic, from the revisions shipped in ``migrations/``, at every
start. The upgrade runs in one transaction holding a lock (a PostgreSQL advisory lock; SQLite's
write lock), so several server processes starting together on one database migrate it once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

__all__ = ["Database", "dialect_insert", "normalize_url"]

MIGRATIONS = Path(__file__).with_name("migrations")
#: the newest schema revision (``migrations/versions/<revision>_*.py``)
HEAD = max(p.name.split("_")[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))
_MIGRATION_LOCK = 0x6175746F6C6F67  # "autolog": the advisory lock key of the schema upgrade
#: SQLite reads through a memory map (the OS page cache, shared by every connection: index
#: probes skip copying pages) and keeps up to this much in each connection's own cache
MMAP_BYTES = 1 << 30
CACHE_KIB = 32 * 1024


def normalize_url(url: str) -> str:
    """Accept the URL forms people paste: ``postgres://``, ``postgresql://`` (psycopg 3)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Database:
    """An engine plus the two ways the server uses it: read and write transactions."""

    def __init__(self, url: str, *, pool_size: int = 10, durable: bool = True):
        self.url = make_url(normalize_url(url))
        if self.url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"database {self.display_url}: the server runs on SQLite "
                             "(sqlite:///path.db) or PostgreSQL (postgresql://...)")
        self.sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = _sqlite_engine(self.url, durable) if self.sqlite else \
            _engine(self.url, pool_size)
        self._write_lock: Any = threading.Lock() if self.sqlite else nullcontext()

    def __repr__(self) -> str:
        return f"Database({self.display_url})"

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back on an exception."""
        with self._write_lock, self.engine.connect() as conn:
            conn.execution_options(autolog_write=True)
            with conn.begin():
                yield conn

    def migrate(self) -> str | None:
        """Upgrade the schema to the newest revision; returns that revision.

        A database already at the newest revision is answered without loading Alembic (a
        quarter of a second), so a restart on a migrated database is quick.
        """
        if self.revision() == HEAD:
            return HEAD
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.write() as conn:
            if not self.sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            return MigrationContext.configure(conn).get_current_revision()

    def revision(self) -> str | None:
        """The schema revision the database is at (None: not created yet)."""
        try:
            with self.read() as conn:
                return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        except (OperationalError, ProgrammingError):
            return None

    def dispose(self) -> None:
        self.engine.dispose()


def _engine(url: Any, pool_size: int) -> Engine:
    # prepare_threshold=None: psycopg would prepare a statement run five times, and PostgreSQL's
    # generic plan for a prepared runs-table page ignores the values it filters on (measured: a
    # 3 ms page became 220 ms); planning each time costs well under a millisecond
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_timeout=10,
                         pool_pre_ping=True,
                         connect_args={"connect_timeout": 10, "prepare_threshold": None})


def _sqlite_engine(url: Any, durable: bool = True) -> Engine:
    database = url.database
    if not database or database == ":memory:":
        raise ValueError("the server needs an SQLite file (sqlite:///path/autolog.db), "
                         "not an in-memory database")
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                           pool_size=8, max_overflow=8, pool_timeout=10)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.isolation_level = None  # we send BEGIN ourselves (below)
        cursor = dbapi_conn.cursor()
        sync = "synchronous=NORMAL" if durable else "synchronous=OFF"
        for pragma in ("journal_mode=WAL", sync, "busy_timeout=30000",
                       "temp_store=MEMORY", f"mmap_size={MMAP_BYTES}",
                       f"cache_size=-{CACHE_KIB}"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("autolog_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def dialect_insert(conn: Connection, table: Any) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT`` (PostgreSQL and SQLite alike); the
    dialect module is imported when first needed (PostgreSQL's costs a tenth of a second)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)
