"""Delivery when the server is wrong, down, hung or interrupted, against our real server on
loopback (it stores each journal range once, so "exactly once" is read back from it):

- permanent misconfigurations (a refused token, a read-only one, a URL path that leads
  nowhere) are said once, with the fix, not waited for at exit, and `autolog sync` delivers
  once fixed (issue 15 item 10);
- `autolog sync` against a server that accepts and never answers, one that is down, and Ctrl-C:
  bounded, one cause per backend, a clean stop that keeps what was delivered (item 11);
- the exit message names the cause and what to run (item 12);
- the detached delivery process: the script exits at once with a down backend, and a delivery
  process killed midway leaves nothing that `autolog sync` would send twice (issue 18).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

import autolog
from autolog.backends.http import ServerClient
from autolog.cli import main as cli_main
from autolog.delivery.handoff import running

from ..helpers import clean_env
from ..relay import Relay
from ..server.live import LiveServer, free_port

POINTS = 8000  # steps per run, two keys: more than one batch (10,000 points) per run

RECORD = """
import sys, time, autolog
autolog.enable(backend="local,http")
ids = []
for r in range(RUNS):
    with autolog.start_run(f"run-{r}") as run:
        run.log_params({"r": r})
        for i in range(POINTS):
            run.log_metrics({"loss": 1.0 / (i + 1), "r": float(r)}, step=i)
            if i % 1000 == 0:
                autolog.flush(0)  # several journal lines (and batches) per run
    ids.append(run.id)
print(" ".join(ids), time.monotonic(), flush=True)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("faults")
    live = LiveServer(f"sqlite:///{root / 'autolog.db'}", root / "server")
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def tokens(server: LiveServer) -> dict[str, str]:
    return {"write": server.token(scope="write"), "read": server.token(scope="read")}


def record(store: Path, url: str, token: str, runs: int = 1, **env: str) -> tuple[list[str], str]:
    """Run the recording script; its run ids and stderr."""
    script = RECORD.replace("RUNS", str(runs)).replace("POINTS", str(POINTS))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=clean_env(store, AUTOLOG_HTTP_URL=url,
                                                     AUTOLOG_HTTP_TOKEN=token, **env))
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[:-1], done.stderr


def use(monkeypatch: pytest.MonkeyPatch, url: str, token: str) -> None:
    monkeypatch.setenv("AUTOLOG_HTTP_URL", url)
    monkeypatch.setenv("AUTOLOG_HTTP_TOKEN", token)


def assert_delivered_once(server: LiveServer, token: str, run_ids: list[str]) -> None:
    """The server holds every point of each run exactly once, as the local journal has it."""
    with ServerClient(server.url, token) as client:
        for run_id in run_ids:
            local = autolog.get_run(run_id)
            remote = client.get_run(run_id)
            assert remote["status"] == local.status == "FINISHED"
            for key in ("loss", "r"):
                points = [(s, v) for s, v, _ in client.history(run_id, key)]
                assert points == [(s, v) for s, v, _ in local.history(key)], key
                assert len(points) == POINTS


# -- permanent misconfigurations (issue 15 item 10, item 12) ---------------------------------


def _bad_settings(server: LiveServer, tokens: dict[str, str]) -> dict[str, tuple[str, str, str]]:
    return {  # case -> URL, token, what the message must say
        "refused token": (server.url, "alg_not_a_token", "refused the token"),
        "read-only token": (server.url, tokens["read"], "the token is read-only"),
        "wrong path": (server.url + "/api/v1", tokens["write"],
                       f"the URL path should be {server.url}"),
    }


