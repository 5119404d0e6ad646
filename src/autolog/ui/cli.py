"""``autolog ui [--dir DIR] [--port 5050] [--host 127.0.0.1] [--no-browser]``.

Indexes the local store (``.index.sqlite`` beside the runs; only what changed since the last
time), serves the UI and the JSON API on ``--host:--port`` behind a random token, prints the URL
holding the token and opens the browser on it. A busy port moves to the next free one (said so);
a store that does not exist is a clear error. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import errno
import signal
import socket
import sys
import time
from pathlib import Path

__all__ = ["configure_parser"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
PORT_TRIES = 20


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", help="local store (default: AUTOLOG_DIR, else ./autolog-runs)")
    parser.add_argument("--port", type=int, default=5050,
                        help="port (default 5050; the next free one if it is taken)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface (default 127.0.0.1: this machine only)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.set_defaults(func=cmd_ui)


def cmd_ui(args: argparse.Namespace) -> int:
    from ..runs import store_root

    root = store_root(args.dir)
    if not root.is_dir():
        where = "--dir" if args.dir else "AUTOLOG_DIR" if _env_dir() else "the default"
        print(f"autolog ui: no run store at {root} (from {where}). Point at one with "
              "--dir DIR or AUTOLOG_DIR=DIR, or record a run first (autolog demo makes a few).",
              file=sys.stderr)
        return 1
    sock = _bind(args.host, args.port)
    if sock is None:
        print(f"autolog ui: ports {args.port}-{args.port + PORT_TRIES - 1} on {args.host} are "
              "all taken; choose another with --port", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    if port != args.port:
        print(f"autolog ui: port {args.port} is taken; using {port}", file=sys.stderr)
    if args.host not in LOOPBACK:
        print(f"autolog ui: WARNING: listening on {args.host}: other machines on the network "
              "can reach this port (the token in the URL still guards the runs)",
              file=sys.stderr)
    return serve(root, sock, args.host, open_browser=not args.no_browser)


def _env_dir() -> bool:
    import os

    return bool(os.environ.get("AUTOLOG_DIR"))


def _bind(host: str, port: int) -> socket.socket | None:
    """A listening socket on ``port`` or the next free one (held, so nothing takes it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in range(port, port + PORT_TRIES):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES) and port != 0:
                continue
            raise
        sock.listen(128)
        sock.set_inheritable(True)
        return sock
    return None


def serve(root: Path, sock: socket.socket, host: str, *, open_browser: bool) -> int:
    import logging

    import uvicorn

    from ..server.app import create_app
    from ..server.cli import connection_options
    from ..server.settings import ServerConfig
    from .index import Index
    from .local import LocalContext

    began = time.monotonic()
    port = sock.getsockname()[1]
    index = Index(root)
    print(f"autolog ui: indexing {root} ...", file=sys.stderr, flush=True)
    # what the first table needs: new runs and live ones; ended runs' journals (edits made by
    # another process) are checked by the background thread's first full pass, a moment later
    changed = index.refresh(full=False)
    index.ready.set()
    index.start()
    context = LocalContext(root, port=port, index=index)
    app = create_app(ServerConfig(), context)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/?token={context.token}"
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=3,
                            **connection_options(ServerConfig().header_timeout))
    server = uvicorn.Server(config)

    def stop(signum: int, frame: object) -> None:
        """Ctrl-C from the URL on, also before uvicorn has set its own handler (uvicorn puts
        this one back when it ends and sends it the signals it caught): asks the server to
        stop, as uvicorn's own handler does. The default handler raised KeyboardInterrupt
        wherever the main thread was; inside a weakref callback or a ``__del__`` Python prints
        it and goes on, and the server kept serving (2 starts in 65 on Python 3.10, under load)."""
        if server.should_exit:
            server.force_exit = True  # a second Ctrl-C: no wait for open connections
        server.should_exit = True

    signal.signal(signal.SIGINT, stop)
    print(f"autolog ui: {index.run_count()} runs ({changed} new or changed) indexed in "
          f"{time.monotonic() - began:.1f}s; serving {root}\n\n    {url}\n\n(Ctrl-C to stop)",
          flush=True)
    if open_browser:
        _open_browser(url)
    server.run(sockets=[sock])
    print("autolog ui: stopped", file=sys.stderr)
    return 0


def _open_browser(url: str) -> None:
    import threading
    import webbrowser

    def go() -> None:
        try:
            webbrowser.open(url)
        except Exception as exc:  # no browser here: the URL is printed anyway
            print(f"autolog ui: could not open a browser ({exc}); open the URL above",
                  file=sys.stderr)

    threading.Thread(target=go, daemon=True).start()


