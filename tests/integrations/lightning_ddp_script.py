"""Trains a tiny LightningModule on CPU with two processes, autologged; run by test_lightning.py.

``python lightning_ddp_script.py STRATEGY [--active-run]``: STRATEGY is ``ddp_spawn`` or ``ddp``.
AUTOLOG_DIR comes from the environment. Prints ``RUN <id>`` for the run the launching process saw
(if any). Kept out of the pytest process: DDP starts process groups and worker processes.
"""

from __future__ import annotations

import sys
import warnings

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import autolog

warnings.filterwarnings("ignore")  # Lightning's advice about workers, sync_dist, CPU DDP

import lightning.pytorch as L  # noqa: E402

STEPS_PER_EPOCH = 4  # per process: 64 rows, 2 processes, batches of 8
EPOCHS = 2


class DDPNet(L.LightningModule):
    def __init__(self, hidden: int = 8, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True, sync_dist=True)
        self.log("rank", float(self.global_rank), on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y), sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loader(rows: int) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(rows, 4, generator=g)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)


def main(strategy: str, active_run: bool) -> None:
    torch.set_num_threads(1)
    autolog.enable()
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy=strategy, max_epochs=EPOCHS,
                        log_every_n_steps=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False)
    if active_run:
        with autolog.start_run("outer") as run:
            trainer.fit(DDPNet(), loader(64), loader(32))
        print("RUN", run.id, flush=True)
    else:
        trainer.fit(DDPNet(), loader(64), loader(32))
    autolog.flush()


if __name__ == "__main__":
    main(sys.argv[1], "--active-run" in sys.argv[2:])
