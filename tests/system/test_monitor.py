"""Hardware monitoring end to end: a run sampled for several intervals, one thread and one set of
samplers for the process's runs, new settings, exit without ending the run, fork while
monitoring, and the docs naming every metric."""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from itertools import pairwise
from pathlib import Path

import psutil
import pytest

import autolog
from autolog import testing
from autolog.api import get_settings
from autolog.hookspecs import hookimpl
from autolog.plugins import get_plugins
from autolog.system import Sampler, nvidia
from autolog.system.cpu import CpuSampler

from .fake_nvml import FakeNVML, two_gpus
from .test_cpu import GAUGES, RATES

DOCS = Path(__file__).parents[2] / "docs" / "system-metrics.md"


@pytest.fixture
def monitoring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOLOG_SYSTEM_METRICS", "1")
    monkeypatch.setenv("AUTOLOG_SYSTEM_INTERVAL", "1")
    monkeypatch.setenv("AUTOLOG_DISABLE_PLUGINS", "nvidia")  # the same on machines with a GPU


def wait_for_points(run: autolog.Run, key: str, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(autolog.get_run(run.id).history(key)) < n:
        assert time.monotonic() < deadline, f"fewer than {n} points of {key} in {timeout} s"
        time.sleep(0.05)


def busy(cpu_seconds: float, wall: float) -> float:
    """Burn CPU on this thread; returns the CPU seconds burned."""
    c0, deadline = time.thread_time(), time.monotonic() + wall
    while time.thread_time() - c0 < cpu_seconds and time.monotonic() < deadline:
        pass
    return time.thread_time() - c0


def monitor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "autolog-system" and t.is_alive()]


def family_rss(me: psutil.Process) -> int:
    """RSS of this process and its descendants, as the sampler counts it (other tests may have
    left children running, a session's PostgreSQL server)."""
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


def family_cpu(me: psutil.Process) -> float:
    total = sum(me.cpu_times()[:4])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def test_a_run_of_several_intervals(monitoring):
    me = psutil.Process()
    autolog.enable()  # its warm-up runs `git` now: a child spawning during a sample counts
    for thread in threading.enumerate():
        if thread.name == "autolog-prewarm":
            thread.join(30)
    rss = [family_rss(me)]
    cpu_before = family_cpu(me)
    with autolog.start_run() as run:
        for target in range(1, 5):
            wait_for_points(run, "system/memory_used_bytes", target)
            rss.append(family_rss(me))
            if target == 2:  # busy between samples 1 and 3: 0.4 s of CPU, at most 0.8 s long
                burned = busy(0.4, wall=0.8)
    cpu_spent = family_cpu(me) - cpu_before
    rss.append(family_rss(me))
    record = autolog.get_run(run.id)
    assert record.status == "FINISHED"

    n = 4  # samples at 0, 1, 2 and 3 s; the run ended right after the fourth
    for name in GAUGES:
        assert [s for s, _, _ in record.history("system/" + name)] == list(range(n)), name
    for name in RATES:  # a rate needs two readings: from the second sample on
        assert [s for s, _, _ in record.history("system/" + name)] == list(range(1, n)), name
    assert set(record.metric_keys) == {"system/" + name for name in GAUGES | RATES}

    stamps = [ts for _, _, ts in record.history("system/memory_used_bytes")]
    assert record.start_time <= stamps[0] <= record.start_time + 3000
    assert all(a < b for a, b in pairwise(stamps)), stamps
    assert 2000 <= stamps[-1] - stamps[0] <= 6000, stamps  # three 1 s intervals, real time

    values = {key.removeprefix("system/"): [v for _, v, _ in record.history(key)]
              for key in record.metric_keys}
    assert all(min(rss) * 0.9 <= v <= max(rss) * 1.1 for v in values["process_rss_bytes"]), (
        rss, values["process_rss_bytes"])
    total = int(record.tags["autolog.system.memory_total_bytes"])
    assert all(0 < v < total for v in values["memory_used_bytes"])
    for name in ("cpu_percent", "memory_percent", "disk_percent"):
        assert all(0 <= v <= 100 for v in values[name]), name
    # process CPU: the seconds it adds up to lie within what psutil saw the process spend
    intervals = [(b - a) / 1000 for a, b in pairwise(stamps)]
    percents = values["process_cpu_percent"]
    recorded = sum(p / 100 * dt for p, dt in zip(percents, intervals, strict=True))
    assert 0.5 * burned <= recorded <= cpu_spent * 1.1 + 0.05
    assert all(v >= 0 for name in RATES for v in values[name])
    assert record.tags["autolog.system.cpu_logical_cores"] == str(psutil.cpu_count())


