"""``autolog run``: a real training script recorded without a line of autolog in it; its exit code,
failures and signals; its terminal output unchanged byte for byte (pipes and a terminal); its
console, code and command line captured; torchrun's ranks; ``python -m autolog``."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import textwrap
import time
from pathlib import Path

import pytest

import autolog

from .helpers import clean_env

pytest.importorskip("sklearn")

TRAIN = """
import argparse, os, sys
import numpy as np
from sklearn.linear_model import LogisticRegression
from tqdm import tqdm

parser = argparse.ArgumentParser()
parser.add_argument("--C", type=float, default=1.0)
parser.add_argument("--then", default="")
args = parser.parse_args()
print("loading data")
X = np.random.default_rng(0).normal(size=(200, 4))
y = (X[:, 0] > 0).astype(int)
if args.then == "nan":
    X[0, 0] = np.nan
for _ in tqdm(range(20), mininterval=0, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}"):
    pass
print("warning: on stderr", file=sys.stderr)
os.write(1, b"C-level write\\n")
model = LogisticRegression(C=args.C).fit(X, y)
print("accuracy", model.score(X, y))
if args.then == "raise":
    raise RuntimeError("after training")
if args.then == "exit3":
    sys.exit(3)
"""


def _script(tmp_path: Path, source: str = TRAIN, name: str = "train.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def autolog_run(store: Path, *command: str, cwd: Path, options: tuple[str, ...] = (),
                extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "autolog", "run", *options, "--", *command],
                          env=clean_env(store, **(extra_env or {})), cwd=cwd,
                          capture_output=True, timeout=240)


def test_a_script_is_recorded_without_a_line_of_autolog(store: Path, tmp_path: Path):
    script = _script(tmp_path)
    done = autolog_run(store, sys.executable, str(script), "--C", "0.5", cwd=tmp_path,
                       options=("--project", "zero-code", "--name", "first"))
    assert done.returncode == 0, done.stderr.decode()
    (run,) = autolog.list_runs(store)
    assert (run.status, run.project, run.name) == ("FINISHED", "zero-code", "first")
    assert run.params["C"] == 0.5 and run.params["args.C"] == 0.5
    assert run.params["args.then"] == ""
    assert run.metrics["training_accuracy_score"] > 0.9
    tags = run.tags
    assert tags["autolog.source.entry_point"] == str(script)
    assert tags["autolog.source.argv"] == f"{script} --C 0.5"
    assert tags["autolog.launch.command"] == f"{sys.executable} {script} --C 0.5"
    assert "code/train.py" in run.artifacts and "console.log" in run.artifacts
    assert run.artifact_path("code/train.py").read_text() == script.read_text()
    console = run.artifact_path("console.log").read_text().splitlines()
    texts = [line.split(" ", 1)[1] for line in console]
    # stdout is a pipe here, so Python buffers "loading data" until the run's end flushes it
    assert set(texts) >= {"loading data", "[stderr] 100%|██████████| 20/20",
                          "[stderr] warning: on stderr", "C-level write"}
    assert texts.index("[stderr] 100%|██████████| 20/20") < texts.index(
        "[stderr] warning: on stderr")
    assert sum("%|" in text for text in texts) == 1  # the bar, collapsed to its last state
    assert tags["autolog.console.lines"] == str(len(console))


def test_the_terminal_output_is_unchanged_byte_for_byte(store: Path, tmp_path: Path):
    script = _script(tmp_path)
    plain = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                           env=clean_env(store), timeout=120)
    recorded = autolog_run(store, sys.executable, str(script), cwd=tmp_path)
    assert recorded.returncode == plain.returncode == 0
    assert recorded.stdout == plain.stdout
    assert recorded.stderr == plain.stderr
    assert b"\r" in plain.stderr and b"C-level write\n" in plain.stdout


def _through_a_terminal(command: list[str], env: dict[str, str], cwd: Path) -> tuple[int, bytes]:
    """Run ``command`` with stdout and stderr on a new pseudo-terminal; its exit code and every
    byte the terminal received."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(command, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL,
                               env=env, cwd=cwd)
    os.close(slave)
    received = bytearray()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal is gone
                break
            if not data:
                break
            received += data
        elif process.poll() is not None and not select.select([master], [], [], 0.2)[0]:
            break
    os.close(master)
    return process.wait(30), bytes(received)


