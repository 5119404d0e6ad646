"""Lightning training with a metric logged every batch: without autolog, with it, and with the
other trackers where installed (MLflow's ``mlflow.pytorch.autolog``, W&B's ``WandbLogger``
offline), side by side in one process.

Each configuration trains the same tiny MLP on the same CPU data; the figure is the median wall
time of ``trainer.fit`` over the repeats (configurations interleaved, so machine load hits them
alike). Budget: autolog under 2 % slower than no tracking.

    .venv/bin/python benchmarks/bench_lightning.py [--quick] [--repeats N] [--every N]
        [--no-hook-clock]

``--every N`` logs every N steps (``Trainer(log_every_n_steps=N)``, MLflow's ``log_every_n_step``)
instead of every step: ``--every 50`` is Lightning's default cadence. ``--no-hook-clock`` times
the fits with no timer wrapped around autolog's hooks (and prints no table of the time inside
them).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import lightning.pytorch as L  # noqa: E402
import torch  # noqa: E402
from _common import (  # noqa: E402
    HookClock,
    arguments,
    fit_sizes,
    hook_clock_option,
    report_hooks,
    report_paired,
)
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import autolog  # noqa: E402
from autolog.integrations.lightning import _Recorder, _TrainerCall  # noqa: E402

for _name in ("lightning.pytorch", "pytorch_lightning"):  # mlflow.pytorch imports the second
    logging.getLogger(_name).setLevel(logging.ERROR)
    logging.getLogger(f"{_name}.utilities.rank_zero").setLevel(logging.ERROR)  # has its own level
FRAMEWORK = f"Lightning {L.__version__}, torch {torch.__version__}"
EVERY = 1  # Trainer(log_every_n_steps=...): --every
CLOCK = HookClock({_Recorder: ["_logged"]},  # what the Trainer hands its loggers, each step
                  {_Recorder: ["setup", "on_train_start", "on_train_epoch_start",
                               "on_train_epoch_end", "on_fit_end", "teardown"],
                   _TrainerCall: ["before", "after"]})


class MLP(L.LightningModule):
    def __init__(self, hidden: int = 64, lr: float = 0.01):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(16, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, 1))

    def training_step(self, batch, index):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)  # handed to the loggers every EVERY batches
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def make_loader(rows: int) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(rows, 16, generator=g)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=32)


class Config:
    """One way of tracking: ``start`` before a timed fit, ``stop`` after it (not timed)."""

    def __init__(self, name: str, start: Callable[[Path], list] | None = None,
                 stop: Callable[[], None] | None = None):
        self.name = name
        self._start = start or (lambda root: [])
        self._stop = stop or (lambda: None)
        self.times: list[float] = []
        self.hooks: list[tuple[float, float, float, float, int]] = []  # CLOCK.take(), autolog only
        self.error: str | None = None

    def run(self, root: Path, loader: DataLoader, epochs: int) -> None:
        if self.error:
            return
        try:
            loggers = self._start(root)
            callbacks = [L.Callback()] if self.name.startswith("an empty") else []
            trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=loggers or False,
                                callbacks=callbacks,
                                log_every_n_steps=EVERY, enable_progress_bar=False,
                                enable_model_summary=False, enable_checkpointing=False,
                                default_root_dir=root)
            torch.manual_seed(0)
            model = MLP()
            CLOCK.take()
            started = time.perf_counter()
            trainer.fit(model, loader)
            self.times.append(time.perf_counter() - started)
            if self.name.startswith("autolog"):
                self.hooks.append(CLOCK.take())
        except Exception as exc:  # a tracker that cannot run here: say so in the table
            self.error = f"{type(exc).__name__}: {exc}"[:70]
        finally:
            self._stop()


def configs(root: Path) -> list[Config]:
    # Lightning calls every hook of every callback each batch: the floor for any callback
    found = [Config("no tracking"), Config("an empty Lightning Callback (no tracking)")]

    def autolog_on(_: Path) -> list:
        autolog.enable(backend="local")
        return []

    found.append(Config("autolog (local journal)", autolog_on, autolog.disable))

    def autolog_no_model(_: Path) -> list:
        autolog.enable(backend="local", log_models=False)
        return []

    found.append(Config("autolog, log_models=False", autolog_no_model, autolog.disable))
    try:
        import mlflow
        import mlflow.pytorch
    except ImportError:
        found.append(Config("mlflow.pytorch.autolog (not installed)"))
    else:
        mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")

        def mlflow_on(_: Path) -> list:
            mlflow.pytorch.autolog(log_every_n_step=EVERY, log_models=False, checkpoint=False,
                                   silent=True)
            return []

        def mlflow_off() -> None:
            mlflow.pytorch.autolog(disable=True)
            if mlflow.active_run() is not None:
                mlflow.end_run()

        found.append(Config("mlflow.pytorch.autolog (sqlite, no model)", mlflow_on, mlflow_off))
    try:
        import wandb
        from lightning.pytorch.loggers import WandbLogger
    except ImportError:
        found.append(Config("W&B WandbLogger (not installed)"))
    else:
        def wandb_on(path: Path) -> list:
            return [WandbLogger(project="bench", save_dir=str(path), offline=True)]

        found.append(Config("W&B WandbLogger (offline)", wandb_on, wandb.finish))
    return found


def main() -> None:
    global EVERY
    parser = arguments(__doc__, "fewer rows and repeats")
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="log every N steps (default 1; Lightning's own default is 50)")
    hook_clock_option(parser)
    args = parser.parse_args()
    EVERY = args.every
    if args.no_hook_clock:
        CLOCK.unwrap()
    rows, epochs, repeats = fit_sizes(args)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["AUTOLOG_DIR"] = str(root / "autolog-runs")
        os.environ["WANDB_DIR"] = str(root)
        loader = make_loader(rows)
        table = configs(root)
        for config in table:  # warm-up: imports, first-run set-up (sqlite schema, W&B service)
            config.run(root, make_loader(256), 1)
            config.times.clear()
            config.hooks.clear()
        for repeat in range(repeats):  # each round starts at the next configuration
            for config in table[repeat % len(table):] + table[:repeat % len(table)]:
                config.run(root, loader, epochs)
        cadence = "one metric logged each batch" if EVERY == 1 else \
            f"one metric logged every {EVERY} batches"
        report_paired(FRAMEWORK, table, rows // 32 * epochs, repeats, cadence)
        if not args.no_hook_clock:
            report_hooks("inside autolog's hooks, timed around each call (median of fits; the "
                         "per-step calls include the epoch-level ones)",
                         [(c.name, c.hooks, c.times) for c in table if c.hooks])


if __name__ == "__main__":
    main()
