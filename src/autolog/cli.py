"""``autolog``: list and show runs, deliver them (``sync``), record a script without editing it
(``run``), check the setup (``doctor``), run the demo, browse the local store (``ui``) and serve
runs (``server``). ``--json`` gives machine output."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._version import __version__
from .backends.base import BackendUnavailable

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        if argv[:1] == ["server"]:
            return cmd_server(argv[1:])
        if argv[:1] == ["run"]:
            return cmd_run(argv[1:])
        args = parser.parse_args(argv)
        if not hasattr(args, "func"):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("autolog: interrupted", file=sys.stderr)
        return 130
    except (LookupError, ValueError, ImportError, ConnectionError, OSError,
            BackendUnavailable) as exc:
        message = exc.args[0] if isinstance(exc, LookupError) and exc.args else exc
        print(f"autolog: {message}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autolog", description=__doc__)
    parser.add_argument("--version", action="version", version=f"autolog {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")

    runs = sub.add_parser("runs", help="list runs, newest first")
    _store_args(runs)
    runs.add_argument("--project", help="only this project")
    runs.add_argument("--limit", type=int, default=20, help="at most N runs (0: all; default 20)")
    runs.set_defaults(func=cmd_runs)

    show = sub.add_parser("show", help="one run: params, tags, last metrics, artifacts")
    show.add_argument("run", help="run id or unique id prefix")
    _store_args(show)
    show.set_defaults(func=cmd_show)

    sync = sub.add_parser("sync", help="deliver what backends have not received yet")
    sync.add_argument("runs", nargs="*", help="run ids or prefixes (default: every run)")
    sync.add_argument("--to", metavar="BACKEND",
                      help="deliver to this backend (default: each run's own backends)")
    sync.add_argument("--dir", help="local store (default: AUTOLOG_DIR)")
    sync.add_argument("--json", action="store_true", help="machine-readable output")
    sync.add_argument("--timeout", type=_seconds, default=SYNC_TIMEOUT, metavar="SECONDS",
                      help=f"stop after this long; the rest is left for the next sync "
                           f"(default {SYNC_TIMEOUT:g}; 0: no limit)")
    sync.add_argument("--status", action="store_true",
                      help="what is still pending per backend, and whether a delivery process "
                           "runs; delivers nothing")
    sync.set_defaults(func=cmd_sync)

    doctor = sub.add_parser("doctor", help="versions, frameworks, backends, plugins, GPUs")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(func=cmd_doctor)

    demo = sub.add_parser("demo", help="train small models with autolog on, then list the runs")
    demo.add_argument("--dir", help="local store (default: AUTOLOG_DIR)")
    demo.set_defaults(func=cmd_demo)

    ui = sub.add_parser("ui", help="browse, chart and compare the local store's runs in a "
                        "browser")
    from .ui.cli import configure_parser as configure_ui

    configure_ui(ui)

    # listed here for --help; `autolog run/server ...` are parsed by their own parsers (main)
    sub.add_parser("run", help="run a training command with autolog on, no code change: "
                   "autolog run -- python train.py ARGS")
    sub.add_parser("server", help="run the autolog tracking server (extra: server)")
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more seconds")
    return value


def _store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", help="local store (default: AUTOLOG_DIR)")
    parser.add_argument("--server", metavar="URL", help="read from an autolog server instead")
    parser.add_argument("--token", help="bearer token for --server (default: AUTOLOG_HTTP_TOKEN)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_run(argv: list[str]) -> int:
    """``autolog run [options] -- COMMAND``: see :mod:`autolog.launch`."""
    from .launch import main as launch_main

    return launch_main(argv)


def cmd_server(argv: list[str]) -> int:
    """``autolog server ...``: the only command that imports :mod:`autolog.server`."""
    from .server.cli import main as server_main

    return server_main(argv)


# -- runs and show ----------------------------------------------------------------------------


def summary(record: Any) -> dict[str, Any]:
    """The JSON shape of a run in ``autolog runs --json`` (the server returns the same)."""
    return {"id": record.id, "name": record.name, "project": record.project,
            "status": record.status, "parent_id": record.parent_id,
            "start_time": record.start_time, "end_time": record.end_time,
            "metrics": record.metrics}


def detail(record: Any) -> dict[str, Any]:
    """The JSON shape of ``autolog show --json``."""
    return {**summary(record), "params": record.params, "tags": record.tags,
            "artifacts": record.artifacts, "models": record.models}


def _client(args: argparse.Namespace) -> Any:
    from .backends.http import ServerClient

    return ServerClient(args.server, args.token)


def cmd_runs(args: argparse.Namespace) -> int:
    if args.server:
        rows = _client(args).list_runs(project=args.project, limit=args.limit or None)
    else:
        from . import api

        records = api.list_runs(args.dir, args.project)
        rows = [summary(r) for r in (records[:args.limit] if args.limit else records)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    _print_table(["id", "name", "project", "status", "start", "duration", "metrics"],
                 [_run_row(row) for row in rows])
    return 0


def _run_row(row: dict[str, Any]) -> list[str]:
    start, end = row.get("start_time"), row.get("end_time")
    duration = _duration((end - start) / 1000) if start and end else "-"
    metrics = row.get("metrics") or {}
    keys = sorted((k for k in metrics if not k.startswith("system/")), key=_headline)
    shown = [f"{k}={_number(metrics[k])}" for k in keys[:3]]
    return [row["id"][:8], row["name"], row["project"], row["status"],
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start / 1000)) if start else "-",
            duration, " ".join(shown)]


def cmd_show(args: argparse.Namespace) -> int:
    media: list[dict[str, Any]] = []
    if args.server:
        data = _client(args).get_run(args.run)
    else:
        from . import api

        record = api.get_run(args.run, args.dir)
        data = detail(record)
        media = [{"key": m.key, "kind": m.kind, "step": m.step} for m in record.media]
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    print(f"run      {data['id']}\nname     {data['name']}\nproject  {data['project']}\n"
          f"status   {data['status']}")
    for title in ("params", "tags", "metrics"):
        items = data.get(title) or {}
        if items:
            print(f"\n{title}:")
            width = max(len(k) for k in items)
            for key, value in sorted(items.items()):
                shown = _number(value) if title == "metrics" else value
                print(f"  {key:<{width}}  {shown}")
    if data.get("artifacts"):
        print("\nartifacts:")
        for name in data["artifacts"]:
            print(f"  {name}")
    _print_media(media)
    return 0


def _print_media(media: list[dict[str, Any]]) -> None:
    """One line per key: its kind, how many items, the steps they span."""
    by_key: dict[tuple[str, str], list[int]] = {}
    for item in media:
        by_key.setdefault((item["key"], item["kind"]), []).append(item["step"])
    if by_key:
        print("\nmedia:")
        width = max(len(key) for key, _ in by_key)
        for (key, kind), steps in by_key.items():
            span = f"step {steps[0]}" if len(steps) == 1 else \
                f"{len(steps)} items, steps {min(steps)}-{max(steps)}"
            print(f"  {key:<{width}}  {kind:<9}  {span}")


# -- sync -------------------------------------------------------------------------------------

SYNC_TIMEOUT = 300.0


def cmd_sync(args: argparse.Namespace) -> int:
    from .delivery.sync import Sync, plan
    from .journal.reader import find_run, list_runs
    from .runs import make_backend, store_root

    root = store_root(args.dir)
    if args.status:
        return _sync_status(root, args.json)
    dirs = ([find_run(root, r) for r in args.runs] if args.runs  # parents before children:
            else [r.path for r in reversed(list_runs(root))])  # oldest first
    sync = Sync(make_backend)
    keys = sync.keys([args.to] if args.to else _recorded_backends(dirs))
    if args.to and keys[args.to] is None:  # the one backend asked for cannot be made
        print(f"autolog: {sync.breaker(args.to).cause}", file=sys.stderr)
        return 1
    jobs = plan(dirs, keys, args.to)
    if not jobs:
        if args.json:
            print("[]")
        else:
            print("nothing to sync")
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
    from .journal.reader import read_meta

    names: dict[str, None] = {}
    for run_dir in dirs:
        for name in (read_meta(run_dir) or {}).get("backends", ()):
            if name != "local":
                names[name] = None
    return list(names)


def _sync_status(root: Path, as_json: bool) -> int:
    from .delivery.handoff import running
    from .delivery.sync import pending_by_name
    from .journal.reader import list_runs

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
        _print_table(["backend", "runs pending", "journal bytes"],
                     [[name, str(v["runs"]), _size(v["bytes"])] for name, v in pending.items()])
    for proc in processes:
        print(f"delivery process {proc['pid']} running since {_clock(proc['started'])}, "
              f"for {', '.join(proc['backends'])}, until {_clock(proc['deadline'])} at the latest")
    if not processes:
        print("no delivery process running" + ("; run `autolog sync` to deliver" if pending
                                               else ""))
    return 0


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


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
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {_size(done)}/"
                             f"{_size(self.total)}  {self.finished}/{self.runs} runs  "
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
                         f"{_size(result.delivered)}, {outcome}\n")

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


# -- doctor -----------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import report

    data = report()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"autolog {data['autolog']}  python {data['python']}  store {data['store']}")
    print(f"backends configured: {', '.join(data['configured_backends'])}\n")
    _print_table(["framework", "installed", "supported", "tested", "status"],
                 [[f["name"], f["installed"] or "-", f["supported"], f["tested"] or "-",
                   f["status"]] for f in data["frameworks"]])
    print()
    _print_table(["backend", "installed", "supported", "tested", "configured"],
                 [[b["name"], b["installed"] or "-", b.get("supported", "-"),
                   b.get("tested") or "-", "yes" if b["configured"] else "no"]
                  for b in data["backends"]])
    print()
    _print_table(["sampler", "status"], [[s["name"], s["status"]] for s in data["samplers"]])
    print(f"\nplugins loaded: {', '.join(data['plugins'])}")
    for name, why in data["failed_plugins"].items():
        print(f"plugin {name} FAILED: {why}")
    return 0


# -- demo -------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    store = run_demo(args.dir)
    code = main(["runs", "--dir", store, "--limit", "10"])
    print("\nnext: autolog show <id>   (params, tags, metrics, artifacts of one run)")
    return code


# -- formatting -------------------------------------------------------------------------------


def _print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max([len(h)] + [len(str(r[i])) for r in rows]) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


_HEADLINE_WORDS = ("loss", "score", "acc", "error", "auc", "f1")


def _headline(key: str) -> int:
    """Metrics that usually matter most come first in the runs table (stable otherwise);
    timings (``mean_score_time``) last."""
    key = key.lower()
    if "time" in key:
        return len(_HEADLINE_WORDS) + 1
    return next((i for i, word in enumerate(_HEADLINE_WORDS) if word in key),
                len(_HEADLINE_WORDS))


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


if __name__ == "__main__":
    sys.exit(main())