def test_a_terminal_sees_the_same_bytes_and_the_script_still_sees_a_terminal(store: Path,
                                                                              tmp_path: Path):
    script = _script(tmp_path, TRAIN + "\nprint('tty', sys.stdout.isatty(), "
                                       "os.get_terminal_size().columns)\n")
    env = clean_env(store)
    plain = _through_a_terminal([sys.executable, str(script)], env, tmp_path)
    recorded = _through_a_terminal([sys.executable, "-m", "autolog", "run", "--",
                                    sys.executable, str(script)], env, tmp_path)
    assert plain[0] == recorded[0] == 0
    assert b"tty True 100" in plain[1]
    assert recorded[1] == plain[1]
    (run,) = autolog.list_runs(store)
    console = run.artifact_path("console.log").read_text().splitlines()
    bars = [line for line in console if "%|" in line]
    assert len(bars) == 1 and bars[0].endswith("█| 20/20")  # 100 columns wide, its last state
    assert any(line.endswith(" C-level write") for line in console)


@pytest.mark.parametrize(("then", "code", "status"), [
    ("nan", 1, "FAILED"),  # the fit raises: the run is FAILED, the exception exits 1
])
def test_a_failing_fit_fails_the_run_and_the_exit_code_passes_through(
        store: Path, tmp_path: Path, then: str, code: int, status: str):
    done = autolog_run(store, sys.executable, str(_script(tmp_path)), "--then", then,
                       cwd=tmp_path)
    assert done.returncode == code, done.stderr.decode()
    (run,) = autolog.list_runs(store)
    assert run.status == status
    assert b"Input X contains NaN" in done.stderr


OPEN_RUN = """
import os, signal, sys, time
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

X = np.random.default_rng(0).normal(size=(60, 3))
y = (X[:, 0] > 0).astype(int)
LogisticRegression().fit(X, y)  # a finished run first: it stays FINISHED

def scorer(estimator, X, y):  # runs while cross_val_score's run is open
    how = sys.argv[1]
    print("ready", flush=True)
    if how == "exit3":
        sys.exit(3)
    if how in ("sigkill", "exit-hard"):
        time.sleep(1)  # the journal writer writes the console meanwhile (AUTOLOG_FLUSH_INTERVAL)
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "exit-hard":
        os._exit(5)
    time.sleep(60)  # "sigterm": the test signals the launcher
    return 0.0

cross_val_score(LogisticRegression(), X, y, cv=2, scoring=scorer)
"""


@pytest.mark.parametrize(("how", "code", "status"), [
    ("exit3", 3, "FAILED"),  # sys.exit(3) ends the open run FAILED, exit code 3
    ("exit-hard", 5, "FAILED"),  # os._exit(5): no atexit; the launcher ends it FAILED
    ("sigkill", -signal.SIGKILL, "KILLED"),  # killed hard: the launcher ends it KILLED
])
def test_exit_codes_and_signals_end_the_open_run(store: Path, tmp_path: Path, how: str,
                                                 code: int, status: str):
    script = _script(tmp_path, OPEN_RUN)
    done = autolog_run(store, sys.executable, str(script), how, cwd=tmp_path,
                       extra_env={"AUTOLOG_FLUSH_INTERVAL": "0.1"})
    assert done.returncode == code, done.stderr.decode()
    runs = {r.name.split("-")[0]: r for r in autolog.list_runs(store)}
    assert runs["LogisticRegression"].status == "FINISHED"
    assert runs["cross_validate"].status == status
    assert "console.log" in runs["cross_validate"].artifacts
    assert "ready" in runs["cross_validate"].artifact_path("console.log").read_text()


def test_the_launcher_ends_only_its_command_s_runs_and_leaves_no_file(store: Path,
                                                                     tmp_path: Path):
    """It reads the runs its command's processes named (``AUTOLOG_LAUNCH_RUNS``), not the store:
    a run another process left open earlier stays as it was (read as CRASHED)."""
    earlier = subprocess.run([sys.executable, "-c", "import autolog, os\n"
                              "autolog.start_run('earlier')\nos._exit(0)"],
                             env=clean_env(store), capture_output=True, timeout=120)
    assert earlier.returncode == 0, earlier.stderr.decode()
    temp = tmp_path / "tmp"
    temp.mkdir()
    script = _script(tmp_path, OPEN_RUN)
    done = autolog_run(store, sys.executable, str(script), "exit-hard", cwd=tmp_path,
                       extra_env={"TMPDIR": str(temp), "AUTOLOG_FLUSH_INTERVAL": "0.1"})
    assert done.returncode == 5, done.stderr.decode()
    assert b"ended 1 run(s) the command left open as FAILED" in done.stderr
    runs = {r.name.split("-")[0]: r for r in autolog.list_runs(store)}
    assert runs["cross_validate"].status == "FAILED"
    assert runs["earlier"].status == "CRASHED" and runs["earlier"].end_time is None
    assert list(temp.iterdir()) == []  # the launch's file of runs is gone


