"""A local store of media made by real code, for the media views' browser tests: runs logging
images, histograms, a table and texts over steps; scikit-learn fits (evaluation plots); a script
under ``autolog run`` printing a tqdm bar in a dirty git work tree (console and code); and a run
that keeps printing (a live console). Every script runs in its own Python process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ...helpers import clean_env
from .store import LiveRun

MEDIA = r'''
import numpy as np
import autolog
for name, shift in (("media-a", 0), ("media-b", 1)):
    with autolog.start_run(name, project="media") as run:
        print(run.id, flush=True)
        for step in range(5):
            # one colour per step (red = 50 * step + shift): the slider's image is told apart
            image = np.zeros((24, 32, 3), dtype=np.uint8)
            image[..., 0] = 50 * step + shift
            image[..., 2] = 200
            run.log_image("samples", image, step=step * 10)
        if shift:
            continue
        rng = np.random.default_rng(0)
        for step in range(12):
            run.log_histogram("activations", rng.normal(step * 0.5, 1.0, 2000), step=step, bins=32)
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_table("predictions", [
            {"id": i, "label": ["cat", "dog", "bird"][i % 3],
             "score": round((i * 7919 % 1000) / 1000, 3)} for i in range(3000)])
        for step, text in enumerate(["the cat sat", "on the mat", "and slept"]):
            run.log_text("samples_text", text, step=step)
'''

SKLEARN = r'''
import json
import autolog
autolog.enable(frameworks=["sklearn"])
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import confusion_matrix, roc_auc_score
out = {}
for name, seed in (("classifier-a", 0), ("classifier-b", 1)):
    X, y = make_classification(n_samples=300, n_features=6, flip_y=0.1, random_state=seed)
    with autolog.start_run(name, project="media") as run:
        model = LogisticRegression(C=0.05).fit(X, y)
    out[name] = {"id": run.id, "matrix": confusion_matrix(y, model.predict(X)).tolist(),
                 "labels": [str(c) for c in model.classes_],
                 "auc": roc_auc_score(y, model.predict_proba(X)[:, 1])}
X, y = make_regression(n_samples=150, n_features=4, noise=10.0, random_state=0)
with autolog.start_run("regressor", project="media") as run:
    LinearRegression().fit(X, y)
out["regressor"] = {"id": run.id, "points": len(y)}
print(json.dumps(out), flush=True)
'''

TRAIN = r'''
import sys
from tqdm import tqdm
from sklearn.linear_model import LogisticRegression
from util import scale
print("loading data", flush=True)
for _ in tqdm(range(50), file=sys.stderr, mininterval=0):
    pass
print("a warning on stderr", file=sys.stderr, flush=True)
for epoch in range(3):
    print(f"epoch {epoch} loss {scale(1.0 / (epoch + 1)):.3f}", flush=True)
# the fit is the run (what was printed since the start is handed to it)
LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
'''

UTIL_BEFORE = "def scale(x):\n    return x * 1.0\n"
UTIL_AFTER = "def scale(x):\n    return x * 2.0  # doubled\n"

# A run that keeps printing until it is killed: one line every 0.2 s.
LIVE = r'''
import time, autolog
run = autolog.start_run("live-console", project="media")
print(run.id, flush=True)
i = 0
while True:
    print(f"tick {i}", flush=True)
    autolog.flush()
    i += 1
    time.sleep(0.2)
'''


def _python(script: str, store: Path, **env: str) -> str:
    done = subprocess.run([sys.executable, "-c", script], env=clean_env(store, **env),
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"failed ({done.returncode}):\n{done.stderr[-4000:]}"
    return done.stdout


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=repo, check=True, capture_output=True, timeout=60)


def launched_run(store: Path, work: Path) -> None:
    """``autolog run -- python train.py`` (a scikit-learn fit, after printing) in a git work
    tree with uncommitted changes (one tracked file changed, one file untracked)."""
    repo = work / "project"
    repo.mkdir(parents=True)
    (repo / "train.py").write_text(TRAIN)
    (repo / "util.py").write_text(UTIL_BEFORE)
    _git(repo, "init", "-q")
    _git(repo, "add", "train.py", "util.py")
    _git(repo, "commit", "-q", "-m", "first")
    (repo / "util.py").write_text(UTIL_AFTER)
    (repo / "notes.txt").write_text("not committed\n")
    env = clean_env(store)
    done = subprocess.run([sys.executable, "-m", "autolog", "run", "--project", "media",
                           "--name", "launched", "--", sys.executable, "train.py"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, \
        f"autolog run failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


def make_media_store(store: Path, work: Path) -> dict[str, Any]:
    """Everything above into ``store``; the ids (and sklearn's own numbers) the tests need."""
    store.mkdir(parents=True, exist_ok=True)
    media = _python(MEDIA, store).split()
    fits = json.loads(_python(SKLEARN, store).strip().splitlines()[-1])
    launched_run(store, work)
    return {"media-a": media[0], "media-b": media[1], **fits}


class LiveConsole(LiveRun):
    """The LIVE script (printing while it runs) in a subprocess, until ``kill()``."""

    def __init__(self, store: Path):
        super().__init__(store, LIVE)
