"""Faults that must lose nothing: un-encodable text, killed processes, forked workers that leave
through ``os._exit``. Each test is named after the defect it guards against (issue 15); the
promises and figures are in docs/reliability.md."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import autolog
from autolog import AutologWarning, testing
from autolog.journal.files import JOURNAL

from .helpers import clean_env

LONE = "bad\udce9"  # what Python makes of the byte 0xE9 in a file name or in sys.argv


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(body))
    return path


# -- 1, 2: text UTF-8 cannot hold -------------------------------------------------------------


def test_one_unencodable_string_drops_nothing_else(store):
    """Item 1: a lone surrogate in a key, a value, a param or a tag costs nothing: every event
    is kept exactly (JSON escapes) and backends get valid Unicode."""
    with testing.registered(testing.RecordingBackend):
        autolog.enable(backend="local,recording")
        with autolog.start_run("encoding") as run:
            for i in range(100):
                run.log_metrics({"good": float(i)}, step=i)
            with pytest.warns(AutologWarning, match="metric key 'bad.udce9' holds characters"):
                run.log_metrics({LONE: 1.0}, step=0)
            with pytest.warns(AutologWarning, match="UTF-8 cannot encode"):
                run.log_params({"p": LONE, LONE: 2})
            with pytest.warns(AutologWarning, match="UTF-8 cannot encode"):
                run.set_tags({"t": LONE})
            run.log_metrics({"after": 1.0}, step=0)
        assert autolog.flush(30)
    record = autolog.get_run(run.id)
    assert record.status == "FINISHED"
    assert [v for _, v, _ in record.history("good")] == [float(i) for i in range(100)]
    assert record.history(LONE)[0][:2] == (0, 1.0) and record.metrics["after"] == 1.0
    assert record.params == {"p": LONE, LONE: 2} and record.tags["t"] == LONE
    for line in (Path(run.path) / JOURNAL).read_bytes().splitlines():
        json.loads(line.decode("utf-8"))  # strict UTF-8, strict JSON, every line
    delivered = testing.RecordingBackend.runs[run.id]
    assert delivered.status == "FINISHED"
    assert delivered.metrics["bad\\xe9"] == [(0, 1.0)] and len(delivered.metrics["good"]) == 100
    assert delivered.params == {"p": "bad\\xe9", "bad\\xe9": 2}
    assert delivered.tags["t"] == "bad\\xe9"


def test_an_event_json_cannot_hold_costs_only_itself(store, lenient):
    """Item 1, the same class: a model spec from a plugin with an object JSON has no type for is
    written as text, with one warning, and the events around it are kept."""
    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    with autolog.start_run() as run:
        run.log_params({"before": 1})
        with pytest.warns(AutologWarning, match="held a value JSON has no type for"):
            run._write({"t": "model", "name": "m", "spec": {"path": "m", "odd": Opaque()}})
        run.log_params({"after": 2})
    record = autolog.get_run(run.id)
    assert record.params == {"before": 1, "after": 2}
    assert record.models["m"]["odd"] == "opaque"


# -- 3: forked workers ---------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_ending_with_os_exit_keeps_its_points(store):
    """Item 3: a forked child that leaves through ``os._exit`` (as worker pools do) keeps every
    point it logged to its parent's run: they are in its tail the moment they are logged, and
    the parent takes the tail over."""
    with autolog.start_run("forking") as run:
        run.log_metric("parent", 1.0, step=0)
        pids = []
        for n in range(3):
            pid = os.fork()
            if pid == 0:
                for i in range(100):
                    autolog.log_metric(f"child{n}", float(i), step=i)
                os._exit(0)
            pids.append(pid)
        for pid in pids:
            assert os.waitpid(pid, 0)[1] == 0
        run.log_metric("parent", 2.0, step=1)
    record = autolog.get_run(run.id)
    for n in range(3):
        assert [(s, v) for s, v, _ in record.history(f"child{n}")] == \
            [(i, float(i)) for i in range(100)]
    assert [v for _, v, _ in record.history("parent")] == [1.0, 2.0]
    assert record.status == "FINISHED"
    assert not list(Path(run.path).glob("tail-*")), "every tail was taken over and removed"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_childs_points_arrive_while_the_parent_runs_on(store):
    """Item 3: the parent's writer takes over a dead child's tail at its next flush, not only
    at the run's end."""
    with autolog.start_run("forking") as run:
        pid = os.fork()
        if pid == 0:
            for i in range(50):
                autolog.log_metric("child", float(i), step=i)
            os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        deadline = time.monotonic() + 10
        while len(autolog.get_run(run.id).history("child")) < 50 and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(autolog.get_run(run.id).history("child")) == 50
    assert len(autolog.get_run(run.id).history("child")) == 50  # once: no duplicates


