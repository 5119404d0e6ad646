"""A local store made by real trainings, for the browser tests: each script runs in its own
Python process (as a user's training would), all on the local backend alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ...helpers import clean_env, crashed_run

# Hand-made runs with known params, metrics, tags and statuses: the reference for sorting and
# filtering; one holds artifacts of each previewable kind; "edit-me" is renamed/tagged/deleted.
MANUAL = r'''
import json, math, struct, sys, tempfile, zlib
from pathlib import Path
import autolog

def png(width, height):
    rows = b"".join(b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 160))
                                       for x in range(width)) for y in range(height))
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))

SPECS = [  # name, project, lr, optimizer, team, status, depth
    ("resnet-a", "vision", 0.1, "sgd", "vision", "FINISHED", 18),
    ("resnet-b", "vision", 0.01, "adam", "vision", "FINISHED", 34),
    ("resnet-c", "vision", 0.001, "adam", "research", "FINISHED", 50),
    ("resnet-d", "vision", 0.03, "sgd", "research", "FAILED", 18),
    ("vit-small", "vision", 0.0003, "adamw", "vision", "FINISHED", 12),
    ("edit-me", "vision", 0.05, "sgd", "vision", "FINISHED", 18),
    ("whisper-tiny", "speech", 0.0001, "adamw", "speech", "FINISHED", 4),
]
for i, (name, project, lr, opt, team, status, depth) in enumerate(SPECS):
    run = autolog.start_run(name, project=project, tags={"team": team})
    run.log_params({"lr": lr, "optimizer": opt, "epochs": 30, "model.depth": depth,
                    "model.width": 64})
    for step in range(30):
        loss = 2.0 * math.exp(-step * lr * 3 - i * 0.05) + 0.01 * i
        run.log_metrics({"loss": loss, "accuracy": 1.0 - loss / 2.5}, step=step)
    if name == "resnet-a":
        folder = Path(tempfile.mkdtemp())
        (folder / "confusion.png").write_bytes(png(48, 32))
        (folder / "predictions.csv").write_text('id,label,score\n1,cat,0.91\n2,"dog, big",0.45\n')
        (folder / "config.json").write_text(json.dumps({"lr": lr, "layers": [64, 64]}))
        (folder / "README.md").write_text("# Results\n\nThe **best** run.\n\n"
                                          "<script>window.pwned = 1</script>\n\n- top-1: 0.91\n")
        for f in sorted(folder.iterdir()):
            run.log_artifact(f)
    run.end(status)
    print(run.id, flush=True)

# a long series with one spike: downsampled for the chart, the spike kept by the envelope
run = autolog.start_run("spiky", project="speech", tags={"team": "speech"})
for step in range(20_000):
    run.log_metric("loss", 50.0 if step == 12_345 else 1.0 + (step % 7) * 0.01, step=step)
run.end()
print(run.id, flush=True)
'''

SKLEARN = r'''
import autolog
autolog.enable(frameworks=["sklearn"])
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
X, y = make_classification(n_samples=120, n_features=6, random_state=0)
GridSearchCV(LogisticRegression(max_iter=200), {"C": [0.1, 1.0, 10.0]}, cv=3).fit(X, y)
autolog.flush()
print(next(r.id for r in autolog.list_runs()
           if r.parent_id is None and r.name.startswith("GridSearchCV")), flush=True)
'''

KERAS = r'''
import os
os.environ["KERAS_BACKEND"] = "torch"
import autolog
autolog.enable(frameworks=["keras"])
import numpy as np
import keras
rng = np.random.default_rng(0)
x = rng.normal(size=(2048, 8)).astype("float32")
y = (x.sum(axis=1, keepdims=True) > 0).astype("float32")
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=8, batch_size=16, validation_split=0.25, verbose=0)
autolog.flush()
'''

# A run that keeps training until it is killed: one point every 0.2 s.
LIVE = r'''
import time, autolog
run = autolog.start_run("live-run", project="vision", tags={"team": "live"})
run.log_params({"lr": 0.02, "optimizer": "sgd"})
print(run.id, flush=True)
step = 0
while True:
    run.log_metric("loss", 1.0 / (step + 1), step=step)
    autolog.flush()
    step += 1
    time.sleep(0.2)
'''


def _start(script: str, store: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script], env=clean_env(store, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen[str], what: str) -> str:
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, f"{what} failed ({process.returncode}):\n{err[-4000:]}"
    return out


def make_store(store: Path) -> dict[str, str]:
    """Train everything into ``store``; returns the ids of the runs the tests name."""
    store.mkdir(parents=True, exist_ok=True)
    keras = _start(KERAS, store, KERAS_BACKEND="torch", AUTOLOG_SYSTEM_METRICS="1",
                   AUTOLOG_SYSTEM_INTERVAL="0.2")
    sklearn = _start(SKLEARN, store)
    manual = _finish(_start(MANUAL, store), "the manual runs").split()
    search = _finish(sklearn, "the GridSearchCV fit").split()[-1]
    _finish(keras, "the Keras fit")
    # a tag of the person's on an autologged run, set afterwards as a person would
    tagged = subprocess.run([sys.executable, "-m", "autolog", "tag", search, "team=tabular"],
                            env=clean_env(store), capture_output=True, text=True, timeout=60)
    assert tagged.returncode == 0, tagged.stderr
    ids = dict(zip(["resnet-a", "resnet-b", "resnet-c", "resnet-d", "vit-small", "edit-me",
                    "whisper-tiny", "spiky"], manual, strict=True))
    ids["grid-search"] = search
    ids["crashed"] = crashed_run(store, steps=200)
    return ids


class LiveRun:
    """A script that prints its run's id and goes on logging (LIVE by default), in a
    subprocess; ``kill()`` is a SIGKILL (the run then reads CRASHED)."""

    def __init__(self, store: Path, script: str = LIVE):
        self.process = _start(script, store)
        assert self.process.stdout is not None
        self.id = self.process.stdout.readline().strip()
        assert len(self.id) == 32, self.process.stderr.read() if self.process.stderr else ""

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