def test_a_resumed_run_the_command_leaves_open_is_ended_too(store: Path, tmp_path: Path):
    """A resume is told to the launcher like a start: the run ended once before, resumed, then
    left through ``os._exit``, ends FAILED (its old end event does not count)."""
    first = subprocess.run([sys.executable, "-c", "import autolog\n"
                            "autolog.start_run('again').end()"],
                           env=clean_env(store), capture_output=True, timeout=120)
    assert first.returncode == 0, first.stderr.decode()
    (run,) = autolog.list_runs(store)
    script = _script(tmp_path, f"""
        import autolog, os
        run = autolog.start_run(run_id={run.id!r})
        run.log_metric("after", 1.0)
        autolog.flush(10)
        os._exit(4)
    """)
    done = autolog_run(store, sys.executable, str(script), cwd=tmp_path)
    assert done.returncode == 4, done.stderr.decode()
    assert b"ended 1 run(s) the command left open as FAILED" in done.stderr
    again = autolog.get_run(run.id, store)
    assert again.status == "FAILED" and again.metrics["after"] == 1.0


def test_after_a_command_that_ended_its_runs_the_launcher_reads_none(store: Path,
                                                                      tmp_path: Path):
    """Each run's end is told to the launcher once it is on disk: the launcher then loads no
    journal code at all (its own imports, as ``-X importtime`` prints them)."""
    script = _script(tmp_path, """
        import autolog
        with autolog.start_run("one"):
            pass
        autolog.start_run("two")  # ended at exit
    """)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "autolog", "run", "--",
                           sys.executable, str(script)], env=clean_env(store), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    launcher_imports = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                        if line.startswith("import time:")]
    assert "autolog.launch" in launcher_imports
    assert not [m for m in launcher_imports if m.startswith(("autolog.journal", "json"))]
    assert sorted(r.status for r in autolog.list_runs(store)) == ["FINISHED", "FINISHED"]


