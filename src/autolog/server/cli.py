"""``autolog server``: run the tracking server, migrate its database, manage its tokens.

``autolog server ...`` hands its arguments to :func:`main` here; FastAPI, SQLAlchemy and uvicorn
load only when a command that needs them runs.

::

    autolog server --host 127.0.0.1 --port 5005 --db sqlite:///autolog.db --artifacts DIR
    autolog server token create NAME [--scope read|write|admin]   # prints the token, once
    autolog server token revoke NAME
    autolog server token list [--json]
    autolog server migrate                                        # schema only, then exit
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

__all__ = ["configure_parser", "main"]

DEFAULT_DB = "sqlite:///autolog.db"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def main(argv: list[str]) -> int:
    """Parse ``autolog server``'s arguments and run the command they name."""
    args = _parser().parse_args(argv)
    return int(args.func(args) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autolog server",
                                     description="Run the autolog tracking server, migrate its "
                                     "database, manage its tokens.")
    configure_parser(parser)
    return parser


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the server's options and sub-commands to ``parser`` (``autolog server``)."""
    _db_option(parser, DEFAULT_DB)
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=5005, help="port (default 5005)")
    parser.add_argument("--artifacts", metavar="DIR", default="autolog-artifacts",
                        help="directory for artifact files (default ./autolog-artifacts)")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes (default 1; for PostgreSQL, not SQLite)")
    parser.add_argument("--no-auth", action="store_true",
                        help="serve without tokens (only for a trusted, local network)")
    parser.add_argument("--max-request-mb", type=_positive, default=32,
                        help="largest JSON request body after gzip inflation (default 32)")
    parser.add_argument("--max-upload-mb", type=_positive, default=2048,
                        help="largest artifact file (default 2048)")
    parser.add_argument("--max-in-flight", type=_positive, default=64,
                        help="requests at once per process before answering 503 (default 64)")
    parser.add_argument("--header-timeout", type=_seconds, default=10,
                        help="seconds a connection has to send a whole request head; "
                        "unauthenticated requests their body too (default 10)")
    parser.add_argument("--body-timeout", type=_seconds, default=30,
                        help="seconds to wait for the next part of a request body before "
                        "answering 408 (default 30)")
    parser.add_argument("--max-anonymous", type=_positive, default=16,
                        help="unauthenticated requests (pages, sign-in) at once per process "
                        "(default 16)")
    parser.add_argument("--max-anonymous-per-client", type=_positive, default=4,
                        help="unauthenticated requests at once from one client address "
                        "(default 4)")
    parser.add_argument("--pool-size", type=_positive, default=10,
                        help="database connections per process (default 10)")
    parser.add_argument("--root-path", default="",
                        help="URL prefix when served behind a proxy under a sub-path")
    parser.add_argument("--forwarded-allow-ips", default="127.0.0.1",
                        help="proxies whose X-Forwarded-* headers are trusted (default "
                        "127.0.0.1)")
    parser.add_argument("--log-level", default="info",
                        choices=["critical", "error", "warning", "info", "debug"])
    parser.set_defaults(func=cmd_serve)
    sub = parser.add_subparsers(metavar="SUBCOMMAND")

    migrate = sub.add_parser("migrate", help="create or upgrade the database schema, then exit")
    _db_option(migrate)
    migrate.set_defaults(func=cmd_migrate)

    token = sub.add_parser("token", help="create, revoke and list API tokens")
    token_sub = token.add_subparsers(metavar="ACTION")
    create = token_sub.add_parser("create", help="create a token and print it (shown once)")
    create.add_argument("name", help="a name for the token (who or what uses it)")
    create.add_argument("--scope", choices=["read", "write", "admin"], default="write",
                        help="read: list and download; write: also record runs (default); "
                        "admin: also manage tokens")
    _db_option(create)
    create.set_defaults(func=cmd_token_create)
    revoke = token_sub.add_parser("revoke", help="revoke the active token with this name")
    revoke.add_argument("name")
    _db_option(revoke)
    revoke.set_defaults(func=cmd_token_revoke)
    listing = token_sub.add_parser("list", help="list tokens (names and scopes, not secrets)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    _db_option(listing)
    listing.set_defaults(func=cmd_token_list)
    token.set_defaults(func=lambda args: _usage(token))


def _db_option(parser: argparse.ArgumentParser, default: Any = argparse.SUPPRESS) -> None:
    parser.add_argument("--db", default=default, metavar="URL",
                        help="database: sqlite:///path.db (default sqlite:///autolog.db) or "
                        "postgresql://user:password@host:5432/dbname")


def _positive(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{raw} must be a positive whole number")
    return value


def _seconds(raw: str) -> float:
    value = float(raw)
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"{raw} must be a number of seconds above 0")
    return value


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _database(args: argparse.Namespace) -> Any:
    from .db import Database

    db = Database(getattr(args, "db", DEFAULT_DB))
    db.migrate()
    return db


# -- commands ---------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from .settings import MiB, ServerConfig

    config = ServerConfig(db=args.db, artifacts=args.artifacts, auth=not args.no_auth,
                          max_request_bytes=args.max_request_mb * MiB,
                          max_upload_bytes=args.max_upload_mb * MiB,
                          max_in_flight=args.max_in_flight, pool_size=args.pool_size,
                          header_timeout=args.header_timeout, body_timeout=args.body_timeout,
                          max_anonymous=args.max_anonymous,
                          max_anonymous_per_client=args.max_anonymous_per_client)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s:     %(message)s")
    if args.log_level != "debug":
        logging.getLogger("alembic").setLevel(logging.WARNING)
    _preflight(args, config)
    options = {"host": args.host, "port": args.port, "log_level": args.log_level,
               "root_path": args.root_path, "proxy_headers": True,
               "forwarded_allow_ips": args.forwarded_allow_ips, "timeout_graceful_shutdown": 10,
               **connection_options(config.header_timeout)}
    if args.workers > 1:
        config.to_environ()
        uvicorn.run("autolog.server.app:app_from_environ", factory=True, workers=args.workers,
                    **options)
    else:
        from .app import create_app

        uvicorn.run(create_app(config), **options)
    return 0


def connection_options(header_timeout: float) -> dict[str, Any]:
    """uvicorn's options for slow and idle connections (``autolog ui`` uses them too): a
    request head must arrive within ``header_timeout`` s and fit in 16 KiB (h11's limit, made
    explicit), an idle keep-alive connection is closed after 5 s."""
    from .connections import protocol

    return {"http": protocol(header_timeout), "timeout_keep_alive": 5,
            "h11_max_incomplete_event_size": 16 * 1024}


def _preflight(args: argparse.Namespace, config: Any) -> None:
    """Migrate once before workers start, and say what is about to be served."""
    from . import auth

    db = _database(args)
    say = print if args.log_level in ("info", "debug") else (lambda *a, **k: None)
    say(f"autolog server: database {db.display_url}, artifacts {args.artifacts}",
        file=sys.stderr)
    if not config.auth:
        print("autolog server: WARNING: --no-auth: anyone who can reach "
              f"{args.host}:{args.port} can read and write every run", file=sys.stderr)
        if args.host not in LOOPBACK:
            print("autolog server: WARNING: and it listens beyond this machine",
                  file=sys.stderr)
    elif not auth.count_active(db):
        print("autolog server: no API token exists yet, so every request will get 401; "
              f"create one with: autolog server token create NAME --db {db.display_url}",
              file=sys.stderr)
    if db.sqlite and args.workers > 1:
        print("autolog server: WARNING: several workers on SQLite serialise on its single "
              "writer; use PostgreSQL to scale out", file=sys.stderr)
    db.dispose()


def cmd_migrate(args: argparse.Namespace) -> int:
    db = _database(args)
    print(f"autolog server: {db.display_url} is at schema revision {db.migrate()}")
    db.dispose()
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from . import auth

    db = _database(args)
    token, record = auth.create_token(db, args.name, args.scope)
    db.dispose()
    print(f"created {record['scope']} token {record['name']!r}; it is shown only this once:",
          file=sys.stderr)
    print(token)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from . import auth

    db = _database(args)
    try:
        count = auth.revoke_token(db, args.name)
    finally:
        db.dispose()
    print(f"revoked {count} token(s) named {args.name!r}")
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from . import auth

    db = _database(args)
    rows = auth.list_tokens(db)
    db.dispose()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'NAME':<24} {'SCOPE':<6} {'CREATED':<19} STATUS")
    for row in rows:
        status = "active" if row["revoked"] is None else f"revoked {_when(row['revoked'])}"
        print(f"{row['name']:<24} {row['scope']:<6} {_when(row['created']):<19} {status}")
    return 0


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))
