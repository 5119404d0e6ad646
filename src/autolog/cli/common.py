"""Options and checks the commands share: the store options, run queries (filter, sort,
columns, status) read from the command line, with errors that point at the mistake."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .. import filters
    from .store import LocalStore

__all__ = ["UsageError", "columns", "confirm", "open_store", "query_filter", "sort_key",
           "status_name", "store_args"]

STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED", "CRASHED")


class UsageError(ValueError):
    """A command-line value that cannot work; the message says why and what would."""


def store_args(parser: argparse.ArgumentParser, *, server: bool = False,
               output: bool = True) -> None:
    parser.add_argument("--dir", metavar="DIR",
                        help="the local store (default: AUTOLOG_DIR if set, else the nearest "
                        "autolog-runs directory here or above)")
    if server:
        parser.add_argument("--server", metavar="URL",
                            help="read from an autolog server instead of the local store")
        parser.add_argument("--token", help="bearer token for --server (default: "
                            "AUTOLOG_HTTP_TOKEN)")
    if output:
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def open_store(args: argparse.Namespace) -> LocalStore:
    from .store import LocalStore, find_store

    return LocalStore(find_store(getattr(args, "dir", None)))


def status_name(text: str) -> str:
    """``--status`` (any case) as a status; the accepted ones listed when it is not one."""
    status = text.strip().upper()
    if status not in STATUSES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a status; use one of "
                                         f"{', '.join(STATUSES)}")
    return status


def _pointed(option: str, text: str, exc: Any) -> UsageError:
    """A filter/sort error with the expression and a caret under the column."""
    caret = " " * (max(exc.column, 1) - 1) + "^"
    return UsageError(f"{option}: {exc.message}\n  {text}\n  {caret}")


def query_filter(text: str | None) -> filters.Node | None:
    from .. import filters

    if text is None or not text.strip():
        return None
    try:
        return filters.parse(text)
    except filters.FilterError as exc:
        raise _pointed("--filter", text, exc) from None


def sort_key(text: str | None) -> filters.SortKey | None:
    from .. import filters

    if not text:
        return None
    try:
        return filters.parse_sort(text)
    except filters.FilterError as exc:
        raise _pointed("--sort", text, exc) from None


def columns(text: str | None) -> list[filters.Field]:
    """``--columns params.lr,metrics.acc:max,tags.team``."""
    from .. import filters

    fields = []
    for name in (n.strip() for n in (text or "").split(",")):
        if not name:
            continue
        try:
            field = filters.parse_field(name)
        except filters.FilterError as exc:
            raise _pointed("--columns", name, exc) from None
        if field.key is None:
            raise UsageError(f"--columns: {name!r} is shown already; pick params.KEY, "
                             "metrics.KEY (:min, :max) or tags.KEY")
        fields.append(field)
    return fields


def confirm(question: str, yes: bool) -> bool:
    """Ask on a terminal; refuse without ``--yes`` when stdin is not one (a script, a pipe)."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"{question.rstrip('?')}: stdin is not a terminal to confirm on; "
                         "add --yes to go ahead")
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