def test_one_thread_and_one_build_serve_the_process_runs(monitoring, monkeypatch):
    """A run's start builds nothing and starts no thread after the first; the end neither waits
    out an interval nor leaves a short run without its sample."""
    monkeypatch.setenv("AUTOLOG_SYSTEM_INTERVAL", "30")
    built = []
    build = CpuSampler.__init__
    monkeypatch.setattr(CpuSampler, "__init__",
                        lambda self, settings: (built.append(1), build(self, settings))[1])
    first = autolog.start_run()
    wait_for_points(first, "system/memory_used_bytes", 1)
    (thread,) = monitor_threads()
    assert thread.daemon
    started = time.monotonic()
    first.end()
    assert time.monotonic() - started < 1.5  # not a wait for the 30 s interval
    short = []
    for _ in range(3):  # runs of no time: one sample each, the thread's or the end's
        with autolog.start_run() as run:
            short.append(run.id)
    assert monitor_threads() == [thread]
    assert len(built) == 1
    for run_id in short:
        record = autolog.get_run(run_id)
        assert [s for s, _, _ in record.history("system/memory_used_bytes")] == [0]
        assert set(record.metric_keys) == {"system/" + name for name in GAUGES}  # no rate yet
        assert record.tags["autolog.system.cpu_logical_cores"] == str(psutil.cpu_count())
    testing.reset()
    assert monitor_threads() == []


def start_elsewhere() -> autolog.Run:
    """A top-level run started on another thread (in this one it would be a child)."""
    started: list[autolog.Run] = []
    worker = threading.Thread(target=lambda: started.append(autolog.start_run()))
    worker.start()
    worker.join()
    return started[0]


class _ExtraSampler(Sampler):
    name = "extra"

    def sample(self) -> dict[str, float]:
        return {"extra_reading": 1.0}


class _ExtraPlugin:
    @hookimpl
    def autolog_register_samplers(self, register):
        register(_ExtraSampler)


def test_the_monitor_outlives_enable_and_new_samplers_get_a_new_one(monitoring, monkeypatch):
    """``enable()`` again (other settings) keeps the samplers; a sampler plugin registered
    later gets a new monitor, and the previous one finishes sampling its runs."""
    monkeypatch.setenv("AUTOLOG_SYSTEM_INTERVAL", "0.2")
    autolog.enable()
    old = autolog.start_run()
    wait_for_points(old, "system/memory_used_bytes", 2)
    (old_thread,) = monitor_threads()
    autolog.enable(log_models=False, project="elsewhere")
    same = start_elsewhere()
    wait_for_points(same, "system/memory_used_bytes", 2)
    assert monitor_threads() == [old_thread]
    same.end()
    get_plugins().register(_ExtraPlugin(), name="extra-sampler")
    new = start_elsewhere()
    wait_for_points(new, "system/extra_reading", 2)
    assert len(monitor_threads()) == 2
    sampled = len(autolog.get_run(old.id).history("system/memory_used_bytes"))
    wait_for_points(old, "system/memory_used_bytes", sampled + 1)  # still sampled
    old.end()
    old_thread.join(5)
    assert not old_thread.is_alive()  # retired: closed with its last run
    assert monitor_threads() != [] and old_thread not in monitor_threads()
    new.end()
    assert autolog.get_run(old.id).history("system/extra_reading") == []
    for run in (old, same, new):
        steps = [s for s, _, _ in autolog.get_run(run.id).history("system/memory_used_bytes")]
        assert steps == list(range(len(steps)))


def test_off_unless_asked_and_children_share_the_parent_monitor(monitoring, monkeypatch):
    with autolog.start_run() as parent, autolog.start_run() as child:
        assert len(monitor_threads()) == 1
        wait_for_points(parent, "system/memory_percent", 1)
    assert autolog.get_run(child.id).metric_keys == []
    assert autolog.get_run(parent.id).history("system/memory_percent")
    monkeypatch.setenv("AUTOLOG_SYSTEM_METRICS", "0")
    testing.reset()
    with autolog.start_run() as quiet:
        assert monitor_threads() == []
    assert autolog.get_run(quiet.id).metric_keys == []


