"""The autolog command: find, compare, export and edit runs, deliver them, check the setup.

One module per command group; each adds its sub-commands to the parser and imports what it
needs only when it runs (building the parser loads no SQLAlchemy, rich or server code, so
``autolog --help`` stays quick). ``autolog run`` is handed to :mod:`autolog.launch` before any
of them is imported: the launcher's start-up is time the user's command waits. Errors a person
can fix print one message on stderr and exit 1; a usage error exits 2.
"""

from __future__ import annotations

import sys

from .._version import __version__

TYPE_CHECKING = False  # typing's, without importing typing: `autolog run` starts its command first
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

__all__ = ["detail", "main", "summary"]

DESCRIPTION = """\
Find, compare, export and edit recorded runs; deliver them to your trackers; check the setup.
Runs are read from the local store: --dir, else AUTOLOG_DIR, else the nearest autolog-runs
directory here or above. A RUN is a run id, a unique id prefix or a unique run name."""

EPILOG = """\
examples:
  autolog runs --sort -metrics.val_acc          best runs first
  autolog runs --filter "params.model = xgb and metrics.acc > 0.9"
  autolog diff sweep-3 sweep-7                  what differs between two runs
  autolog export --format csv -o runs.csv       one row per run
  autolog doctor                                what is misconfigured, and the fix

docs: docs/cli.md"""

#: the module that does each extra's work -> the extra that installs it
EXTRAS = {"psycopg": "server", "mlflow": "mlflow", "wandb": "wandb", "pyarrow": "parquet",
          "sklearn": "sklearn", "xgboost": "xgboost", "keras": "keras",
          "lightning": "lightning", "transformers": "transformers", "aim": "aim",
          "clearml": "clearml", "comet_ml": "comet", "tensorboard": "tensorboard"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        return cmd_run(argv[1:])
    from ..backends.base import BackendUnavailable
    from .common import UsageError

    try:
        if argv[:1] == ["server"]:
            return cmd_server(argv[1:])
        parser = _parser()
        args = parser.parse_args(_dash_values(argv))
        if not hasattr(args, "func"):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"autolog: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        print(f"autolog: {missing_module(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("autolog: interrupted", file=sys.stderr)
        return 130
    except (LookupError, ValueError, ImportError, ConnectionError, OSError,
            BackendUnavailable) as exc:
        message = exc.args[0] if isinstance(exc, LookupError) and exc.args else exc
        print(f"autolog: {message}", file=sys.stderr)
        return 1


#: options whose value may start with '-' (``--sort -metrics.acc``: highest first)
DASH_VALUES = ("--sort", "-s")


def _dash_values(argv: list[str]) -> list[str]:
    """``--sort -metrics.acc`` as ``--sort=-metrics.acc``: argparse would take the value for
    an option."""
    out: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            out += [arg, *args]
            break
        if arg in DASH_VALUES:
            value = next(args, None)
            if value is not None and value.startswith("-") and len(value) > 1:
                out.append(f"--sort={value}")
                continue
            out += [arg] if value is None else [arg, value]
            continue
        out.append(arg)
    return out


#: autolog's own dependencies: missing means a broken install
CORE = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "pydantic", "rich",
        "requests", "psutil", "pluggy", "wrapt")


def missing_module(exc: ModuleNotFoundError) -> str:
    """What to install for a module that is not there: the extra's ``pip install`` line."""
    name = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(name)
    if name in CORE:
        return (f"{name}, one of autolog's own dependencies, is not installed; install it "
                f"again: pip install 'autolog-ml' {name}")
    if extra is None:
        return f"{exc}; install it with: pip install {name}" if name else str(exc)
    return f"this needs {name}, which is not installed: pip install 'autolog-ml[{extra}]'"


def __getattr__(name: str) -> object:
    if name in ("detail", "summary"):  # one run as text and as a row (``autolog show``'s)
        from . import show

        return getattr(show, name)
    raise AttributeError(f"module 'autolog.cli' has no attribute {name!r}")


def _parser() -> argparse.ArgumentParser:
    import argparse

    from . import diff, doctor, edit, export, listing, show, sync

    parser = argparse.ArgumentParser(
        prog="autolog", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"autolog {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")
    listing.configure(sub)
    show.configure(sub)
    diff.configure(sub)
    export.configure(sub)
    edit.configure(sub)
    sync.configure(sub)
    doctor.configure(sub)
    demo = sub.add_parser("demo", help="train small models with autolog on, then list the runs")
    demo.add_argument("--dir", help="where to record them (default: AUTOLOG_DIR, else "
                      "./autolog-runs)")
    demo.set_defaults(func=cmd_demo)
    ui = sub.add_parser("ui", help="browse, chart and compare the local store's runs in a "
                        "browser")
    from ..ui.cli import configure_parser as configure_ui

    configure_ui(ui)
    # listed here for --help; `autolog run/server ...` are parsed by their own parsers (main)
    sub.add_parser("run", help="run a training command with autolog on, no code change: "
                   "autolog run -- python train.py ARGS")
    sub.add_parser("server", help="run the autolog tracking server")
    return parser


def cmd_run(argv: list[str]) -> int:
    """``autolog run [options] -- COMMAND``: see :mod:`autolog.launch` (it reports its own
    errors: the exit code is the command's)."""
    from ..launch import main as launch_main

    return launch_main(argv)


def cmd_server(argv: list[str]) -> int:
    """``autolog server ...``: the only command that imports :mod:`autolog.server`'s app."""
    from ..server.cli import main as server_main

    return server_main(argv)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    store = run_demo(args.dir)
    code = main(["runs", "--dir", store, "--limit", "10"])
    print("\nnext: autolog show <id or name>   (params, tags, metrics, artifacts of one run)"
          "\n      autolog ui                   (the same runs in a browser)")
    return code
