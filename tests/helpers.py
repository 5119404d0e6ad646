"""Small helpers shared by the tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import autolog

ROOT = Path(__file__).resolve().parents[1]

_CRASHING = """
import os, autolog
run = autolog.start_run("crashed", tags={"team": "speech"})
run.log_params({"lr": 0.1})
for i in range(STEPS):
    run.log_metric("loss", 1.0 / (i + 1), step=i)
autolog.flush()
print(run.id, flush=True)
os._exit(0)  # as SIGKILL or the OOM killer: no end event, the run's lock freed by the kernel
"""


def only_run(**filters: str) -> autolog.RunRecord:
    """The single run in the store (fails if there are none or several)."""
    runs = autolog.list_runs(**filters)
    assert len(runs) == 1, runs
    return runs[0]


def clean_env(store: Path, **extra: str) -> dict[str, str]:
    """The environment for a Python subprocess: this one's without any ``AUTOLOG_*``, then
    ``AUTOLOG_DIR=store``, hardware sampling off, an exit that waits for the backends (no
    delivery process left behind), ``src`` importable, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOLOG_")}
    env.update(AUTOLOG_DIR=str(store), AUTOLOG_SYSTEM_METRICS="0", AUTOLOG_EXIT_MODE="wait",
               PYTHONPATH=str(ROOT / "src"))
    env.update(extra)
    return env


def crashed_run(store: Path, steps: int = 1000) -> str:
    """The id of a run, recorded by a process that died without ending it, on the local backend
    alone: params ``{"lr": 0.1}``, tag ``team=speech``, ``loss`` = 1 / (step + 1) for each step."""
    done = subprocess.run([sys.executable, "-c", _CRASHING.replace("STEPS", str(steps))],
                          env=clean_env(store), capture_output=True, text=True, timeout=60,
                          check=True)
    run_id = done.stdout.strip()
    # a child the dead process forked (its run-context `git status`) may hold a copy of the run's
    # lock for a moment after the process is gone
    deadline = time.monotonic() + 10
    while autolog.get_run(run_id, store).status != "CRASHED" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert autolog.get_run(run_id, store).status == "CRASHED", done.stderr
    return run_id


def trained_in_a_script(tmp_path: Path, store: Path, definition: str, training: str,
                        **env: str) -> str:
    """The run id of a script whose model class ``definition`` lives in its ``__main__`` (as a
    user's training script has it). ``definition`` is also written as ``tmp_path/defs.py``, so a
    test can import the class and put it into its own ``__main__`` to load the model."""
    (tmp_path / "defs.py").write_text(definition)
    script = tmp_path / "train.py"
    script.write_text(f"{definition}\n\nimport autolog\nautolog.enable()\n{training}\n"
                      "print(autolog.list_runs()[0].id)\n")
    done = subprocess.run([sys.executable, str(script)], env=clean_env(store, **env),
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def class_in_main(monkeypatch, tmp_path: Path, name: str) -> None:
    """Import ``name`` from ``tmp_path/defs.py`` into this process's ``__main__``, as a user
    does (``from train_defs import Net``) before loading a model whose class was ``__main__``'s."""
    module = import_defs(monkeypatch, tmp_path)
    monkeypatch.setattr(sys.modules["__main__"], name, getattr(module, name), raising=False)


def import_defs(monkeypatch, tmp_path: Path):
    """``tmp_path/defs.py`` freshly imported (another test's ``defs`` forgotten)."""
    import importlib

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "defs", raising=False)
    module = importlib.import_module("defs")
    monkeypatch.setitem(sys.modules, "defs", module)
    return module


def run_started_in_another_thread(name: str) -> autolog.Run:
    """A run started on a thread of its own, so it is active in no other thread (the tests
    share it with ``run.activate()``)."""
    import threading

    started: list[autolog.Run] = []
    starter = threading.Thread(target=lambda: started.append(autolog.start_run(name)))
    starter.start()
    starter.join()
    return started[0]
