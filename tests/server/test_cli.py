"""``autolog server`` commands through ``autolog.cli.main``; the schema its migrations make."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from autolog import cli

from .conftest import Api
from .live import LiveServer, schema_head


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_token_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'tokens.db'}"
    code, out, err = run_cli(capsys, "server", "token", "create", "ci-runner", "--db", db)
    assert code == 0 and "shown only this once" in err
    token = out.strip()
    assert token.startswith("alg_") and len(token) > 40
    code, out, _ = run_cli(capsys, "server", "token", "create", "dashboard", "--scope", "read",
                           "--db", db)
    assert code == 0
    code, _, err = run_cli(capsys, "server", "token", "create", "ci-runner", "--db", db)
    assert code == 1 and "already named" in err
    code, out, _ = run_cli(capsys, "server", "token", "list", "--json", "--db", db)
    listed = json.loads(out)
    assert [(t["name"], t["scope"], t["revoked"]) for t in listed] == [
        ("ci-runner", "write", None), ("dashboard", "read", None)]
    assert token not in out  # the list never shows a token
    assert run_cli(capsys, "server", "token", "revoke", "ci-runner", "--db", db)[0] == 0
    code, out, _ = run_cli(capsys, "server", "token", "list", "--db", db)
    assert "revoked" in out and "dashboard" in out
    code, _, err = run_cli(capsys, "server", "token", "revoke", "ci-runner", "--db", db)
    assert code == 1 and "no active token" in err
    code, _, err = run_cli(capsys, "server", "token", "create", "bad name!", "--db", db)
    assert code == 1 and "token name" in err
    stored = (tmp_path / "tokens.db").read_bytes()
    assert token.encode() not in stored  # only its hash is kept


def test_a_token_made_by_the_cli_opens_the_server(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    server = LiveServer(db, tmp_path).start()
    try:
        out = run_cli(capsys, "server", "token", "create", "me", "--db", db)[1]
        assert Api(server.url, out.strip())("GET", "/api/v1/runs").status_code == 200
        run_cli(capsys, "server", "token", "revoke", "me", "--db", db)
        assert Api(server.url, out.strip())("GET", "/api/v1/runs").status_code == 401
    finally:
        server.stop()


def test_migrate_and_the_schema_matches_the_models(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from autolog.server.db import Database
    from autolog.server.tables import metadata

    url = f"sqlite:///{tmp_path / 'deep' / 'dir' / 'm.db'}"
    code, out, _ = run_cli(capsys, "server", "migrate", "--db", url)
    assert code == 0 and f"revision {schema_head()}" in out
    assert run_cli(capsys, "server", "migrate", "--db", url)[0] == 0  # again: a no-op
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
            assert [d for d in diffs if not _identity_on_sqlite(d, metadata)] == []
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        db.dispose()


def _identity_on_sqlite(diff: Any, metadata: Any) -> bool:
    """alembic 1.13 (the oldest the server claims) reports an ``Identity()`` column as a changed
    default on SQLite, which has no identity columns (``runs.seq`` is its rowid order there);
    later releases report nothing."""
    if not isinstance(diff, list) or len(diff) != 1 or diff[0][0] != "modify_default":
        return False
    _, _, table, column = diff[0][:4]
    return metadata.tables[table].c[column].identity is not None


def test_server_options_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["server", "--help"])
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--db", "--artifacts", "--workers", "--no-auth",
                   "--max-upload-mb", "token", "migrate"):
        assert option in out
    from autolog.server import cli as server_cli

    args = server_cli._parser().parse_args([])
    assert (args.port, args.db, args.host) == (5005, "sqlite:///autolog.db", "127.0.0.1")
    assert server_cli._parser().parse_args(["token", "list"]).db == "sqlite:///autolog.db"
    code, _, err = run_cli(capsys, "server", "--db", "sqlite://", "migrate")
    assert code == 1 and "in-memory" in err


def test_the_cli_parser_does_not_import_the_server_stack() -> None:
    code = ("import sys, autolog.cli; autolog.cli._parser(); "
            "heavy = [m for m in ('fastapi', 'sqlalchemy', 'uvicorn', 'alembic', 'starlette') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
