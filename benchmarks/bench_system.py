"""Cost of hardware sampling: CPU time of one sampling pass, and as % of one core per interval.

Measured on the calling thread with ``time.thread_time()`` (user + system time of this thread,
which is what the monitor thread spends), then all-in: the process CPU time of a real monitored
run (monitor thread, writer thread, journal) minus an unmonitored one, per sample.

    .venv/bin/python benchmarks/bench_system.py [--quick]

Budget (docs/system-metrics.md): under 0.5 % of one core at the default 10 s interval.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

BUDGET_PERCENT = 0.5
INTERVALS = (10.0, 1.0)


def per_pass(fn, passes: int) -> tuple[float, float]:
    """(median thread CPU seconds, median wall seconds) of one call of ``fn``."""
    fn()  # warm: first-call imports and caches
    cpu, wall = [], []
    for _ in range(passes):
        c0, w0 = time.thread_time(), time.perf_counter()
        fn()
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)


def samplers(settings):
    from autolog.system import SamplerUnavailable
    from autolog.system.cpu import CpuSampler
    from autolog.system.nvidia import NvidiaSampler

    built, off = [], {}
    for cls in (CpuSampler, NvidiaSampler):
        try:
            built.append(cls(settings))
        except SamplerUnavailable as why:
            off[cls.name] = str(why)
    return built, off


def monitored_process_cpu(seconds: float, interval: float, on: bool) -> tuple[float, int]:
    """Process CPU seconds of a run lasting ``seconds`` (main thread asleep), and samples taken."""
    import autolog
    from autolog import testing

    testing.reset()
    os.environ["AUTOLOG_SYSTEM_METRICS"] = "1" if on else "0"
    os.environ["AUTOLOG_SYSTEM_INTERVAL"] = str(interval)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    before = usage.ru_utime + usage.ru_stime
    with autolog.start_run() as run:
        time.sleep(seconds)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    spent = usage.ru_utime + usage.ru_stime - before
    samples = len(autolog.get_run(run.id).history("system/memory_used_bytes"))
    testing.reset()
    return spent, samples


def row(name: str, cpu: float, wall: float | None) -> list[str]:
    percents = [f"{100 * cpu / interval:.4f}" for interval in INTERVALS]
    return [name, f"{cpu * 1e6:,.0f}", "" if wall is None else f"{wall * 1e6:,.0f}", *percents]


def table(rows: list[list[str]]) -> str:
    head = ["what", "CPU us/pass", "wall us/pass",
            *(f"% core @{interval:g}s" for interval in INTERVALS)]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [" | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in [head, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer passes, a shorter run")
    args = parser.parse_args()
    passes, run_seconds = (30, 3.0) if args.quick else (300, 10.0)

    tmp = tempfile.mkdtemp(prefix="autolog-bench-system-")
    os.environ.update(AUTOLOG_DIR=tmp, AUTOLOG_DISABLE_PLUGINS="")
    import psutil

    import autolog
    from autolog.api import get_settings
    from autolog.system import PREFIX

    built, off = samplers(get_settings())
    rows = []
    for sampler in built:
        rows.append(row(f"{sampler.name} sampler", *per_pass(sampler.sample, passes)))

    run = autolog.start_run("bench-system")

    def monitor_pass(step=[0]) -> None:  # noqa: B006 - a counter across calls
        metrics = {}
        for sampler in built:
            metrics.update((PREFIX + k, v) for k, v in sampler.sample().items())
        run.log_metrics(metrics, step=step[0])
        step[0] += 1

    total_cpu, total_wall = per_pass(monitor_pass, passes)
    rows.append(row("all samplers + log_metrics", total_cpu, total_wall))
    run.end()
    for sampler in built:
        sampler.close()

    interval = 0.5
    on, samples = monitored_process_cpu(run_seconds, interval, on=True)
    base, _ = monitored_process_cpu(run_seconds, interval, on=False)
    all_in = max(0.0, on - base) / max(samples, 1)
    rows.append(row(f"all-in (process CPU, {samples} samples)", all_in, None))

    print(f"hardware sampling cost: {passes} passes, {len(psutil.pids())} processes on this "
          f"machine, {psutil.cpu_count()} logical cores, Python {sys.version.split()[0]}")
    for name, why in off.items():
        print(f"{name} sampler off: {why}")
    print(table(rows))
    worst = max(total_cpu, all_in)
    verdict = "within" if 100 * worst / INTERVALS[0] < BUDGET_PERCENT else "OVER"
    print(f"budget: < {BUDGET_PERCENT} % of one core at the default 10 s interval: {verdict} "
          f"({100 * worst / INTERVALS[0]:.4f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
