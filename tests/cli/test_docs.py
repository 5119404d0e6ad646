"""Every shell command in ``docs/`` runs as written.

The shell snippets are the fenced blocks marked ``console`` (the lines after ``$``, with their
``\\`` continuations) and ``bash``/``sh``/``shell`` (every line); other blocks are synopses,
trees and output. Each block runs as one session, in order, in an empty directory with a small
``train.py`` (the reader's own script) and ``HOME`` there; ``export`` lines carry over to the
block's next commands. A command must exit 0 without a traceback, unless it cannot run here:

- ``pip install``: the test's environment has installed it already; the extras it names must
  exist in pyproject.toml, and a block whose extra is not installed here is skipped;
- a host that is not this machine (``http://mlflow:5000``): the block stops there;
- a server (``autolog server``, ``autolog ui``) or another program (``tensorboard``,
  ``createdb``): the block stops there, since what follows may need it.

A command that would run but holds a placeholder (``RUN``, ``<run id>``, ``[--token T]``) fails:
write one that runs, or put the synopsis in a plain block.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ..helpers import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DOCS = ROOT / "docs"
SHELLS = {"console", "bash", "sh", "shell"}
FENCE = re.compile(r"^\s*```(\S*)\s*$")
REMOTE = re.compile(r"\b[a-z][a-z0-9+]*://(?!127\.0\.0\.1|localhost|\[::1\])([^/\s:@]+@)?"
                    r"([^/\s:]+)")
PLACEHOLDER = re.compile(r"<[a-z ]+>|\.\.\.|\[--|\b(RUN|NAME|URL|DIR|COMMAND)\b")
RUNNABLE = {"autolog", "python", "export"}
#: an extra -> the module that tells it is installed
EXTRA_MODULES = {"sklearn": "sklearn", "xgboost": "xgboost", "keras": "keras",
                 "lightning": "lightning", "transformers": "transformers", "mlflow": "mlflow",
                 "wandb": "wandb", "tensorboard": "tensorboard", "aim": "aim",
                 "clearml": "clearml", "comet": "comet_ml", "parquet": "pyarrow",
                 "server": "psycopg", "dvclive": "autolog"}
TRAIN = '''\
import autolog

with autolog.start_run("docs-example") as run:
    run.log_params({"lr": 0.01, "model": "mlp"})
    for step in range(5):
        run.log_metrics({"loss": 1 / (step + 1), "val_acc": 0.5 + step / 20}, step=step)
'''


@dataclass
class Block:
    """One shell snippet: where it is and its commands (continuations joined)."""

    page: str
    line: int
    commands: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(path: Path) -> list[Block]:
    found = []
    lines = path.read_text(encoding="utf-8").splitlines()
    start = None
    for number, line in enumerate(lines, 1):
        fence = FENCE.match(line)
        if fence and start is None:
            start, lang, body = number, fence.group(1), []
        elif line.strip().startswith("```") and start is not None:
            if lang in SHELLS:
                block = Block(str(path.relative_to(ROOT)), start, _commands(body, lang))
                if block.commands:
                    found.append(block)
            start = None
        elif start is not None:
            body.append(line)
    return found


def _commands(body: list[str], lang: str) -> list[str]:
    commands: list[str] = []
    going = False
    for line in body:
        if going:
            commands[-1] = commands[-1][:-1] + " " + line.strip()
        elif lang != "console" and line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
        elif lang == "console" and line.startswith("$ "):
            commands.append(line[2:].strip())
        else:
            continue
        going = commands[-1].endswith("\\")
    return commands


def all_blocks() -> list[Block]:
    return [b for page in sorted(DOCS.rglob("*.md")) for b in blocks(page)]


EXTRAS = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
             ["optional-dependencies"])


def _words(command: str) -> list[str]:
    return shlex.split(command, comments=True)


def _program(words: list[str]) -> list[str]:
    """The program a command runs and its arguments that are not options, after any
    ``VAR=value`` assignments."""
    rest = [w for w in words if not re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", w)]
    return [Path(rest[0]).name, *(w for w in rest[1:] if not w.startswith("-"))] if rest \
        else ["export"]


def why_not(command: str) -> tuple[str, bool] | None:
    """Why a command cannot run here, and whether the block goes on after it; None: it runs."""
    words = _words(command)
    if words[:2] == ["pip", "install"] and "&&" not in words:
        extras = {e for w in words for m in re.finditer(r"\[([a-z,]+)\]", w)
                  for e in m.group(1).split(",")}
        assert extras <= EXTRAS, f"{command!r}: no such extra {sorted(extras - EXTRAS)}"
        missing = [e for e in extras if importlib.util.find_spec(EXTRA_MODULES[e]) is None]
        if missing:
            return f"needs the {', '.join(missing)} extra, not installed here", False
        return "installs from the package index (installed here)", True
    remote = REMOTE.search(" ".join(words))  # comments left out
    if remote:
        return f"needs the network ({remote.group(2)})", False
    program, *rest = _program(words)
    if program not in RUNNABLE:
        return f"{program} is not autolog's", False
    if program == "autolog" and rest[:1] in (["ui"], ["server"]) and rest[1:2] not in (
            ["token"], ["migrate"]):
        return "a server: it runs until stopped", False
    if program == "autolog" and "--" in words:  # autolog run -- torchrun ...: that one installed?
        launched = words[words.index("--") + 1:]
        if launched and shutil.which(launched[0]) is None and launched[0] != "python":
            return f"{launched[0]} is not installed here", True
    return None


def run_block(block: Block, workdir: Path) -> tuple[int, list[str]]:
    """Runs what can run; returns how many commands ran and what was skipped, each with why."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AUTOLOG_", "MLFLOW_", "WANDB_", "COMET_"))}
    venv = str(Path(sys.executable).parent)
    env.update(HOME=str(workdir), PATH=venv + os.pathsep + env.get("PATH", ""),
               PYTHONPATH=str(ROOT / "src"), AUTOLOG_SYSTEM_METRICS="0", WANDB_SILENT="true",
               AUTOLOG_EXIT_MODE="wait",  # no delivery process left behind by a snippet
               COLUMNS="120", NO_COLOR="1")
    (workdir / "train.py").write_text(TRAIN)
    skipped = []
    ran = 0
    for command in block.commands:
        reason = why_not(command)
        if reason is not None:
            skipped.append(f"{block}: {command!r}: {reason[0]}")
            if reason[1]:
                continue
            break
        assert not PLACEHOLDER.search(command), (
            f"{block}: {command!r} holds a placeholder: write a command that runs")
        words = _words(command)
        ran += 1
        if words[0] == "export":
            env.update(w.split("=", 1) for w in words[1:])
            continue
        done = subprocess.run(["bash", "-c", command], cwd=workdir, env=env, text=True,
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=280)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (
            f"{block}: {command!r} exited {done.returncode}\n{done.stdout[-3000:]}\n"
            f"{done.stderr[-3000:]}")
    return ran, skipped


BLOCKS = all_blocks()


def test_the_docs_have_snippets_that_run() -> None:
    runnable = [c for b in BLOCKS for c in b.commands if why_not(c) is None]
    assert len(BLOCKS) >= 15 and len(runnable) >= 25, [str(b) for b in BLOCKS]
    pages = {b.page for b in BLOCKS}
    assert {"docs/quickstart.md", "docs/cli.md"} <= pages


@pytest.mark.timeout(900)
@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_snippet_runs_as_written(block: Block, tmp_path: Path) -> None:
    ran, skipped = run_block(block, tmp_path)
    for line in skipped:
        print("not run:", line)
    if not ran:
        pytest.skip("nothing here runs without the network or a server: " + "; ".join(skipped))