EXIT_WITHOUT_ENDING = textwrap.dedent("""
    import threading, autolog
    run = autolog.start_run()
    run.log_metric("x", 1.0)
    threads = [t for t in threading.enumerate() if t.name == "autolog-system"]
    assert threads and all(t.daemon for t in threads), threads
    print(run.id, flush=True)
""")


def test_a_script_that_never_ends_its_run_exits_promptly(monitoring, store):
    env = {**os.environ, "AUTOLOG_SYSTEM_INTERVAL": "30"}
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", EXIT_WITHOUT_ENDING], env=env, timeout=60,
                         capture_output=True, text=True, check=True)
    assert time.monotonic() - started < 15  # a thread waiting out its 30 s would show here
    record = autolog.get_run(out.stdout.split()[0])
    assert record.status == "FINISHED"
    assert record.history("system/memory_used_bytes")  # the sample taken at the start
    assert record.history("x")


def _child(queue: multiprocessing.Queue) -> None:
    """In a forked child: psutil and autolog work, and no monitor thread was inherited."""
    sampler = CpuSampler(get_settings())
    sampler.sample()
    time.sleep(0.1)  # CPU times advance in 10 ms ticks
    readings = sampler.sample()
    autolog.log_metric("child_rss_bytes", readings["process_rss_bytes"])
    queue.put((len(monitor_threads()), sorted(readings)))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings(
    r"ignore:This process .* is multi-threaded, use of fork\(\) may lead to deadlocks")
def test_survives_fork(monitoring, monkeypatch):
    monkeypatch.setenv("AUTOLOG_SYSTEM_INTERVAL", "0.2")
    ctx = multiprocessing.get_context("fork")
    with autolog.start_run() as run:
        wait_for_points(run, "system/memory_used_bytes", 2)
        results = []
        for _ in range(3):  # forks land at different moments of the monitor's cycle
            queue = ctx.Queue()
            child = ctx.Process(target=_child, args=(queue,))
            child.start()
            results.append(queue.get(timeout=30))
            child.join(30)
            assert child.exitcode == 0
        after_children = len(autolog.get_run(run.id).history("system/memory_used_bytes"))
        wait_for_points(run, "system/memory_used_bytes", after_children + 3)
    assert results == [(0, sorted(GAUGES | RATES))] * 3
    record = autolog.get_run(run.id)
    steps = [s for s, _, _ in record.history("system/memory_used_bytes")]
    assert steps == list(range(len(steps)))
    assert len(record.history("child_rss_bytes")) == 3


def test_docs_name_every_metric_and_tag():
    documented = set(re.findall(r"`([a-z0-9_./<>]+)`", DOCS.read_text()))
    cpu = CpuSampler(get_settings())
    cpu.sample()
    time.sleep(0.05)
    gpu = nvidia.NvidiaSampler(get_settings(), nvml=FakeNVML(two_gpus()))
    keys = set(cpu.sample()) | set(gpu.sample())
    tags = set(cpu.static_tags()) | set(gpu.static_tags())
    generic = {re.sub(r"gpu([/.])\d+\1", r"gpu\1<i>\1", name) for name in keys | tags}
    assert {"system/" + k for k in generic if not k.startswith("autolog.")} | {
        t for t in generic if t.startswith("autolog.")} <= documented


def test_an_error_logging_a_sample_costs_that_sample_not_the_thread(monitoring, monkeypatch):
    monkeypatch.setenv("AUTOLOG_SYSTEM_INTERVAL", "0.2")
    monkeypatch.setenv("AUTOLOG_STRICT", "0")
    real, failed = autolog.Run.log_metrics, []

    def once_broken(self, metrics, step=None):
        if threading.current_thread().name == "autolog-system" and not failed:
            failed.append(step)
            raise RuntimeError("a bug in autolog")
        return real(self, metrics, step)

    monkeypatch.setattr(autolog.Run, "log_metrics", once_broken)
    with (pytest.warns(UserWarning, match="sampling hardware usage failed"),
          autolog.start_run() as run):
        wait_for_points(run, "system/memory_used_bytes", 2)
    assert failed == [0]
    assert monitor_threads()  # still serving the process
    steps = [s for s, _, _ in autolog.get_run(run.id).history("system/memory_used_bytes")]
    assert steps == list(range(len(steps)))  # the lost reading was not counted
