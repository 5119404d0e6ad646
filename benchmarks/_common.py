"""What the benchmark scripts share: options, printing tables, timing a call, paired-round
reports, this tree against another checkout, MLflow on a sqlite store."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol


def arguments(doc: str, quick_help: str) -> argparse.ArgumentParser:
    """The options of the timing scripts: ``--quick`` and ``--repeats N`` (more may be added)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default: by --quick)")
    return parser


def fit_sizes(args: argparse.Namespace) -> tuple[int, int, int]:
    """Rows, epochs and rounds of the paired Keras and Lightning fits."""
    rows, epochs = (2048, 2) if args.quick else (8192, 3)
    return rows, epochs, args.repeats or (3 if args.quick else 11)


def against(other: Path, code: str, rounds: int) -> dict[str, list[float]]:
    """Run ``code`` (it prints numbers on one line) with this tree's ``src`` and with
    ``other``'s (a checkout), in fresh interpreters without ``AUTOLOG_*`` variables, ``rounds``
    times, the two trees interleaved so that a noisy machine weighs on both alike. For each
    tree, ``"this tree"`` and ``str(other)``, the median of each printed number."""
    trees = {"this tree": Path(__file__).resolve().parents[1], str(other): other.resolve()}
    results: dict[str, list[list[float]]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, root in trees.items():
            env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOLOG_")}
            env["PYTHONPATH"] = str(root / "src")
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 env=env, check=True, cwd=tempfile.gettempdir()).stdout.split()
            results[name].append([float(v) for v in out])
    return {name: [statistics.median(c) for c in zip(*runs, strict=True)]
            for name, runs in results.items()}


def mlflow_on_sqlite(directory: Path) -> None:
    """Point MLflow (imported by the caller) at ``directory/mlflow.db``, experiment ``bench``,
    with its logging and warnings quiet."""
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    mlflow.set_tracking_uri(f"sqlite:///{directory / 'mlflow.db'}")
    mlflow.set_experiment("bench")


def table(title: str, headers: list[str], rows: list[list[object]]) -> None:
    """Print an aligned plain-text table under ``title``."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def timed(fn: Callable[[], Any]) -> float:
    """Milliseconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


class Timed(Protocol):
    name: str
    times: list[float]
    error: str | None


def report_paired(framework: str, configs: Sequence[Timed], batches: int, repeats: int,
                  cadence: str = "one metric logged each batch") -> None:
    """Median fit time, best fit time, and the median over rounds of each fit's time relative to
    the untracked fit of the same round (rounds interleave configurations, so a load spike on the
    machine hits a round's fits alike and cancels out of the ratio). ``configs[0]`` is the
    untracked one. Where a configuration named "an empty ... callback" ran (the floor: what any
    callback costs), the last column is the best fit relative to that floor's best fit: the
    figure for autolog's own fixed costs (budget: within 0.5 %)."""
    print(f"{framework}, Python {sys.version.split()[0]}; {batches} batches per fit, {cadence}; "
          f"{repeats} rounds")
    base = configs[0].times
    floor = next((c for c in configs if c.name.lower().startswith("an empty")
                  and c.times and not c.error), None)
    print(f"| {'configuration':<44} | {'median fit (s)':>14} | {'best fit (s)':>12} | "
          f"{'vs no tracking (median of rounds)':>33} | {'best vs empty callback':>22} |")
    print(f"|{'-' * 46}|{'-' * 16}|{'-' * 14}|{'-' * 35}|{'-' * 24}|")
    for config in configs:
        if config.error or len(config.times) != len(base):
            print(f"| {config.name:<44} | {'n/a':>14} | {'n/a':>12} | "
                  f"{config.error or 'not run':>33} | {'':>22} |")
            continue
        ratio = statistics.median(t / b for t, b in zip(config.times, base, strict=True))
        vs_floor = (f"{100 * (min(config.times) / min(floor.times) - 1):>+21.2f}%"
                    if floor is not None else f"{'no floor':>22}")
        print(f"| {config.name:<44} | {statistics.median(config.times):>14.3f} | "
              f"{min(config.times):>12.3f} | {100 * (ratio - 1):>+32.1f}% | {vs_floor} |")


