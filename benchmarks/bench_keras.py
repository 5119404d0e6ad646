"""Keras 3 (torch backend) training with a metric logged every batch: without autolog, with it,
and with the other trackers where installed (MLflow's ``mlflow.keras.autolog``; W&B's Keras
callbacks need TensorFlow, so they are reported as not runnable on this backend), side by side.

Each configuration trains the same tiny MLP on the same arrays; the figure is the median wall time
of ``model.fit`` over the repeats (configurations interleaved, so machine load hits them alike).
Budget: autolog under 2 % slower than no tracking.

    .venv/bin/python benchmarks/bench_keras.py [--quick] [--repeats N] [--no-hook-clock]

``--no-hook-clock`` times the fits with no timer wrapped around autolog's hooks (and prints no
table of the time inside them).
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    HookClock,
    arguments,
    fit_sizes,
    hook_clock_option,
    report_hooks,
    report_paired,
)

import autolog  # noqa: E402
from autolog.integrations.keras import AutologCallback, _FitCall, _Recorder  # noqa: E402

BATCH = 32
FRAMEWORK = f"Keras {keras.__version__} ({keras.backend.backend()} backend)"
CLOCK = HookClock({_Recorder: ["on_train_batch_end"]},
                  {_Recorder: ["on_train_begin", "on_epoch_end", "on_train_end"],
                   _FitCall: ["before", "after"]})


def make_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


class Config:
    """One way of tracking: ``start`` returns the callbacks for a timed fit; ``stop`` after it."""

    def __init__(self, name: str, start: Callable[[], list] | None = None,
                 stop: Callable[[], None] | None = None, error: str | None = None):
        self.name = name
        self._start = start or (lambda: [])
        self._stop = stop or (lambda: None)
        self.times: list[float] = []
        self.hooks: list[tuple[float, float, float, float, int]] = []  # CLOCK.take(), autolog only
        self.error = error

    def run(self, x: np.ndarray, y: np.ndarray, epochs: int) -> None:
        if self.error:
            return
        try:
            callbacks = self._start()
            model = make_model()
            CLOCK.take()
            started = time.perf_counter()
            model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=callbacks)
            self.times.append(time.perf_counter() - started)
            if self.name.startswith("autolog"):
                self.hooks.append(CLOCK.take())
        except Exception as exc:  # a tracker that cannot run here: say so in the table
            self.error = f"{type(exc).__name__}: {exc}"[:70]
        finally:
            self._stop()


def configs(root: Path) -> list[Config]:
    # the floor for any callback: Keras calls each callback's hooks every batch
    found = [Config("no tracking"),
             Config("an empty Keras Callback (no tracking)", lambda: [keras.callbacks.Callback()])]

    def autolog_every_batch() -> list:
        autolog.enable(backend="local")
        return [AutologCallback(log_every_n_steps=1)]

    found.append(Config("autolog, batch logs every batch", autolog_every_batch, autolog.disable))

    def autolog_no_model() -> list:
        autolog.enable(backend="local")
        return [AutologCallback(log_every_n_steps=1, log_models=False)]

    found.append(Config("autolog, every batch, log_models=False", autolog_no_model,
                        autolog.disable))
    found.append(_mlflow(root))
    found.append(_wandb())
    return found


def _mlflow(root: Path) -> Config:
    try:
        import mlflow
        import mlflow.keras
    except ImportError:
        return Config("mlflow.keras.autolog", error="not installed")
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")

    def start() -> list:
        mlflow.keras.autolog(log_every_n_steps=1, log_models=False, log_datasets=False,
                             silent=True)
        return []

    def stop() -> None:
        mlflow.keras.autolog(disable=True)
        if mlflow.active_run() is not None:
            mlflow.end_run()

    return Config("mlflow.keras.autolog (sqlite, no model)", start, stop)


def _wandb() -> Config:
    name = "W&B WandbMetricsLogger (offline)"
    try:
        from wandb.integration.keras import WandbMetricsLogger
    except ImportError as exc:  # its Keras integration imports TensorFlow
        return Config(name, error=f"needs TensorFlow ({type(exc).__name__})")
    import wandb

    def start() -> list:
        wandb.init(project="bench", mode="offline")
        return [WandbMetricsLogger(log_freq="batch")]

    return Config(name, start, wandb.finish)


def main() -> None:
    parser = arguments(__doc__, "fewer rows and repeats")
    hook_clock_option(parser)
    args = parser.parse_args()
    if args.no_hook_clock:
        CLOCK.unwrap()
    rows, epochs, repeats = fit_sizes(args)
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.random((rows, 16), dtype=np.float32)
    y = x.sum(axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["AUTOLOG_DIR"] = str(root / "autolog-runs")
        os.environ["WANDB_DIR"] = str(root)
        table = configs(root)
        for config in table:  # warm-up: imports, first-run set-up (sqlite schema)
            config.run(x[:256], y[:256], 1)
            config.times.clear()
            config.hooks.clear()
        for repeat in range(repeats):  # each round starts at the next configuration
            for config in table[repeat % len(table):] + table[:repeat % len(table)]:
                config.run(x, y, epochs)
        report_paired(FRAMEWORK, table, rows // BATCH * epochs, repeats)
        if not args.no_hook_clock:
            report_hooks("inside autolog's hooks, timed around each call (median of fits; the "
                         "batch hooks may run on Keras's callback thread)",
                         [(c.name, c.hooks, c.times) for c in table if c.hooks])


if __name__ == "__main__":
    main()
