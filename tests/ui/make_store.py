"""Builds the store the UI tests read (run as a subprocess with ``AUTOLOG_DIR`` set): runs
with varied params, metrics and tags, a scikit-learn fit and a grid search (a parent with
children), artifacts of several types. Prints nothing; the tests read the store back."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import autolog

TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def varied(count: int) -> None:
    for i in range(count):
        params: dict[str, object] = {"opt": ["adam", "sgd", "Adam W"][i % 3]}
        if i % 7:
            params["lr"] = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 0.1][i % 6]
        if i % 5:
            params["batch"] = [16, 32, 64][i % 3]
        if i % 4 == 0:
            params["flag"] = bool(i % 8)
        if i % 9 == 0:
            params["lr"] = "0.5"  # a number held as a string
        if i % 11 == 0:
            params["model.depth"] = i
        tags = {"team": ["vision", "nlp", "speech"][i % 3]}
        if i % 6 == 0:
            tags["best"] = "yes"
        with autolog.start_run(f"run-{i:02d}", project="alpha" if i % 2 else "beta",
                               tags=tags) as run:
            run.log_params(params)
            for step in range(5 + i % 4):
                run.log_metric("loss", 1.0 / (step + 1 + i), step=step)
            if i % 3:
                run.log_metric("acc", i / count)
            if i % 10 == 3:
                run.log_metric("acc", math.nan)  # the last value NaN
            if i == 4:
                run.log_metric("spiky", 0.0, step=0)
                for step in range(1, 5000):
                    run.log_metric("spiky", 100.0 if step == 2345 else math.sin(step / 50),
                                   step=step)


def files(root: Path) -> None:
    work = root.parent / "files"
    work.mkdir(exist_ok=True)
    (work / "notes.md").write_text("# Notes\n\nbatch size 32 was best\n")
    (work / "plot.png").write_bytes(TINY_PNG)
    (work / "fake.png").write_text("<script>alert(1)</script>")
    (work / "page.html").write_text("<script>alert(1)</script>")
    (work / "big.log").write_text("x" * (2 * 1024 * 1024 + 100))
    with autolog.start_run("with files", project="files") as run:
        for name in ("notes.md", "plot.png", "fake.png", "page.html", "big.log"):
            run.log_artifact(work / name)


def sklearn_runs() -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    x, y = load_iris(return_X_y=True)
    autolog.enable(project="sk", system_metrics=False)
    LogisticRegression(max_iter=200).fit(x, y)
    GridSearchCV(LogisticRegression(max_iter=200), {"C": [0.1, 1.0, 10.0]}, cv=3).fit(x, y)
    autolog.disable()


if __name__ == "__main__":
    root = Path(sys.argv[1])
    varied(int(sys.argv[2]) if len(sys.argv) > 2 else 40)
    files(root)
    sklearn_runs()
