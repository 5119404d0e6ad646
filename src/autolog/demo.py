"""``autolog demo``: the main job. Trains what is installed with autolog on, then lists the runs."""

from __future__ import annotations

import math
import random
from pathlib import Path

__all__ = ["run_demo"]


def run_demo(directory: str | None = None) -> int:
    import autolog

    from .cli import main as cli_main

    autolog.enable(backend="local") if directory is None else _enable_in(directory)
    trained = [_manual_loop()]
    store = autolog.api.get_settings().dir
    print(f"\ntrained: {', '.join(trained)}; runs are in {Path(store).absolute()}\n")
    autolog.flush()
    return cli_main(["runs", "--limit", str(len(trained) + 2), "--dir", store])


def _enable_in(directory: str) -> None:
    import os

    import autolog

    os.environ["AUTOLOG_DIR"] = directory
    autolog.api._settings = None
    autolog.enable(backend="local")


def _manual_loop() -> str:
    """A hand-written training loop logged with the run API (no framework needed)."""
    import autolog

    rng = random.Random(0)
    with autolog.start_run("demo-manual-loop") as run:
        run.log_params({"lr": 0.1, "epochs": 20, "model": {"kind": "linear", "features": 3}})
        w = [0.0, 0.0, 0.0]
        true_w = [1.5, -2.0, 0.5]
        for epoch in range(20):
            loss = 0.0
            for _ in range(64):
                x = [rng.gauss(0, 1) for _ in range(3)]
                y = sum(a * b for a, b in zip(true_w, x, strict=True)) + rng.gauss(0, 0.1)
                err = sum(a * b for a, b in zip(w, x, strict=True)) - y
                w = [wi - 0.1 * err * xi / 8 for wi, xi in zip(w, x, strict=True)]
                loss += err * err / 64
            run.log_metrics({"loss": loss, "rmse": math.sqrt(loss)}, step=epoch)
    return "a manual training loop"
