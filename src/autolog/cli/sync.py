"""``autolog sync``: deliver to remote backends what they have not received yet, bounded in
time, one cause per backend; ``autolog sync --status``: what is still pending."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..delivery.sync import size_text
from . import common
from .render import Column, Table, print_table

__all__ = ["SYNC_TIMEOUT", "cmd_sync", "configure"]

SYNC_TIMEOUT = 300.0


def configure(sub: Any) -> None:
    sync = sub.add_parser("sync", help="deliver what backends have not received yet")
    sync.add_argument("runs", nargs="*", metavar="RUN",
                      help="run ids, unique id prefixes or unique names (default: every run)")
    sync.add_argument("--to", metavar="BACKEND",
                      help="deliver to this backend (default: each run's own backends)")
    sync.add_argument("--timeout", type=_seconds, default=SYNC_TIMEOUT, metavar="SECONDS",
                      help=f"stop after this long; the rest is left for the next sync "
                           f"(default {SYNC_TIMEOUT:g}; 0: no limit)")
    sync.add_argument("--status", action="store_true",
                      help="what is still pending per backend, and whether a delivery process "
                           "runs; delivers nothing")
    common.store_args(sync)
    sync.set_defaults(func=cmd_sync)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more seconds")
    return value


def cmd_sync(args: argparse.Namespace) -> int:
    from ..journal.reader import list_runs

    with common.open_store(args) as store:
        if args.status:
            return _sync_status(store.root, args.json)
        if args.runs:
            dirs = [store.root / store.resolve(r, deleted=None) for r in args.runs]
        else:  # parents before children: oldest first
            dirs = [r.path for r in reversed(list_runs(store.root))]
    return _sync(dirs, args)


def _sync(dirs: list[Path], args: argparse.Namespace) -> int:
    from ..delivery.sync import Sync, plan
    from ..runs import make_backend

    sync = Sync(make_backend)
    keys = sync.keys([args.to] if args.to else _recorded_backends(dirs))
    if args.to and keys[args.to] is None:  # the one backend asked for cannot be made
        print(f"autolog: {sync.breaker(args.to).cause}", file=sys.stderr)
        return 1
    jobs = plan(dirs, keys, args.to)
    if not jobs:
        print("[]" if args.json else "nothing to sync")
        return 0
    view = _SyncView(jobs, quiet=args.json)
    sync.on_progress, sync.on_result, sync.on_wait = view.progress, view.result, view.waiting
    deadline = time.monotonic() + args.timeout if args.timeout else None
    summary = sync.run(jobs, deadline)
    view.clear()
    if not (summary.interrupted or summary.timed_out):
        sync.close()  # an abandoned call may still hold its backend: leave it to the exit
    if args.json:
        print(json.dumps([r.as_dict() for r in summary.results], indent=2))
    else:
        print(summary.text(), file=sys.stderr)
    if summary.interrupted:
        return 130
    return 1 if summary.left() else 0


def _recorded_backends(dirs: list[Path]) -> list[str]:
    from ..journal.reader import read_meta

    names: dict[str, None] = {}
    for run_dir in dirs:
        for name in (read_meta(run_dir) or {}).get("backends", ()):
            if name != "local":
                names[name] = None
    return list(names)


def _sync_status(root: Path, as_json: bool) -> int:
    from ..delivery.handoff import running
    from ..delivery.sync import pending_by_name
    from ..journal.reader import list_runs

    pending: dict[str, dict[str, int]] = {}
    for record in list_runs(root):
        for name, left in pending_by_name(record.path).items():
            entry = pending.setdefault(name, {"runs": 0, "bytes": 0})
            entry["runs"] += 1
            entry["bytes"] += left
    processes = running(root)
    if as_json:
        print(json.dumps({"store": str(root), "pending": pending, "delivery_processes": processes},
                         indent=2))
        return 0
    print(f"store {root}")
    if not pending:
        print("nothing pending: every run reached its backends")
    else:
        print_table(Table([Column("backend"), Column("runs pending", align="right"),
                           Column("journal bytes", align="right")],
                          [[name, str(v["runs"]), size_text(v["bytes"])]
                           for name, v in pending.items()]))
    for proc in processes:
        print(f"delivery process {proc['pid']} running since {_clock(proc['started'])}, "
              f"for {', '.join(proc['backends'])}, until {_clock(proc['deadline'])} at the latest")
    if not processes:
        print("no delivery process running" + ("; run `autolog sync` to deliver" if pending
                                               else ""))
    return 0


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


class _SyncView:
    """What ``autolog sync`` shows on stderr: a bar that counts journal bytes on a terminal,
    one line per run delivered, a note when a backend stops answering."""

    def __init__(self, jobs: list[Any], quiet: bool):
        self.total = sum(job.left for job in jobs) or 1
        self.runs, self.finished, self.before = len(jobs), 0, 0
        self.quiet = quiet
        self.tty = sys.stderr.isatty() and not quiet

    def progress(self, job: Any, delivered: int) -> None:
        if self.tty:
            done = self.before + delivered
            filled = int(30 * min(done, self.total) / self.total)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {size_text(done)}/"
                             f"{size_text(self.total)}  {self.finished}/{self.runs} runs  "
                             f"{job.run_id[:8]} -> {job.backend}\x1b[K")
            sys.stderr.flush()

    def result(self, result: Any) -> None:
        self.finished += 1
        self.before += result.job.left
        if self.quiet or result.status not in ("done", "up to date", "busy"):
            return  # failures are summed up once, by cause, at the end
        outcome = {"busy": "another process is delivering it"}.get(result.status, result.status)
        self.clear()
        sys.stderr.write(f"{result.job.run_id[:8]} -> {result.job.backend}: "
                         f"{size_text(result.delivered)}, {outcome}\n")

    def waiting(self, job: Any, seconds: float) -> None:
        if not self.quiet:
            self.clear()
            sys.stderr.write(f"waiting for {job.backend}: no answer for {seconds:.0f} s "
                             f"(run {job.run_id[:8]}; Ctrl-C stops, what was delivered stays "
                             "delivered)\n")

    def clear(self) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