# -- 4: SIGKILL ----------------------------------------------------------------------------------

_BURST = """
import os, sys, autolog
run = autolog.start_run("burst")
print(run.id, flush=True)
if sys.argv[1] == "start":
    os.kill(os.getpid(), 9)
run.log_params({"lr": 0.1})
for i in range(1000):
    run.log_metrics({"loss": 1.0 / (i + 1), "acc": i / 1000}, step=i)
os.kill(os.getpid(), 9)
"""


@pytest.mark.parametrize("attempt", range(3))
def test_sigkill_right_after_a_burst_keeps_every_row(tmp_path, store, attempt):
    """Item 4: killed right after logging 1,000 rows (well inside the flush interval), the run
    keeps its start event, its params and all 1,000 rows."""
    script = _script(tmp_path, _BURST)
    done = subprocess.run([sys.executable, str(script), "burst"], env=clean_env(store),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    record = autolog.get_run(done.stdout.strip())
    assert record.name == "burst" and record.params == {"lr": 0.1}
    assert [(s, v) for s, v, _ in record.history("loss")] == \
        [(i, 1.0 / (i + 1)) for i in range(1000)]
    assert len(record.history("acc")) == 1000
    assert record.status == "CRASHED"
    assert not list(Path(record.path).glob("tail-*"))


def test_the_start_event_is_on_disk_when_start_run_returns(tmp_path, store):
    """Item 4: a process killed right after ``start_run`` still leaves its run."""
    script = _script(tmp_path, _BURST)
    done = subprocess.run([sys.executable, str(script), "start"], env=clean_env(store),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    runs = autolog.list_runs()
    assert [r.id for r in runs] == [done.stdout.strip()]
    assert runs[0].name == "burst"


def test_a_killed_runs_points_reach_a_backend_through_sync(tmp_path, store):
    """Item 4: ``autolog sync`` takes the tail over before delivering, so a backend gets the
    rows the journal did not hold yet, once."""
    script = _script(tmp_path, _BURST)
    done = subprocess.run([sys.executable, str(script), "burst"], env=clean_env(store),
                          capture_output=True, text=True, timeout=60)
    run_id = done.stdout.strip()
    from autolog.cli import main as cli_main

    with testing.registered(testing.RecordingBackend):
        assert cli_main(["sync", "--to", "recording", run_id]) == 0
        assert cli_main(["sync", "--to", "recording", run_id]) == 0
    delivered = testing.RecordingBackend.runs[run_id]
    assert len(delivered.metrics["loss"]) == 1000 and delivered.status == "CRASHED"


# -- 15: imports during the exit flush -----------------------------------------------------------

_LATE_IMPORT = """
import sys, threading
import numpy as np
import autolog
from autolog import testing
from sklearn.tree import DecisionTreeClassifier

class LateImports(testing.RecordingBackend):
    name = "late"

    def log_model(self, run, local_path, name, spec):
        while threading.main_thread().is_alive():  # until the interpreter runs its exit hooks
            threading.Event().wait(0.01)
        import skops.io  # first imported by the exit flush; it imports torch
        super().log_model(run, local_path, name, spec)

registration = testing.registered(LateImports)  # kept: its end would unregister it
registration.__enter__()
autolog.enable(backend="local,late")
x = np.random.default_rng(0).normal(size=(60, 3))
DecisionTreeClassifier().fit(x, (x[:, 0] > 0).astype(int))
print("torch" in sys.modules)
"""


def test_modules_first_imported_by_the_exit_flush_leave_stderr_clean(store):
    """Item 15: a script that ends right after ``fit`` printed three ``Exception ignored in:
    <finalize object> ... torch/library.py ... 'NoneType' object is not callable`` tracebacks:
    the exit flush imported torch (through skops) for the first time, and its finalizers, left
    to interpreter teardown, ran with module globals gone."""
    pytest.importorskip("skops")
    pytest.importorskip("sklearn")
    done = subprocess.run([sys.executable, "-c", _LATE_IMPORT], env=clean_env(store),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"  # the script itself never imported torch
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, \
        done.stderr


# -- signals, threads and fork (found by the fork stress runs) ------------------------------------


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_autologs_threads_leave_sigterm_and_sigint_to_the_main_thread(store):
    """Python runs signal handlers on the main thread only: a SIGTERM the kernel hands to one
    of autolog's threads while the main thread waits was never handled."""
    autolog.start_run("signals").log_metric("x", 1.0)
    blocked = {}
    for thread in threading.enumerate():
        if thread.name.startswith("autolog-"):
            try:
                status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
            except (ProcessLookupError, FileNotFoundError):
                continue  # a short-lived thread (the warm-up) that ended since enumerate()
            mask = int(next(line for line in status.splitlines()
                            if line.startswith("SigBlk:")).split()[1], 16)
            blocked[thread.name] = {signal.SIGTERM, signal.SIGINT} <= {
                s for s in signal.Signals if mask & (1 << (s - 1))}
    assert "autolog-writer" in blocked and all(blocked.values()), blocked


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_run_ids_ignore_the_scripts_random_seed_and_a_forked_child_draws_its_own(store):
    """Ids, names and tail tokens come from autolog's own generator (``os.urandom`` lets go
    of the GIL on the training thread): a script's ``random.seed`` must not repeat them, and
    a forked child, which inherits the generator's state, must not draw its parent's."""
    from autolog._runtime import random_hex

    runs = []
    for _ in range(2):
        random.seed(0)
        runs.append(autolog.start_run())
        runs[-1].end()
    assert runs[0].id != runs[1].id and len(runs[0].id) == 32
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, random_hex(16).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32 and child != random_hex(16)
    assert autolog.start_run("after").id not in {child, *(run.id for run in runs)}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_starts_clean_of_its_parents_signal_and_write_state(store):
    """A forked child had autolog's SIGTERM handler (which made multiprocessing's
    Pool.terminate() hang now and then) and the parent's "writing now" mark (a SIGTERM in the
    child then waited for a write that was not happening)."""
    from autolog._runtime import runtime
    from autolog.shutdown import _on_sigterm

    run = autolog.start_run("forking")
    if signal.getsignal(signal.SIGTERM) is not _on_sigterm:
        pytest.skip("autolog installs its SIGTERM handler on the main thread only")
    journal = runtime.writer._runs[run.id]
    journal.writers.add(threading.get_ident())  # as if this thread were writing when it forks
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        state = (signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, not journal.writers)
        os.write(write, repr(state).encode())
        os._exit(0)
    journal.writers.clear()
    os.waitpid(pid, 0)
    assert os.read(read, 100) == b"(True, True)"


def test_a_sigterm_waiting_for_a_write_that_fails_still_terminates(store, lenient,
                                                                   monkeypatch):
    """A SIGTERM that arrives during a journal write waits for it; when the write raised, the
    waiting termination was dropped and the process lived on."""
    from autolog._runtime import runtime

    run = autolog.start_run("failing write")
    writer, journal = runtime.writer, runtime.writer._runs[run.id]
    ran = []

    def failing_write():
        writer.defer_if_writing(lambda: ran.append("terminated")) or ran.append("not deferred")
        raise OSError("disk full")

    monkeypatch.setattr(journal, "write", failing_write)
    monkeypatch.setattr(journal, "writers", {threading.get_ident()})
    with pytest.warns(AutologWarning, match="writing the journal failed"):
        writer._write(journal)
    assert ran == ["terminated"]


def test_a_sigterm_during_a_forked_childs_tail_takeover_waits_for_it(store, monkeypatch):
    """After a fork, the parent's writes take over the tails of children that are gone, holding
    the run's lock: a SIGTERM handled there ran at once, and its thread, ending the run, waited
    for that lock until its timeout (the run then read CRASHED, not KILLED)."""
    from autolog._runtime import runtime

    run = autolog.start_run("forked")
    writer, journal = runtime.writer, runtime.writer._runs[run.id]
    ran = []

    def recover(run_dir, own=None):
        writer.defer_if_writing(lambda: ran.append("terminated")) or ran.append("not deferred")
        ran.append("taken over")
        return 0

    monkeypatch.setattr("autolog.journal.writer.recover", recover)
    writer._recover(journal)
    assert ran == ["taken over", "terminated"]


# -- torn lines (found by the fork stress runs) ------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_line_torn_by_a_killed_child_costs_no_other_record(store):
    """Fork stress runs lost a parent's points now and then: Pool.terminate() killed a worker
    in the middle of appending its metrics line (a fatal signal cuts a write between pages),
    the parent's next line continued the torn one, and the reader skipped both. The torn part
    must cost nothing else: the next line is read whole, the child's points come from its tail
    exactly once."""
    from autolog._runtime import runtime

    with autolog.start_run("forking") as run:
        run.log_metric("parent", 1.0, step=0)
        pid = os.fork()
        if pid == 0:
            journal = runtime.writer._runs[run.id].journal
            write = journal.write

            def killed_mid_write(data: bytes) -> None:
                write(data[:len(data) // 2])
                os._exit(0)

            journal.write = killed_mid_write
            for i in range(300):
                autolog.log_metric("child", float(i), step=i)
            runtime.writer._runs[run.id].write()
            os._exit(1)  # not reached: the write "kills" the child
        assert os.waitpid(pid, 0)[1] == 0
        run.log_metric("parent", 2.0, step=1)
        autolog.get_run(run.id)  # read-your-writes flushes: right after the torn half line
        run.log_params({"after": "the tear"})
    lines = (Path(run.path) / JOURNAL).read_bytes().splitlines()
    torn = [line for line in lines if not _parses(line)]
    assert len(torn) == 1 and torn[0].startswith(b'{"t":"metrics"'), "the child's line is torn"
    record = autolog.get_run(run.id)
    assert [v for _, v, _ in record.history("parent")] == [1.0, 2.0]
    assert [s for s, _, _ in record.history("child")] == list(range(300))
    assert record.params == {"after": "the tear"} and record.status == "FINISHED"
    from autolog.config import current
    from autolog.delivery.replay import deliver

    assert deliver(testing.RecordingBackend(current()), Path(run.path))
    sent = testing.RecordingBackend.runs[run.id]  # what a backend gets: the same, once
    assert [v for _, v in sent.metrics["parent"]] == [1.0, 2.0]
    assert sorted(s for s, _ in sent.metrics["child"]) == list(range(300))
    assert sent.params == {"after": "the tear"} and sent.status == "FINISHED"


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def test_a_torn_line_gives_back_the_whole_records_it_holds():
    """Every cut of a record, continued by a whole one, reads as that whole one (and as both
    when only the newline was missing); stacked tears and garbage read as nothing."""
    from autolog.journal.codec import decode_line, encode_line

    params = {"t": "params", "d": {"t": "end", "note": 'q"uo{"t":"te', "lr": 0.1}}
    metrics = {"t": "metrics", "d": {"é": [[1, 2], [0.5, "NaN"], [3, 4]]}, "tail": "ab",
               "seq": 2}
    end = {"t": "end", "status": "FINISHED", "time": 5}
    for first in (params, metrics):
        line = encode_line(first)
        assert decode_line(line) == [first]
        for cut in range(1, len(line) - 1):
            assert decode_line(line[:cut] + encode_line(end)) == [end], (first["t"], cut)
        assert decode_line(line[:-1] + encode_line(end)) == [first, end]
    stacked = encode_line(params)[:30] + encode_line(metrics)[:20] + encode_line(end)
    assert decode_line(stacked) == [end]
    assert decode_line(b"not json\n") == decode_line(b"[1]\n") == []


@pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(signal, "pthread_sigmask"),
                    reason="fork, signal masks")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_sigterm_before_the_childs_fork_hooks_kills_it_and_journals_nothing(store,
                                                                             monkeypatch):
    """Fork stress runs journaled a parent's points twice, and hung in Pool.terminate(): a
    SIGTERM that reached a forked worker before the at-fork hooks gave it a tail of its own ran
    the inherited handler at the child's first bytecode, which flushed the parent's tail from
    the child; the next hook then replaced the handler, and the worker never died. Here the
    SIGTERM arrives in the first at-fork hook."""
    from autolog._runtime import runtime
    from autolog.shutdown import _on_sigterm

    monkeypatch.setenv("AUTOLOG_FLUSH_INTERVAL", "60")  # the parent's points stay in its tail
    with autolog.start_run("forking") as run:
        if signal.getsignal(signal.SIGTERM) is not _on_sigterm:
            pytest.skip("autolog installs its SIGTERM handler on the main thread only")
        for i in range(100):
            run.log_metric("parent", float(i), step=i)
        writer = runtime.writer
        hook = writer.after_fork_in_child

        read, write = os.pipe()

        def terminated_early() -> None:  # the journal writer's hook: the child's first code
            blocked = signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, [])
            os.write(write, b"blocked" if blocked else b"open")
            os.kill(os.getpid(), signal.SIGTERM)
            hook()

        writer.after_fork_in_child = terminated_early
        try:
            pid = os.fork()
            if pid == 0:
                time.sleep(10)
                os._exit(0)  # not reached: the pending SIGTERM ends the child
        finally:
            del writer.after_fork_in_child
        status = os.waitpid(pid, 0)[1]
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, status
    assert os.read(read, 100) == b"blocked"
    lines = (Path(run.path) / JOURNAL).read_text().splitlines()
    assert sum('"parent":[[' in line for line in lines) == 1  # journaled once, by the parent
    assert [s for s, _, _ in autolog.get_run(run.id).history("parent")] == list(range(100))