class HookClock:
    """Time spent inside autolog's own hooks during each fit, timed around the calls: wall time
    (``time.perf_counter``) and the calling thread's CPU time (``time.thread_time``, which leaves
    out waiting for the interpreter lock: a hook on a framework's callback thread waits for the
    training thread). The wrapper adds about a microsecond a call. On a noisy machine the
    best-fit column cannot resolve a few milliseconds a fit; this reads them directly. It misses
    what autolog costs the framework's code indirectly (caches, the collector).

    ``per_step`` maps a class to the methods the framework calls every batch (or logging step);
    ``rest`` to those it calls a few times a fit (begin, epochs, end: the model's save among
    them). A call made inside another timed call is counted once, in the outer one."""

    def __init__(self, per_step: dict[type, Sequence[str]], rest: dict[type, Sequence[str]]):
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sums = [0.0] * 4  # rest wall, rest CPU, per-step wall, per-step CPU
        self._step_calls = 0
        self._originals: list[tuple[type, str, Any]] = []
        for table_, per in ((per_step, True), (rest, False)):
            for cls, names in table_.items():
                for name in names:
                    self._wrap(cls, name, per)

    def _wrap(self, cls: type, name: str, per_step: bool) -> None:
        original = getattr(cls, name)
        self._originals.append((cls, name, cls.__dict__[name]))
        local, lock, clock = self._local, self._lock, self
        at = 2 if per_step else 0

        @functools.wraps(original)
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(local, "depth", 0)
            local.depth = depth + 1
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
                local.depth = depth
                if not depth:
                    with lock:
                        sums = clock._sums
                        sums[at] += wall
                        sums[at + 1] += cpu
                        clock._step_calls += per_step

        setattr(cls, name, timed_call)

    def unwrap(self) -> None:
        """Put the hooks back as they were (``--no-hook-clock``: the fits timed without the
        timer inside them; ``take`` then reads nothing)."""
        for cls, name, original in reversed(self._originals):
            setattr(cls, name, original)
        self._originals.clear()

    def take(self) -> tuple[float, float, float, float, int]:
        """Seconds in the other hooks (wall, CPU), in the per-step ones (wall, CPU), and the
        per-step calls, since the last ``take``."""
        with self._lock:
            taken = (*self._sums, self._step_calls)
            self._sums = [0.0] * 4
            self._step_calls = 0
        return taken  # type: ignore[return-value]


def hook_clock_option(parser: argparse.ArgumentParser) -> None:
    """``--no-hook-clock``: time the fits with nothing wrapped around autolog's hooks."""
    parser.add_argument("--no-hook-clock", action="store_true",
                        help="no timer around autolog's hooks (the fits alone; no hooks table)")


def report_hooks(title: str, rows: Sequence[tuple[str, list[tuple[float, float, float, float, int]],
                                                  list[float]]]) -> None:
    """For each configuration (name, each fit's ``HookClock.take()``, each fit's seconds), the
    medians over fits of the time inside autolog's hooks, and their wall time's share of the
    fit."""
    cells = []
    for name, takes, times in rows:
        if not takes:
            continue
        rest, rest_cpu, step, step_cpu, calls = (statistics.median(t[i] for t in takes)
                                                 for i in range(5))
        share = statistics.median((t[0] + t[2]) / s for t, s in zip(takes, times, strict=True))
        per_call = (f"{step / calls * 1e6:.1f} ({step_cpu / calls * 1e6:.1f})" if calls
                    else "-")
        cells.append([name, f"{rest * 1e3:.1f} ({rest_cpu * 1e3:.1f})",
                      f"{step * 1e3:.1f} ({step_cpu * 1e3:.1f})", per_call, f"{calls:.0f}",
                      f"{share * 100:.2f} %"])
    table(title, ["configuration", "begin/epochs/end ms (CPU)", "per-step hooks ms (CPU)",
                  "us a call (CPU)", "calls", "wall, of the fit"], cells)
