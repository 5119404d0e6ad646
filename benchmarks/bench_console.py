"""Console capture budget: what capturing adds to a ``print`` on the caller's thread (< 1 µs a
line beyond the terminal write itself).

The "terminal" is a line-buffered text stream on ``/dev/null``, so every ``print`` ends in a
``write(2)`` as it would on a terminal; an unbuffered one (``python -u``, ``PYTHONUNBUFFERED=1``)
is measured too, where every ``write`` is passed down at once and captured one by one. Rounds
alternate between that stream without capture and the same kind of stream captured by autolog's
Python-level capture (``sys.stdout``, with an active run whose ``console.log`` the journal
writer drains meanwhile), in one process. The
caller's thread cost is measured two ways: wall time per line, and the thread's own CPU time per
line (``time.thread_time``), which leaves out what the writer thread does on its own. Where W&B
is installed, its own console capture (``console="wrap"``, offline) runs the same loop.

    python benchmarks/bench_console.py            # 200,000 lines x 9 rounds
    python benchmarks/bench_console.py --quick    # 50,000 lines x 3 rounds
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import arguments, table

BUDGET_US = 1.0


def terminal(unbuffered: bool = False) -> Any:
    """A line-buffered text stream on /dev/null, as ``sys.stdout`` on a terminal; unbuffered:
    every write passed down at once, as with ``python -u`` / ``PYTHONUNBUFFERED=1``."""
    if unbuffered:
        raw = io.BufferedWriter(io.FileIO(os.devnull, "w"))
        return io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    return open(os.devnull, "w", buffering=1, encoding="utf-8")


def fstring(stream: Any, i: int) -> None:
    print(f"epoch 3 step {i} loss 0.25", file=stream)  # two writes: the text, the newline


def arguments_print(stream: Any, i: int) -> None:
    print("epoch 3 step", i, "loss", 0.25, file=stream)  # eight writes


def per_line(stream: Any, lines: int, style: Callable[[Any, int], None]) -> tuple[float, float]:
    """(wall µs, caller-thread CPU µs) per ``print`` of one line to ``stream``."""
    wall, cpu = time.perf_counter(), time.thread_time()
    for i in range(lines):
        style(stream, i)
    return ((time.perf_counter() - wall) / lines * 1e6,
            (time.thread_time() - cpu) / lines * 1e6)


def paired(plain: Any, captured: Any, lines: int, rounds: int,
           style: Callable[[Any, int], None] = fstring) -> list[list[object]]:
    base_wall, base_cpu, on_wall, on_cpu = [], [], [], []
    for _ in range(rounds):
        wall, cpu = per_line(plain, lines, style)
        base_wall.append(wall)
        base_cpu.append(cpu)
        wall, cpu = per_line(captured, lines, style)
        on_wall.append(wall)
        on_cpu.append(cpu)
    added_wall = statistics.median(on - off for on, off in zip(on_wall, base_wall, strict=True))
    added_cpu = statistics.median(on - off for on, off in zip(on_cpu, base_cpu, strict=True))
    verdict = "ok" if added_cpu < BUDGET_US else "OVER BUDGET"
    what = "print(f'...')" if style is fstring else "print(a, b, c, d)"
    return [[f"{what} to the terminal (no capture)", f"{statistics.median(base_wall):.3f}",
             f"{statistics.median(base_cpu):.3f}", "", ""],
            [f"{what}, autolog capture on (run active)", f"{statistics.median(on_wall):.3f}",
             f"{statistics.median(on_cpu):.3f}", f"{added_wall:+.3f}",
             f"{added_cpu:+.3f} ({verdict})"]]


def bench_autolog(lines: int, rounds: int) -> tuple[list[list[object]], int]:
    import autolog
    from autolog import testing

    rows: list[list[object]] = []
    kept = 0
    for unbuffered in (False, True):
        plain, captured = terminal(unbuffered), terminal(unbuffered)
        real = sys.stdout
        sys.stdout = captured  # the stream autolog's capture wraps when the run starts
        try:
            with autolog.start_run("bench-console") as run:
                if unbuffered:
                    found = paired(plain, captured, lines, rounds, arguments_print)
                    rows += [[f"{row[0]}, unbuffered (-u)", *row[1:]] for row in found]
                else:
                    rows += paired(plain, captured, lines, rounds)
                    rows += paired(plain, captured, lines, rounds, arguments_print)
        finally:
            sys.stdout = real
        kept += int(autolog.get_run(run.id).tags.get("autolog.console.lines", "0"))
        testing.reset()  # the next stream is wrapped at the next run's start
    return rows, kept


def bench_wandb(lines: int, rounds: int, directory: Path) -> list[list[object]]:
    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(directory),
                      WANDB_CONFIG_DIR=str(directory / "wandb-config"),
                      WANDB_CACHE_DIR=str(directory / "wandb-cache"))
    plain, captured = terminal(), terminal()
    real = sys.stdout
    sys.stdout = captured  # W&B wraps the sys.stdout it finds when it is imported
    try:
        try:
            import wandb
        except ImportError:
            return [["W&B console='wrap' (offline)", "not installed", "", "", ""]]
        run = wandb.init(project="bench", settings=wandb.Settings(console="wrap"))
        rows = paired(plain, captured, max(1000, lines // 50), rounds)[1:]  # it is slow
        run.finish()
    finally:
        sys.stdout = real
    rows[0][0] = "print(f'...'), W&B console='wrap' (offline)"
    rows[0][4] = rows[0][4].split(" (")[0]
    return rows


def main() -> None:
    parser = arguments(__doc__, "50,000 lines x 3 rounds")
    parser.add_argument("--no-wandb", action="store_true", help="skip the W&B comparison")
    args = parser.parse_args()
    lines = 50_000 if args.quick else 200_000
    rounds = args.repeats or (3 if args.quick else 9)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        os.environ["AUTOLOG_DIR"] = str(directory / "autolog-runs")
        os.environ["AUTOLOG_SYSTEM_METRICS"] = "0"
        os.environ["AUTOLOG_CONSOLE_MAX_LINES"] = str(lines * rounds * 2)
        rows, kept = bench_autolog(lines, rounds)
        if not args.no_wandb:
            rows += _quietly(lambda: bench_wandb(lines, rounds, directory))
    table(f"print() of one line, {lines:,} lines x {rounds} paired rounds (median; budget: "
          f"capture adds < {BUDGET_US:g} µs a line on the caller's thread; python "
          f"{sys.version.split()[0]}; console.log kept {kept:,} lines)",
          ["measure", "wall µs/line", "thread CPU µs/line", "added wall µs", "added CPU µs"],
          rows)


def _quietly(fn: Callable[[], list[list[object]]]) -> list[list[object]]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn()
        except Exception as exc:  # an anchor that fails does not hide our own figures
            return [["W&B console='wrap' (offline)", f"failed: {exc}", "", "", ""]]


if __name__ == "__main__":
    main()
