"""Faults: how much a killed or forked process keeps. Prints one table per fault.

- SIGKILL right after a burst of 1,000 rows (inside the flush interval): rows kept, start event;
- SIGKILL at a random moment while a process logs as fast as it can: every point it reported
  logged before the kill is kept, and what is kept is a gap-free prefix of what it logged;
- a forked child that logs and leaves through ``os._exit``: points kept in the parent's run;
- ``multiprocessing`` with the fork context, in a loop, two loops at once: a run, two Processes
  and a ``with Pool(2)`` (ended by ``Pool.terminate()``'s SIGTERM), 1,000 points each: runs with
  every point exactly once, points lost or duplicated, loops that hung.

    python benchmarks/bench_faults.py            # 20 tries each
    python benchmarks/bench_faults.py --quick    # 5 tries each
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import arguments, table

ROOT = Path(__file__).resolve().parents[1]

BURST = """
import os, autolog
run = autolog.start_run("burst")
print(run.id, flush=True)
for i in range(1000):
    run.log_metrics({"loss": 1.0 / (i + 1)}, step=i)
os.kill(os.getpid(), 9)
"""

STREAM = """
import os, sys, autolog
run = autolog.start_run("stream")
print(run.id, flush=True)
i = 0
while True:
    run.log_metrics({"loss": 0.5, "acc": 0.25}, step=i)
    if i % 997 == 0:
        os.write(1, f"{i}\\n".encode())  # logged: the parent may kill from now on
    i += 1
"""

FORK = """
import os, autolog
run = autolog.start_run("forked")
pids = []
for n in range(4):
    pid = os.fork()
    if pid == 0:
        for i in range(250):
            autolog.log_metric(f"child{n}", float(i), step=i)
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
run.end()
print(run.id, flush=True)
"""

POOL = """
import json, multiprocessing, sys, autolog

def child(start):
    for i in range(start, start + 1000):
        autolog.log_metric("child", float(i), step=i)

ctx = multiprocessing.get_context("fork")
exact = lost = doubled = 0
for n in range(int(sys.argv[1])):
    with autolog.start_run("pool") as run:
        run.log_metric("parent", 1.0)
        procs = [ctx.Process(target=child, args=(k * 1000,)) for k in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        with ctx.Pool(2) as pool:
            pool.map(child, [2000, 3000])
        run.log_metric("parent", 2.0)
    record = autolog.get_run(run.id)
    steps = [s for s, _, _ in record.history("child")] + [
        -1 - s for s, _, _ in record.history("parent")]
    exact += sorted(steps) == [-2, -1] + list(range(4000))
    lost += 4002 - len(set(steps))
    doubled += len(steps) - len(set(steps))
print(json.dumps([exact, lost, doubled]), flush=True)
"""


def _env(store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOLOG_")}
    env.update(AUTOLOG_DIR=str(store), AUTOLOG_SYSTEM_METRICS="0", PYTHONPATH=str(ROOT / "src"))
    return env


def _read(store: Path, run_id: str) -> tuple[object, float]:
    """The run read back (taking its tail over) and the milliseconds that took."""
    import autolog

    start = time.perf_counter()
    record = autolog.get_run(run_id, store)
    record.metric_keys  # noqa: B018 - reads the journal (and takes the tail over)
    return record, (time.perf_counter() - start) * 1000


def burst(tries: int, root: Path) -> list[object]:
    kept, starts, takeover = [], 0, []
    for n in range(tries):
        store = root / f"burst{n}"
        done = subprocess.run([sys.executable, "-c", BURST], env=_env(store),
                              capture_output=True, text=True, timeout=120)
        record, ms = _read(store, done.stdout.strip())
        kept.append(len(record.history("loss")))
        starts += record.name == "burst"
        takeover.append(ms)
    return ["SIGKILL right after 1,000 rows", f"{tries}",
            f"{min(kept)} / {statistics.median(kept):g} / 1000", f"{starts}/{tries}",
            f"{statistics.median(takeover):.1f}"]


def stream(tries: int, root: Path) -> list[object]:
    lost, gaps, kept_points = 0, 0, []
    for n in range(tries):
        store = root / f"stream{n}"
        proc = subprocess.Popen([sys.executable, "-c", STREAM], env=_env(store),
                                stdout=subprocess.PIPE, text=True)
        run_id = proc.stdout.readline().strip()
        deadline = time.monotonic() + random.uniform(0.3, 3.0)
        reported = -1
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.strip():
                reported = int(line)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        for line in proc.stdout:  # what it reported before it died
            if line.strip():
                reported = int(line)
        record, _ = _read(store, run_id)
        steps = [s for s, _, _ in record.history("loss")]
        gaps += steps != list(range(len(steps)))
        lost += len(steps) <= reported
        kept_points.append(len(steps))
    return ["SIGKILL at a random moment while logging", f"{tries}",
            f"{min(kept_points):,} / {statistics.median(kept_points):,.0f} points",
            f"{tries - lost}/{tries} kept all reported; {gaps} with gaps", ""]


def forked(tries: int, root: Path) -> list[object]:
    kept = []
    for n in range(tries):
        store = root / f"fork{n}"
        done = subprocess.run([sys.executable, "-c", FORK], env=_env(store),
                              capture_output=True, text=True, timeout=120)
        record, _ = _read(store, done.stdout.strip())
        kept.append(sum(len(record.history(f"child{c}")) for c in range(4)))
    return ["4 forked children, 250 points each, os._exit", f"{tries}",
            f"{min(kept)} / {statistics.median(kept):g} / 1000", "", ""]


def pool(tries: int, root: Path) -> list[object]:
    """Two loops at once (the timing that exposed torn lines and early SIGTERMs), each bounded:
    a loop still running after the timeout hung."""
    runs = tries * 5
    loops = [subprocess.Popen([sys.executable, "-W", "ignore", "-c", POOL, str(runs)],
                              env=_env(root / f"pool{n}"), stdout=subprocess.PIPE, text=True)
             for n in range(2)]
    exact = lost = doubled = hung = 0
    for loop in loops:
        try:
            out, _ = loop.communicate(timeout=max(120, runs * 3))
            e, lo, d = json.loads(out)
            exact, lost, doubled = exact + e, lost + lo, doubled + d
        except (subprocess.TimeoutExpired, ValueError):
            loop.kill()
            loop.wait()
            hung += 1
    return [f"multiprocessing Processes + Pool(2), 2 loops x {runs}", f"{2 * runs}",
            f"{exact} runs exact; {lost} lost, {doubled} doubled", f"{hung}/2 loops hung", ""]


def main() -> None:
    args = arguments(__doc__, "5 tries each").parse_args()
    tries = args.repeats or (5 if args.quick else 20)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = [burst(tries, root), stream(tries, root)]
        if hasattr(os, "fork"):
            rows.append(forked(tries, root))
            rows.append(pool(tries, root))
    table("what a killed or forked process keeps (a reader takes its tail over)",
          ["fault", "tries", "kept: min / median / logged", "start event / check",
           "takeover ms (median)"], rows)
    print(f"\npython {sys.version.split()[0]}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