def test_the_command_gets_the_signal_dispositions_subprocess_would_give_it(store: Path,
                                                                           tmp_path: Path):
    """Python ignores SIGPIPE; a command started by the launcher gets it back at its default
    (a shell pipeline into ``head`` ends as it does without autolog)."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc")
    direct = subprocess.run(["cat", "/proc/self/status"], capture_output=True, text=True,
                            timeout=60)
    launched = autolog_run(store, "cat", "/proc/self/status", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr.decode()

    def ignored(status: str) -> int:
        mask = int(next(line for line in status.splitlines()
                        if line.startswith("SigIgn:")).split()[1], 16)
        # glibc's own signals (32, 33: below SIGRTMIN) show as ignored after posix_spawn; the
        # C library of the command sets them up again as it starts
        return mask & ~sum(1 << (n - 1) for n in range(32, signal.SIGRTMIN))

    assert ignored(launched.stdout.decode()) == ignored(direct.stdout)
    assert not ignored(launched.stdout.decode()) & (1 << (signal.SIGPIPE - 1))


def test_a_file_that_is_not_executable_is_refused_with_126(store: Path, tmp_path: Path):
    script = tmp_path / "train.sh"
    script.write_text("echo never\n")
    done = autolog_run(store, str(script), cwd=tmp_path)
    assert done.returncode == 126
    assert b"cannot start" in done.stderr and b"never" not in done.stdout


@pytest.mark.parametrize("argv", [
    ["--", "python", "t.py"],
    ["python", "t.py", "--backend", "x"],
    ["--backend", "mlflow", "--project=p", "--", "python", "t.py", "--lr", "1"],
    ["--name", "n", "--dir", "d", "train.py"],
    ["--backend=", "--", "-weird-command"],
    ["--backend", "a", "--backend", "b", "--", "x"],
    ["--dir", "d", "--", "--", "x"],
])
def test_the_quick_option_reader_agrees_with_argparse(argv: list[str]):
    from autolog import launch

    assert launch._parse(argv) == launch._parse_fully(argv)


def test_the_command_is_quoted_as_shlex_quotes_it():
    import shlex

    from autolog import launch

    for word in ["", "plain", "a b", "it's", "$HOME", "x=1,y=2", "é", "a\nb", "--lr=0.1", "*"]:
        assert launch._quote(word) == shlex.quote(word), word


@pytest.mark.parametrize(("argv", "says"), [
    ([], "give the command to run"),
    (["--"], "give the command to run"),
    (["--backend"], "expected one argument"),
    (["--backend", "--", "x"], "expected one argument"),
    (["--nope", "x"], "unrecognized arguments"),
])
def test_mistakes_get_argparse_s_messages(argv: list[str], says: str,
                                          capsys: pytest.CaptureFixture[str]):
    from autolog import launch

    with pytest.raises(SystemExit) as exited:
        launch._parse(argv)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err


def test_help_is_argparse_s(capsys: pytest.CaptureFixture[str]):
    from autolog import launch

    with pytest.raises(SystemExit) as exited:
        launch._parse(["--help"])
    assert exited.value.code == 0
    assert "--backend BACKEND" in capsys.readouterr().out


def test_sigterm_to_the_launcher_reaches_the_command_and_kills_the_run(store: Path,
                                                                       tmp_path: Path):
    script = _script(tmp_path, OPEN_RUN)
    launcher = subprocess.Popen([sys.executable, "-m", "autolog", "run", "--", sys.executable,
                                 str(script), "sigterm"], env=clean_env(store), cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert launcher.stdout is not None
    assert launcher.stdout.readline() == b"ready\n"
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(60) == -signal.SIGTERM
    runs = {r.name.split("-")[0]: r for r in autolog.list_runs(store)}
    assert runs["cross_validate"].status == "KILLED"


def test_python_dash_m_autolog_is_the_cli(store: Path):
    done = subprocess.run([sys.executable, "-m", "autolog", "--version"], env=clean_env(store),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("autolog ")


def test_a_command_that_does_not_exist(store: Path, tmp_path: Path):
    done = autolog_run(store, "no-such-command-here", cwd=tmp_path)
    assert done.returncode == 127
    assert b"cannot start 'no-such-command-here'" in done.stderr


def test_an_existing_sitecustomize_still_runs(store: Path, tmp_path: Path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os\nos.environ['USER_SITECUSTOMIZE'] = 'ran'\n")
    script = _script(tmp_path, "import os, autolog.api\n"
                               "print(os.environ.get('USER_SITECUSTOMIZE'), "
                               "autolog.api.is_enabled())\n")
    env = clean_env(store)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    done = subprocess.run([sys.executable, "-m", "autolog", "run", "--", sys.executable,
                           str(script)], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout == "ran True\n", done.stderr


# -- code and command line -----------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                          cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _script(repo)
    (repo / "data.csv").write_text("a,b\n1,2\n")
    _git(repo, "add", "train.py", "data.csv")
    _git(repo, "commit", "-qm", "first")
    return repo


def test_a_dirty_repository_s_diff_and_untracked_files_are_recorded(store: Path, repo: Path):
    script = repo / "train.py"
    script.write_text(script.read_text().replace("loading data", "loading the data"))
    (repo / "data.csv").write_text("a,b\n1,3\n")
    (repo / "notes.md").write_text("not committed\n")
    done = autolog_run(store, sys.executable, "train.py", cwd=repo)
    assert done.returncode == 0, done.stderr.decode()
    (run,) = autolog.list_runs(store)
    diff = run.artifact_path("code/diff.patch").read_text()
    assert diff == _git(repo, "diff", "HEAD")
    assert "+print(\"loading the data\")" in diff and "+1,3" in diff
    assert run.artifact_path("code/untracked.txt").read_text() == "notes.md\n"
    assert run.tags["autolog.code.git_root"] == str(repo)
    assert run.tags["autolog.code.untracked_files"] == "1"
    assert run.tags["autolog.git.dirty"] == "true"


def test_a_2_gb_change_is_not_read_one_warning_and_the_run_is_complete(store: Path,
                                                                       repo: Path):
    data = repo / "data.csv"
    with open(data, "r+b") as f:
        f.truncate(2 * 1024**3)  # sparse: 2 GB by its size, nothing written
    done = autolog_run(store, sys.executable, "train.py", cwd=repo)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.count(b"the uncommitted diff of") == 1
    assert b"hold 2.0 GiB, over AUTOLOG_MAX_DIFF_BYTES" in done.stderr
    (run,) = autolog.list_runs(store)
    assert "code/diff.patch" not in run.artifacts
    assert "AUTOLOG_MAX_DIFF_BYTES" in run.tags["autolog.code.diff_skipped"]
    assert run.status == "FINISHED" and "model/model.pkl" in run.artifacts
    assert "code/train.py" in run.artifacts


CLICK = """
import click
import numpy as np
from sklearn.linear_model import LogisticRegression

