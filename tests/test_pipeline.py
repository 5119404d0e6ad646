"""The pipeline's promises: nothing lost on kill, isolation from bad backends, threads, fork."""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autolog
from autolog import testing
from autolog.backends.base import RejectedBatch
from autolog.cli import main as cli_main

from .helpers import clean_env, crashed_run, only_run


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_sigkill_loses_nothing_already_flushed(tmp_path, store):
    script = _script(tmp_path, """
        import sys, time
        import autolog
        run = autolog.start_run("killed")
        for i in range(100_000):
            run.log_metric("loss", i * 0.5, step=i)
        print(run.id, flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, str(script)], env=clean_env(store),
                            stdout=subprocess.PIPE, text=True)
    try:
        run_id = proc.stdout.readline().strip()
        time.sleep(3)  # more than AUTOLOG_FLUSH_INTERVAL after the last call
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    record = autolog.get_run(run_id)
    history = record.history("loss")
    assert len(history) == 100_000
    assert [s for s, _, _ in history] == list(range(100_000))
    assert history[-1][1] == 99_999 * 0.5
    assert record.status == "CRASHED"


def test_torn_last_line_is_skipped_and_the_rest_is_read(store):
    with autolog.start_run() as run:
        run.log_metrics({"a": 1.0}, step=0)
        run.log_metrics({"a": 2.0}, step=1)
    journal = Path(run.path) / "events.jsonl"
    with open(journal, "ab") as f:
        f.write(b'{"t":"metrics","d":{"a":[[2],[3.0],[1')  # a kill in mid-write
    assert [v for _, v, _ in autolog.get_run(run.id).history("a")] == [1.0, 2.0]


def test_a_run_left_open_by_a_dead_process_reads_crashed(tmp_path, store):
    script = _script(tmp_path, """
        import os, autolog
        run = autolog.start_run("abandoned")
        run.log_metric("x", 1.0)
        autolog.flush()
        print(run.id, flush=True)
        os._exit(0)  # no atexit: the run is never ended
    """)
    out = subprocess.run([sys.executable, str(script)], env=clean_env(store), capture_output=True,
                         text=True, timeout=60, check=True)
    record = autolog.get_run(out.stdout.strip())
    deadline = time.monotonic() + 10  # a child the dead process was forking (its context's
    while record.status != "CRASHED" and time.monotonic() < deadline:  # `git status`) may hold
        time.sleep(0.05)  # a copy of the lock until it execs
    assert record.status == "CRASHED"
    assert record.metrics == {"x": 1.0}


def test_sync_ends_a_crashed_run_crashed_after_delivering_all_it_wrote(store):
    run_id = crashed_run(store)
    last_written = int((Path(autolog.get_run(run_id).path) / "events.jsonl").stat().st_mtime * 1000)
    with testing.registered(testing.RecordingBackend):
        assert cli_main(["sync", run_id, "--to", "recording"]) == 0
        assert cli_main(["sync", run_id, "--to", "recording"]) == 0  # again: nothing more
    received = testing.RecordingBackend.runs[run_id]
    assert received.metrics["loss"] == [(i, 1.0 / (i + 1)) for i in range(1000)]
    assert received.params == {"lr": 0.1} and received.tags["team"] == "speech"
    assert (received.status, received.end_time) == ("CRASHED", last_written)
    assert received.start_calls == 1
    assert autolog.get_run(run_id).status == "CRASHED"  # the journal itself is left as it was


def test_sync_leaves_the_run_of_a_live_process_open(store):
    with testing.registered(testing.RecordingBackend):
        run = autolog.start_run("still-training")
        try:
            run.log_metric("loss", 0.5, step=0)
            autolog.flush()
            assert cli_main(["sync", run.id, "--to", "recording"]) == 0
            received = testing.RecordingBackend.runs[run.id]
            assert received.metrics["loss"] == [(0, 0.5)] and received.status is None
            run.log_metric("loss", 0.25, step=1)
        finally:
            run.end()
        assert cli_main(["sync", run.id, "--to", "recording"]) == 0
    assert received.metrics["loss"] == [(0, 0.5), (1, 0.25)]
    assert received.status == "FINISHED"


def test_an_open_run_of_a_live_process_reads_running(store):
    run = autolog.start_run()
    try:
        assert autolog.get_run(run.id).status == "RUNNING"
    finally:
        run.end()
    assert autolog.get_run(run.id).status == "FINISHED"


# -- bad backends -------------------------------------------------------------------------------

BAD_BACKENDS = """
    import sys, threading, time
    import autolog
    from autolog.backends.base import Backend
    from autolog.hookspecs import hookimpl
    from autolog.plugins import get_plugins

    class Failing(Backend):
        name = "failing"
        def start_run(self, run): raise RuntimeError("failing backend")
        def log_batch(self, run, batch): raise RuntimeError("failing backend")
        def end_run(self, run, status, end_time): raise RuntimeError("failing backend")

    class Blocking(Backend):
        name = "blocking"
        def start_run(self, run): threading.Event().wait()
        def log_batch(self, run, batch): threading.Event().wait()
        def end_run(self, run, status, end_time): threading.Event().wait()

    class Plugin:
        @hookimpl
        def autolog_register_backends(self, register):
            register(Failing)
            register(Blocking)

    get_plugins(autolog.api.get_settings()).register(Plugin())
    autolog.enable(backend="local,failing,blocking")
    slowest = 0.0
    with autolog.start_run("bad-backends") as run:
        run.log_params({"lr": 0.1})
        for i in range(20_000):
            t = time.perf_counter()
            run.log_metrics({"loss": 1.0 / (i + 1)}, step=i)
            slowest = max(slowest, time.perf_counter() - t)
    print(run.id, slowest, flush=True)
"""


def test_failing_and_blocking_backends_cost_training_nothing_and_sync_delivers(tmp_path, store):
    script = _script(tmp_path, BAD_BACKENDS)
    started = time.monotonic()
    out = subprocess.run([sys.executable, str(script)],
                         env=clean_env(store, AUTOLOG_EXIT_TIMEOUT="2"),
                         capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    run_id, slowest = out.stdout.split()
    assert float(slowest) < 0.5  # a call never waits on a backend (0.5 s: a loaded CI machine)
    assert elapsed < 30  # exit waited AUTOLOG_EXIT_TIMEOUT, not forever
    assert "were not delivered to blocking" in out.stderr
    assert "the failing backend failed" in out.stderr

    record = autolog.get_run(run_id)
    assert len(record.history("loss")) == 20_000 and record.status == "FINISHED"

    with testing.registered(testing.RecordingBackend):
        assert cli_main(["sync", run_id, "--to", "recording"]) == 0
        assert cli_main(["sync", run_id, "--to", "recording"]) == 0  # again: nothing new
    received = testing.RecordingBackend.runs[run_id]
    assert received.metrics["loss"] == [(i, 1.0 / (i + 1)) for i in range(20_000)]
    assert received.params == {"lr": 0.1} and received.status == "FINISHED"


class FlakyBackend(testing.RecordingBackend):
    """Fails its first calls, then records: delivery must resume without duplicates."""

    name = "flaky"
    failures_left = 3

    def start_run(self, run):
        self._maybe_fail()
        super().start_run(run)

    def log_batch(self, run, batch):
        self._maybe_fail()
        super().log_batch(run, batch)

    def end_run(self, run, status, end_time):
        self._maybe_fail()
        super().end_run(run, status, end_time)

    @classmethod
    def _maybe_fail(cls):
        if cls.failures_left > 0:
            cls.failures_left -= 1
            raise ConnectionError("flaky backend is down")


def test_delivery_retries_until_the_backend_recovers(store, caplog):
    with testing.registered(FlakyBackend):
        autolog.enable(backend="local,flaky")
        with autolog.start_run() as run:
            for i in range(1000):
                run.log_metric("x", float(i), step=i)
        assert autolog.flush(timeout=30)
    received = testing.RecordingBackend.runs[run.id]
    assert received.metrics["x"] == [(i, float(i)) for i in range(1000)]
    assert received.status == "FINISHED"
    assert "the flaky backend failed (ConnectionError" in caplog.text


class DownBackend(testing.RecordingBackend):
    """A backend whose server is down for good."""

    name = "down"

    def start_run(self, run):
        raise ConnectionError("down backend")


def test_a_wait_ends_at_once_when_a_failing_backend_retries_after_its_deadline(store,
                                                                               monkeypatch):
    """Waiting for a backend in backoff whose next try comes after the deadline cannot help:
    ``flush`` (and the exit's grace) returns then, not at the deadline."""
    from autolog.delivery.worker import Worker

    monkeypatch.setattr(Worker, "_backoff", lambda self: 3600.0)
    with testing.registered(DownBackend):
        autolog.enable(backend="local,down")
        with autolog.start_run() as run:
            run.log_metric("x", 1.0, step=0)
        started = time.monotonic()
        assert not autolog.flush(timeout=120)
        waited = time.monotonic() - started
    assert waited < 60, f"flush waited {waited:.0f} s for a retry an hour away"
    assert autolog.get_run(run.id).metrics == {"x": 1.0}


class BlockedBackend(testing.RecordingBackend):
    """Starts a run only once ``release`` is set (a first delivery still importing its SDK, or
    a second one in flight)."""

    name = "blocked"
    release = threading.Event()

    def start_run(self, run):
        assert self.release.wait(60)
        super().start_run(run)


def test_the_exits_grace_waits_only_for_backends_that_have_delivered(store, monkeypatch):
    """At exit the workers get a short grace before the rest is handed over, but only those
    that have delivered a run: one still on its first delivery (an SDK importing, a down
    server) would rarely finish within it, and the exit would wait for nothing."""
    from autolog._runtime import runtime

    monkeypatch.setattr(BlockedBackend, "release", threading.Event())
    with testing.registered(BlockedBackend):
        autolog.enable(backend="local,blocked")
        with autolog.start_run() as first:
            first.log_metric("x", 1.0, step=0)
        autolog.flush(0)  # journaled; the worker is told, and blocks in start_run
        deliveries = runtime.deliveries
        started = time.monotonic()
        assert deliveries.wait(time.monotonic() + 60, warm_only=True)  # cold: not waited for
        assert time.monotonic() - started < 30
        assert not deliveries.wait(time.monotonic() + 0.2)  # flush's wait does wait for it
        BlockedBackend.release.set()
        assert autolog.flush(30)

        monkeypatch.setattr(BlockedBackend, "release", threading.Event())
        with autolog.start_run() as second:
            second.log_metric("x", 2.0, step=0)
        autolog.flush(0)
        started = time.monotonic()
        assert not deliveries.wait(time.monotonic() + 0.3, warm_only=True)  # warm: waited for
        assert time.monotonic() - started >= 0.29
        BlockedBackend.release.set()
        assert autolog.flush(30)
    assert testing.RecordingBackend.runs[second.id].metrics == {"x": [(0, 2.0)]}


# -- threads and processes -----------------------------------------------------------------------


def test_eight_threads_each_keep_their_order(store):
    run = autolog.start_run("threads")

    def work(n: int) -> None:
        with run.activate():  # the active run is per thread
            for i in range(10_000):
                autolog.log_metrics({f"t{n}": float(i)}, step=i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.end()
    record = autolog.get_run(run.id)
    for n in range(8):
        assert [(s, v) for s, v, _ in record.history(f"t{n}")] == [(i, float(i))
                                                                    for i in range(10_000)]


def _child_logs(start: int) -> None:
    for i in range(start, start + 1000):
        autolog.log_metric("child", float(i), step=i)


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked_children_lose_nothing(store):
    ctx = multiprocessing.get_context("fork")
    with autolog.start_run("forked") as run:
        run.log_metric("parent", 1.0)
        children = [ctx.Process(target=_child_logs, args=(n * 1000,)) for n in range(2)]
        for child in children:
            child.start()
        for child in children:
            child.join(60)
            assert child.exitcode == 0
        with ctx.Pool(2) as pool:
            pool.map(_child_logs, [2000, 3000])
        run.log_metric("parent", 2.0)
    record = autolog.get_run(run.id)
    assert sorted(s for s, _, _ in record.history("child")) == list(range(4000))
    assert [v for _, v, _ in record.history("parent")] == [1.0, 2.0]
    assert record.status == "FINISHED"
    assert only_run().id == run.id  # children made no runs of their own


def test_memory_stays_bounded_when_logging_outpaces_the_writer(store):
    from autolog.journal.writer import CHECK_EVERY, HARD_LIMIT

    with autolog.start_run() as run:
        peak = 0
        tail = run._tail
        for i in range(300_000):
            run.log_metric("x", 1.0, step=i)
            if i % 1000 == 0:
                peak = max(peak, tail.pending(i + 1))
    assert peak <= HARD_LIMIT + CHECK_EVERY
    assert [s for s, _, _ in autolog.get_run(run.id).history("x")] == list(range(300_000))


def test_handed_over_dicts_are_read_on_the_writer_thread_and_end_with_the_run(store):
    """``Run.hand_over_metrics`` (Lightning's per-step dicts on the CPU): the caller's thread
    reads no value; the writer's thread reads each as ``log_metrics`` would, and the run's end
    writes what is still queued."""
    torch = pytest.importorskip("torch")
    from torch.overrides import TorchFunctionMode

    class Reads(TorchFunctionMode):  # on the thread it is entered on
        count = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") in ("item", "__float__", "tolist", "cpu"):
                Reads.count += 1
            return func(*args, **(kwargs or {}))

    with autolog.start_run() as run:
        with Reads():
            for step in range(200):
                run.hand_over_metrics({"loss": torch.tensor(step / 2), "lr": 0.1,
                                       "count": np.int64(step)}, step)
        assert Reads.count == 0
    record = autolog.get_run(run.id)
    assert [(s, v) for s, v, _ in record.history("loss")] == [(s, s / 2) for s in range(200)]
    assert [(s, v) for s, v, _ in record.history("count")] == [(s, float(s)) for s in range(200)]
    assert [s for s, _, _ in record.history("lr")] == list(range(200))
    assert record.metrics == {"loss": 99.5, "lr": 0.1, "count": 199.0}


def test_handed_over_dicts_stay_bounded_when_the_writer_is_held(store):
    """Past ``4 * HANDED_HIGH`` dicts queued, the caller writes them itself (waiting for the
    writer's pass in progress): memory stays bounded, and nothing is lost."""
    from autolog.run import HANDED_HIGH

    total = 5 * HANDED_HIGH
    with autolog.start_run() as run:
        journal = run._journal
        held = threading.Event()

        def hold() -> None:  # a writer's pass that takes a while
            with journal.lock:
                held.set()
                time.sleep(0.5)

        holder = threading.Thread(target=hold)
        holder.start()
        assert held.wait(10)
        peak = 0
        for step in range(total):
            run.hand_over_metrics({"x": float(step)}, step)
            peak = max(peak, len(journal.handed))
        holder.join()
    assert peak <= 4 * HANDED_HIGH + 1
    assert [s for s, _, _ in autolog.get_run(run.id).history("x")] == list(range(total))


class PickyBackend(testing.RecordingBackend):
    """Never accepts a batch holding the key "bad": the rest of the run must still arrive."""

    name = "picky"

    def log_batch(self, run, batch):
        if any(m.key == "bad" for m in batch.metrics):
            raise RejectedBatch("'bad' is not a key this backend accepts")
        super().log_batch(run, batch)


def test_a_rejected_batch_is_skipped_and_the_rest_delivered(store, caplog):
    with testing.registered(PickyBackend):
        autolog.enable(backend="local,picky")
        with autolog.start_run() as run:
            run.log_metric("good", 1.0, step=0)
            autolog.flush()
            run.log_metric("bad", 2.0, step=0)
            autolog.flush()
            run.log_metric("good", 3.0, step=1)
        assert autolog.flush(timeout=30)
    received = testing.RecordingBackend.runs[run.id]
    assert received.metrics == {"good": [(0, 1.0), (1, 3.0)]} and received.status == "FINISHED"
    assert "picky refused journal bytes" in caplog.text
    assert autolog.get_run(run.id).metrics == {"good": 3.0, "bad": 2.0}  # the journal keeps it


#: what each SIGTERM script below does once its patch is in: 1000 points, then a flush in which
#: the main thread writes them (and the patch sends SIGTERM)
TRAINING_THEN_FLUSH = """
    run = autolog.start_run("terminated")
    print(run.id, flush=True)
    for i in range(1000):
        run.log_metric("loss", float(i), step=i)
    autolog.flush()
    print("not reached", flush=True)
"""

SIGTERM_IN_WRITE = """
    import os, signal, sys
    import autolog
    from autolog.journal.writer import Journal

    real_write = Journal.write
    fired = []

    def write_then_signal(self, data):
        # SIGTERM lands while this thread is in the middle of a journal write
        if b'"loss"' in data and not fired:
            fired.append(1)
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs at the next bytecode
        real_write(self, data)

    Journal.write = write_then_signal
"""

SIGTERM_AFTER_AN_EVENT_WRITE = """
    import os, signal, threading
    import autolog
    from autolog.journal.writer import RunWriter

    real_write_line = RunWriter._write_line
    fired = []

    def event_then_signal(self, data):
        # the main thread holds the points' lock; another thread's event write (params, the
        # run's context) takes the events' lock and ends between two of its lines
        if b'"loss"' in data and not fired:
            fired.append(1)
            other = threading.Thread(target=run.log_params, args=({"lr": 0.1},))
            other.start()
            other.join()
            os.kill(os.getpid(), signal.SIGTERM)
        real_write_line(self, data)

    RunWriter._write_line = event_then_signal
"""


def _terminated_in_a_write(tmp_path: Path, store: Path, patch: str) -> tuple[Any, float]:
    """Run ``patch`` then :data:`TRAINING_THEN_FLUSH` in a process that must die of SIGTERM,
    its 1000 points all journaled: the run's record, and the seconds the process took."""
    script = _script(tmp_path, textwrap.dedent(patch) + textwrap.dedent(TRAINING_THEN_FLUSH))
    started = time.monotonic()
    out = subprocess.run([sys.executable, str(script)], env=clean_env(store), capture_output=True,
                         text=True, timeout=60)
    took = time.monotonic() - started
    assert out.returncode == -signal.SIGTERM, out.stderr
    assert "not reached" not in out.stdout
    record = autolog.get_run(out.stdout.split()[0])
    assert len(record.history("loss")) == 1000
    return record, took


def test_sigterm_during_a_journal_write_finishes_the_write_then_dies(tmp_path, store):
    record, _ = _terminated_in_a_write(tmp_path, store, SIGTERM_IN_WRITE)
    assert record.status == "KILLED"


def test_sigterm_after_another_threads_event_write_still_waits_for_the_write(tmp_path, store):
    """A run's journal has two locks; a thread's event write that ends while the main thread
    is between two lines must not hide the main thread's write from the SIGTERM handler (on a
    loaded machine, about one run in fifteen ended CRASHED instead of KILLED: the handler's
    thread waited for a lock the interrupted main thread held, until its timeout)."""
    record, took = _terminated_in_a_write(tmp_path, store, SIGTERM_AFTER_AN_EVENT_WRITE)
    assert record.params == {"lr": 0.1}
    assert record.status == "KILLED", f"{record.status} after {took:.1f} s"


def test_the_exit_reverts_the_patches_once_the_runs_have_ended(tmp_path, store):
    """After its last pass at exit autolog puts the frameworks' classes back as they were (a
    patched class kept autolog's whole runtime alive through the teardown's collections); the
    run was recorded whole before that."""
    script = _script(tmp_path, """
        import atexit, autolog
        from autolog.api import is_enabled
        from sklearn.linear_model import LogisticRegression
        original = vars(LogisticRegression)["fit"]
        def after():  # registered first: runs after autolog's hook (LIFO)
            print("after autolog:", vars(LogisticRegression)["fit"] is original, is_enabled(),
                  flush=True)
        atexit.register(after)
        autolog.enable()
        print("enabled:", vars(LogisticRegression)["fit"] is original, flush=True)
        LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    """)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=clean_env(store), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["enabled: False", "after autolog: True False"]
    run = only_run()
    assert run.status == "FINISHED"
    assert run.params["C"] == 1.0 and "training_accuracy_score" in run.metrics
    assert run.models


def test_the_last_pass_at_exit_runs_with_the_collector_paused_then_restores_it(tmp_path, store):
    """At exit the runs end and the journals get their last pass (the evaluation plots drawn)
    with Python's cyclic collector off: what that pass allocated could trip a full collection of
    the training's heap, which the interpreter's shutdown does anyway. The collector is back on
    for the atexit handlers that run after autolog's."""
    script = _script(tmp_path, """
        import atexit, gc, autolog
        atexit.register(lambda: print("after autolog:", gc.isenabled()))  # runs last (LIFO)
        autolog.enable()
        import autolog.charts as charts
        draw = charts.draw
        def spy(plot, data):
            print("drawing:", plot, gc.isenabled(), flush=True)
            return draw(plot, data)
        charts.draw = spy
        run = autolog.start_run("plots")
        run.log_plot("eval/confusion", "confusion_matrix",
                     {"labels": [0, 1], "matrix": [[3, 1], [0, 4]]})
        print("logged:", gc.isenabled(), flush=True)
    """)
    # no pass of the writer's own before the exit: the last pass draws
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=clean_env(store, AUTOLOG_FLUSH_INTERVAL="600"), timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "logged: True"
    assert "drawing: confusion_matrix False" in lines
    assert lines[-1] == "after autolog: True"
    run = only_run()
    assert run.status == "FINISHED"
    [plot] = run.media
    assert plot.key == "eval/confusion"
    assert plot.image and run.artifact_path(plot.image).read_bytes().startswith(b"\x89PNG")
