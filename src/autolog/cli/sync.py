"""``autolog sync``: deliver to remote backends what they have not received yet."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..backends.base import BackendUnavailable
from . import common

__all__ = ["cmd_sync", "configure"]


def configure(sub: Any) -> None:
    sync = sub.add_parser("sync", help="deliver what backends have not received yet")
    sync.add_argument("runs", nargs="*", metavar="RUN",
                      help="run ids, unique id prefixes or unique names (default: every run)")
    sync.add_argument("--to", metavar="BACKEND",
                      help="deliver to this backend (default: each run's own backends)")
    common.store_args(sync)
    sync.set_defaults(func=cmd_sync)


def cmd_sync(args: argparse.Namespace) -> int:
    from ..journal.reader import list_runs

    with common.open_store(args) as store:
        if args.runs:
            dirs = [store.root / store.resolve(r, deleted=None) for r in args.runs]
        else:  # parents before children: oldest first
            dirs = [r.path for r in reversed(list_runs(store.root))]
    return _sync(dirs, args)


def _sync(dirs: list[Path], args: argparse.Namespace) -> int:
    from ..journal.reader import load_run
    from ..runs import make_backend

    backends: dict[str, Any] = {}
    report = []
    for run_dir in dirs:
        meta = load_run(run_dir)._meta
        targets = [args.to] if args.to else [b for b in meta.get("backends", []) if b != "local"]
        for name in targets:
            if name not in backends:
                backends[name] = make_backend(name)
            report.append(_sync_one(backends[name], run_dir, args.json))
    for backend in backends.values():
        backend.close()
    if args.json:
        print(json.dumps(report, indent=2))
    elif not report:
        print("nothing to sync")
    return 1 if any(r["status"] == "failed" for r in report) else 0


def _sync_one(backend: Any, run_dir: Path, quiet: bool) -> dict[str, Any]:
    from ..delivery.replay import DeliveryBusy, deliver, pending_lines

    key = backend.cursor_key()
    total = pending_lines(run_dir, key)
    result = {"run": run_dir.name, "backend": backend.name, "lines": total, "status": "done"}
    bar = _Progress(f"{run_dir.name[:8]} -> {backend.name}", total, quiet)
    try:
        deliver(backend, run_dir, progress=bar.advance)
    except DeliveryBusy:
        result["status"] = "busy"
        bar.close("another process is delivering it")
        return result
    except BackendUnavailable:
        bar.close("not delivered")
        raise  # said once for the whole sync, by main()
    except Exception as exc:
        result.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        bar.close(f"failed: {type(exc).__name__}: {exc}")
        return result
    bar.close("up to date" if total == 0 else "done")
    return result


class _Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, label: str, total: int, quiet: bool):
        self.label, self.total, self.done, self.quiet = label, total, 0, quiet
        self.tty = sys.stderr.isatty()

    def advance(self, lines: int) -> None:
        self.done += lines
        if self.tty and not self.quiet and self.total:
            filled = int(30 * self.done / self.total)
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] "
                             f"{self.done}/{self.total} lines")
            sys.stderr.flush()

    def close(self, outcome: str) -> None:
        if not self.quiet:
            end = "\r" if self.tty else ""
            sys.stderr.write(f"{end}{self.label}: {self.done}/{self.total} lines, {outcome}\n")