@click.command()
@click.option("--c", type=float, default=1.0)
@click.option("--name", default="x")
def main(c, name):
    X = np.random.default_rng(0).normal(size=(50, 2))
    LogisticRegression(C=c).fit(X, (X[:, 0] > 0).astype(int))

main()
"""

TYPER = """
import typer
import numpy as np
from sklearn.linear_model import LogisticRegression

def main(c: float = 1.0, layers: int = 2):
    X = np.random.default_rng(0).normal(size=(50, 2))
    LogisticRegression(C=c).fit(X, (X[:, 0] > 0).astype(int))

typer.run(main)
"""

HYDRA = """
import hydra
import numpy as np
from sklearn.linear_model import LogisticRegression

@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg):
    X = np.random.default_rng(0).normal(size=(50, 2))
    LogisticRegression(C=cfg.model.C).fit(X, (X[:, 0] > 0).astype(int))

main()
"""


@pytest.mark.parametrize(("source", "argv", "want"), [
    (CLICK, ["--c", "0.25", "--name", "exp"], {"args.c": 0.25, "args.name": "exp"}),
    (TYPER, ["--c", "0.5", "--layers", "3"], {"args.c": 0.5, "args.layers": 3}),
    (HYDRA, ["model.C=0.75", "+extra=1"], {"config.model.C": 0.75, "config.model.kind": "lr",
                                          "config.seed": 7, "config.extra": 1}),
], ids=["click", "typer", "hydra"])
def test_click_typer_and_hydra_values_become_params(store: Path, tmp_path: Path, source: str,
                                                    argv: list[str], want: dict[str, object]):
    pytest.importorskip({CLICK: "click", TYPER: "typer", HYDRA: "hydra"}[source])
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text("model:\n  C: 1.0\n  kind: lr\nseed: 7\n")
    done = autolog_run(store, sys.executable, str(_script(tmp_path, source)), *argv,
                       cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    (run,) = autolog.list_runs(store)
    assert {k: run.params.get(k) for k in want} == want
    assert not any(key.startswith("args.") for key in run.params if source is HYDRA)


def test_capture_is_opt_in_outside_autolog_run(tmp_path: Path):
    script = _script(tmp_path, "import argparse, autolog\n"
                               "autolog.enable(capture=['args'])\n"
                               "p = argparse.ArgumentParser(); p.add_argument('--lr')\n"
                               "p.parse_args()\n"
                               "import numpy as np\n"
                               "from sklearn.linear_model import LogisticRegression\n"
                               "X = np.eye(4); LogisticRegression().fit(X, [0, 1, 0, 1])\n")
    store = tmp_path / "store"
    done = subprocess.run([sys.executable, str(script), "--lr", "0.1"], env=clean_env(store),
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (run,) = autolog.list_runs(store)
    assert run.params["args.lr"] == "0.1"
    assert not any(a.startswith("code/") for a in run.artifacts)  # code was not asked for


# -- torchrun ------------------------------------------------------------------------------------

DISTRIBUTED = """
import os
import numpy as np
import torch.distributed as dist
from sklearn.linear_model import LogisticRegression

dist.init_process_group("gloo")
rank = dist.get_rank()
print(f"rank {rank} of {dist.get_world_size()}", flush=True)
X = np.random.default_rng(rank).normal(size=(50, 2))
LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
dist.barrier()
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_torchrun_workers_are_recorded_once_by_rank_zero(store: Path, tmp_path: Path):
    pytest.importorskip("torch.distributed")
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed")
    script = _script(tmp_path, DISTRIBUTED)
    done = autolog_run(store, str(torchrun), "--nproc_per_node", "2", "--master_port",
                       str(_free_port()), str(script), cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    (run,) = autolog.list_runs(store)
    assert run.status == "FINISHED"
    assert run.tags["autolog.source.entry_point"] == str(script)
    assert run.tags["autolog.launch.command"].startswith(str(torchrun))
    console = run.artifact_path("console.log").read_text()
    assert "rank 0 of 2" in console and "rank 1 of 2" not in console
    assert json.loads(json.dumps(run.params))["fit_intercept"] is True


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