@pytest.mark.parametrize("case", ["refused token", "read-only token", "wrong path"])
def test_a_permanent_misconfiguration_is_said_once_with_its_fix_and_not_waited_for(
        case: str, server: LiveServer, tokens: dict[str, str], store: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, token, fix = _bad_settings(server, tokens)[case]
    started = time.monotonic()
    run_ids, stderr = record(store, url, token, runs=2, AUTOLOG_EXIT_TIMEOUT="60")
    assert time.monotonic() - started < 30, "the exit did not wait AUTOLOG_EXIT_TIMEOUT"
    said = [line for line in stderr.splitlines() if "backend off for this process" in line]
    assert len(said) == 1 and fix in said[0], stderr  # once, with the fix
    assert "retrying" not in stderr  # not treated as temporary
    # the exit names the cause and what to run (item 12)
    assert "not delivered to http" in stderr and "autolog sync" in stderr, stderr
    exit_line = stderr[stderr.index("not delivered to http"):]
    assert fix in exit_line
    # the journal kept it all; fixed, `autolog sync` delivers it once
    use(monkeypatch, server.url, tokens["write"])
    assert cli_main(["sync", "--status", "--json"]) == 0
    assert cli_main(["sync"]) == 0
    assert cli_main(["sync"]) == 0  # again: nothing more
    assert_delivered_once(server, tokens["read"], run_ids)


def test_a_down_server_is_temporary_and_the_exit_says_why(store: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    _, stderr = record(store, down, "alg_any", AUTOLOG_EXIT_TIMEOUT="4")
    assert "retrying with backoff" in stderr  # temporary
    exit_line = stderr[stderr.index("were not delivered to http"):]
    assert "cannot reach the autolog server" in exit_line and "autolog sync" in exit_line


# -- autolog sync: bounded, one cause, clean Ctrl-C (item 11) ---------------------------------


#: ``autolog sync`` as a terminal starts it: Ctrl-C at Python's default, not blocked, whatever
#: this test process inherited or an SDK tested in it set (an ignored SIGINT is inherited)
SYNC = ("import runpy, signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})\n"
        "sys.argv = ['autolog', *sys.argv[1:]]\n"
        "runpy.run_module('autolog.cli', run_name='__main__', alter_sys=True)\n")


def sync_process(store: Path, url: str, token: str, *args: str) -> subprocess.Popen[str]:
    env = clean_env(store, AUTOLOG_HTTP_URL=url, AUTOLOG_HTTP_TOKEN=token)
    return subprocess.Popen([sys.executable, "-c", SYNC, "sync", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def offline_runs(store: Path, runs: int) -> list[str]:
    """Runs recorded with the http backend while its server was down."""
    run_ids, _ = record(store, f"http://127.0.0.1:{free_port()}", "alg_any", runs=runs,
                        AUTOLOG_EXIT_TIMEOUT="0.2")
    return run_ids


def test_sync_against_a_server_that_never_answers_stops_at_its_timeout(store: Path) -> None:
    offline_runs(store, 3)
    hung = Relay(None)  # accepts, reads, never answers
    try:
        started = time.monotonic()
        proc = sync_process(store, hung.url, "alg_any", "--timeout", "3")
        _, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        hung.close()
    assert proc.returncode == 1, err
    assert elapsed < 10, f"sync took {elapsed:.1f} s with --timeout 3"
    assert "3 runs left" in err and "had not answered" in err, err
    assert "--timeout" in err and "Traceback" not in err


def test_sync_against_a_down_server_gives_one_cause_and_stops_quickly(store: Path) -> None:
    offline_runs(store, 3)
    started = time.monotonic()
    proc = sync_process(store, f"http://127.0.0.1:{free_port()}", "alg_any")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert time.monotonic() - started < 20  # the first run's retries, not one per run
    assert "3 runs left" in err
    assert err.count("cannot reach the autolog server") == 1, err  # one cause, once


def test_ctrl_c_stops_sync_cleanly_and_what_was_delivered_stays(
        server: LiveServer, tokens: dict[str, str], store: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    run_ids = offline_runs(store, 3)
    relay = Relay(server.port)
    try:
        relay.hang_after(1)  # the first run's first batch, then no answers
        proc = sync_process(store, relay.url, tokens["write"])
        assert relay.wait_hung(60), "sync never reached the relay"
        time.sleep(0.3)
        status = Path(f"/proc/{proc.pid}/status")
        masks = [line for line in status.read_text().splitlines()
                 if line.startswith(("SigBlk", "SigIgn", "SigCgt"))] if status.exists() else []
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"sync ignored Ctrl-C for 10 s (its signal masks: {masks}): {err}")
        assert proc.returncode == 130, err
        assert "Traceback" not in err and "interrupted" in err, err
        assert "what was delivered stays delivered" in err
        with ServerClient(server.url, tokens["read"]) as client:
            partly = len(client.history(run_ids[0], "loss"))
        # stopped midway through the first run (its first batch may hold only what was written
        # through ahead of the points: the start, params and tags)
        assert partly < POINTS
        relay.release()
        use(monkeypatch, relay.url, tokens["write"])  # the same destination: the same cursors
        assert cli_main(["sync"]) == 0
    finally:
        relay.close()
    assert_delivered_once(server, tokens["read"], run_ids)


# -- the detached delivery process (issue 18) ---------------------------------------------------


def _stop_delivery_processes(store: Path) -> None:
    for proc in running(store):
        try:
            os.kill(proc["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass


def delivery_processes(store: Path, timeout: float = 30) -> list[dict[str, object]]:
    """The delivery processes of ``store``, once one has started (it starts in the background)."""
    deadline = time.monotonic() + timeout
    while not running(store) and time.monotonic() < deadline:
        time.sleep(0.05)
    return running(store)


@pytest.fixture
def detached(store: Path) -> Iterator[None]:
    """Scripts hand delivery to a detached process; the test's are killed at its end."""
    try:
        yield
    finally:
        _stop_delivery_processes(store)


EXIT_NOW = """
import time, autolog
autolog.enable(backend=BACKEND)
with autolog.start_run("exits") as run:
    for i in range(2000):
        run.log_metrics({"loss": 1.0 / (i + 1)}, step=i)
print(run.id, time.monotonic(), flush=True)
"""


@pytest.mark.parametrize("backend", ["http", "mlflow"])
def test_a_script_with_a_down_backend_exits_at_once_and_leaves_the_journal_pending(
        backend: str, store: Path, detached: None) -> None:
    if backend == "mlflow":
        pytest.importorskip("mlflow")
    down = f"http://127.0.0.1:{free_port()}"
    env = clean_env(store, AUTOLOG_EXIT_MODE="detach", AUTOLOG_HTTP_URL=down,
                    AUTOLOG_HTTP_TOKEN="alg_any", MLFLOW_TRACKING_URI=down)
    script = EXIT_NOW.replace("BACKEND", repr(f"local,{backend}"))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    run_id, ended_at = proc.stdout.readline().split()
    proc.wait(30)
    exit_seconds = time.monotonic() - float(ended_at)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert exit_seconds < 0.3, f"the exit took {exit_seconds * 1000:.0f} ms"
    # the journal has it all and says it is pending; a delivery process goes on with it
    assert len(autolog.get_run(run_id).history("loss")) == 2000
    assert delivery_processes(store)
    status = _status(store)
    assert status["pending"][backend]["runs"] == 1
    assert [p["backends"] for p in status["delivery_processes"]] == [[backend]]


def _status(store: Path) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "autolog.cli", "sync", "--status", "--json"],
                         env=clean_env(store), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_a_delivery_process_killed_midway_leaves_sync_nothing_to_send_twice(
        server: LiveServer, tokens: dict[str, str], store: Path, detached: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    relay = Relay(server.port)
    try:
        relay.hang()  # the training process delivers nothing: all is handed over
        run_ids, _ = record(store, relay.url, tokens["write"], runs=3,
                            AUTOLOG_EXIT_MODE="detach")
        [proc] = delivery_processes(store)
        relay.hang_after(1)  # the delivery process gets one batch through, then hangs
        assert relay.wait_hung(60), "the delivery process never reached the relay"
        os.kill(proc["pid"], signal.SIGKILL)
        with ServerClient(server.url, tokens["read"]) as client:
            delivered = [_points(client, run_id) for run_id in run_ids]
        # killed midway: a batch through (of whichever run the process took first; it may hold
        # only the run's start, params and tags, written through ahead of the points), no more
        assert any(n is not None for n in delivered), delivered
        assert sum(n or 0 for n in delivered) < len(run_ids) * POINTS, delivered
        relay.release()
        use(monkeypatch, relay.url, tokens["write"])
        assert cli_main(["sync"]) == 0
    finally:
        relay.close()
    assert_delivered_once(server, tokens["read"], run_ids)


def _points(client: ServerClient, run_id: str) -> int | None:
    """The run's "loss" points on the server (None when the run is not there)."""
    try:
        return len(client.history(run_id, "loss"))
    except LookupError:
        return None


def test_the_exit_waits_in_a_slurm_job(store: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    script = textwrap.dedent(EXIT_NOW.replace("BACKEND", repr("local,http")))
    env = clean_env(store, AUTOLOG_EXIT_MODE="auto", AUTOLOG_EXIT_TIMEOUT="1",
                    AUTOLOG_HTTP_URL=down, AUTOLOG_HTTP_TOKEN="alg_any", SLURM_JOB_ID="42")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "the exit waited: a SLURM job" in done.stderr
    assert running(store) == []
