"""PyTorch Lightning, both namespaces: real CPU training on tiny tensors, read back."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning.pytorch")

from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import autolog  # noqa: E402
from autolog.integrations import lightning as integration  # noqa: E402
from autolog.integrations.lightning import AutologCallback  # noqa: E402

from ..helpers import only_run  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\).*is deprecated"),
    pytest.mark.filterwarnings("ignore:.*`self.log\\(.*but have no logger configured"),
    pytest.mark.filterwarnings("ignore:The number of training batches .* is smaller than"),
    pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no"),
]

BATCHES = 4  # training batches per epoch: 64 rows, batches of 16


class Net(L.LightningModule):
    """Module-level, so ``autolog.load_model`` can import it back."""

    def __init__(self, hidden: int = 8, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, index):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, index):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def test_step(self, batch, index):
        x, y = batch
        self.log("test_loss", nn.functional.mse_loss(self(x), y))

    def on_train_epoch_end(self):
        self.log("epoch_end_value", float(self.current_epoch) + 0.5)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


BOOM = ValueError("boom in training_step")


class Exploding(Net):
    def training_step(self, batch, index):
        raise BOOM


class Interrupted(Net):
    def training_step(self, batch, index):
        raise KeyboardInterrupt


def loader(rows: int = 64) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(rows, 4, generator=g)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)


def trainer(tmp_path: Path, module=L, **options):
    settings = dict(max_epochs=2, accelerator="cpu", logger=False, enable_progress_bar=False,
                    enable_model_summary=False, default_root_dir=tmp_path, log_every_n_steps=1)
    settings.update(options)
    return module.Trainer(**settings)


def steps(record, key: str) -> list[int]:
    return [step for step, _, _ in record.history(key)]


class Counting(Net):
    """Logs what it knows at each step: a tensor it changes in place right after logging it,
    a torchmetrics metric's value for the batch, and a learning rate held in a tensor, which
    the scheduler changes in place (``fill_``) at each epoch's end."""

    def __init__(self):
        super().__init__()
        from torchmetrics.aggregation import SumMetric

        self.total = SumMetric()

    def training_step(self, batch, index):
        loss = super().training_step(batch, index)
        value = torch.tensor(float(self.global_step))
        self.log("tensor_value", value)
        value.add_(1000.0)  # Lightning keeps its own copy of what was logged
        self.total(torch.tensor(float(self.global_step)))  # the batch's sum: the step
        self.log("metric_value", self.total, on_step=True, on_epoch=False)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=torch.tensor(0.05))
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


@pytest.mark.parametrize("on_cpu", [True, False], ids=["cpu", "device"])
def test_step_values_are_kept_without_a_second_copy_and_read_as_logged(tmp_path, monkeypatch,
                                                                        on_cpu):
    """At a step-level call autolog keeps the tensors Lightning hands its loggers as they are
    (they are Lightning's own per-step copies) and reads them on the writer thread, after
    later steps: each step's value must still be the one logged then. The learning rate,
    which is the optimizer's own tensor, is read (on the CPU) or copied when it is logged.
    On the CPU the whole dict goes to the writer thread (``Run.hand_over_metrics``); on a
    device (forced here) each tensor's host copy is queued on the training thread."""
    pytest.importorskip("torchmetrics")
    torch.manual_seed(0)
    fit = trainer(tmp_path, enable_checkpointing=False)
    assert integration._on_cpu(fit)
    if not on_cpu:
        monkeypatch.setattr(integration, "_on_cpu", lambda trainer: False)
    autolog.enable(log_models=False)
    fit.fit(Counting(), loader())
    record = only_run()
    expected = [float(step) for step in range(2 * BATCHES)]
    assert [v for _, v, _ in record.history("tensor_value")] == expected
    assert [v for _, v, _ in record.history("metric_value")] == expected
    rates = [v for _, v, _ in record.history("lr")]
    # the scheduler steps before the last batch of an epoch is logged (as with a float rate)
    assert rates == pytest.approx([0.05] * (BATCHES - 1) + [0.025] * BATCHES + [0.0125])


def test_fit_logs_hparams_settings_metrics_and_best_checkpoint(tmp_path):
    torch.manual_seed(0)
    autolog.enable()
    model = Net(hidden=8, lr=0.05)
    fitter = trainer(tmp_path, log_every_n_steps=2)
    before = list(fitter.callbacks)
    fitter.fit(model, loader(), loader(32))
    assert fitter.callbacks == before  # the injected callback is gone again
    record = only_run()
    assert record.status == "FINISHED"
    params = record.params
    assert params["hidden"] == 8 and params["lr"] == 0.05
    assert params["trainer.max_epochs"] == 2 and params["trainer.log_every_n_steps"] == 2
    assert params["trainer.accelerator"] == "cpu" and params["trainer.devices"] == 1
    assert params["trainer.precision"] == "32-true"
    assert params["optimizer.class"] == "SGD" and params["optimizer.lr"] == 0.05
    assert params["lr_scheduler.class"] == "StepLR" and params["lr_scheduler.gamma"] == 0.5
    assert params["model.parameters"] == params["model.trainable_parameters"] == 4 * 8 + 8 + 9
    assert params["model.class"] == f"{__name__}.Net"

    last = 2 * BATCHES - 1  # Lightning's logger step for the last batch
    assert steps(record, "train_loss_step") == [1, 3, 5, 7]  # every second step
    assert steps(record, "train_loss_epoch") == [BATCHES - 1, last]
    assert steps(record, "val_loss") == [BATCHES - 1, last]
    assert [v for _, v, _ in record.history("epoch_end_value")] == [0.5, 1.5]
    epochs = record.history("epoch")
    assert len({step for step, _, _ in epochs}) == len(epochs)  # once per step
    assert [v for s, v, _ in epochs if s == BATCHES - 1] == [0.0]
    assert [v for s, v, _ in epochs if s == last] == [1.0]
    rates = dict((s, v) for s, v, _ in record.history("lr"))
    assert rates[1] == 0.05 and rates[last] == 0.0125  # StepLR halves it each epoch
    assert "model_summary.txt" in record.artifacts

    checkpoint = fitter.checkpoint_callback.best_model_path
    assert record.tags["checkpoint.best_model_path"] == os.path.abspath(checkpoint)
    spec = record.models["model"]
    assert spec["flavor"] == "lightning" and spec["namespace"] == "lightning.pytorch"
    assert spec["checkpoint"] == os.path.abspath(checkpoint)
    loaded = autolog.load_model(record)
    assert type(loaded) is Net and not loaded.training
    x = torch.rand(5, 4)
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_by_hand_without_enable_and_without_checkpoints(tmp_path):
    torch.manual_seed(0)
    model = Net()
    callback = AutologCallback(log_every_n_steps=4)
    trainer(tmp_path, callbacks=[callback], enable_checkpointing=False).fit(model, loader())
    record = only_run()
    assert steps(record, "train_loss_step") == [3, 7]
    assert steps(record, "train_loss_epoch") == [3, 7]
    loaded = autolog.load_model(record)  # written from the module's weights
    x = torch.rand(3, 4)
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def pl_net(pl):
    """A tiny module on the ``pytorch_lightning`` namespace (imported only when installed)."""

    class PLNet(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(4, 1)

        def training_step(self, batch, index):
            loss = nn.functional.mse_loss(self.layer(batch[0]), batch[1])
            self.log("loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    return PLNet


def test_pytorch_lightning_namespace_by_hand_with_enable_logs_once(tmp_path):
    pl = pytest.importorskip("pytorch_lightning")
    PLNet = pl_net(pl)
    autolog.enable()
    cls = integration.callback_class("pytorch_lightning")
    assert issubclass(cls, pl.Callback) and not issubclass(cls, L.Callback)
    callbacks = [cls()]
    fitter = trainer(tmp_path, module=pl, callbacks=callbacks, enable_checkpointing=False)
    fitter.fit(PLNet(), loader())
    assert len(callbacks) == 1
    record = only_run()
    assert steps(record, "loss") == list(range(2 * BATCHES))
    assert record.models["model"]["namespace"] == "pytorch_lightning"


def test_enable_injects_for_pytorch_lightning_too(tmp_path):
    pl = pytest.importorskip("pytorch_lightning")
    PLNet = pl_net(pl)
    autolog.enable(log_models=False)
    trainer(tmp_path, module=pl, max_epochs=1, enable_checkpointing=False).fit(PLNet(), loader())
    assert steps(only_run(), "loss") == list(range(BATCHES))


def test_same_callbacks_list_for_two_trainers_gives_two_runs(tmp_path):
    autolog.enable(log_models=False)
    stopper = L.callbacks.EarlyStopping(monitor="train_loss_epoch", patience=5)
    callbacks = [stopper]
    # (with checkpointing on, Lightning's Trainer itself appends its ModelCheckpoint to the list)
    trainer(tmp_path, callbacks=callbacks, enable_checkpointing=False).fit(Net(), loader())
    assert callbacks == [stopper]
    trainer(tmp_path, callbacks=callbacks, enable_checkpointing=False, max_epochs=1).fit(
        Net(), loader())
    assert callbacks == [stopper]
    first, second = sorted(autolog.list_runs(), key=lambda r: r.start_time)
    assert steps(first, "train_loss_step") == list(range(2 * BATCHES))
    assert steps(second, "train_loss_step") == list(range(BATCHES))
    assert first.params["early_stopping.monitor"] == "train_loss_epoch"


def test_early_stopping_and_checkpoint_outcomes(tmp_path):
    autolog.enable()
    stopper = L.callbacks.EarlyStopping(monitor="val_loss", patience=0, min_delta=1e9)
    best = L.callbacks.ModelCheckpoint(monitor="val_loss", dirpath=tmp_path / "ckpt")
    fitter = trainer(tmp_path, max_epochs=10, callbacks=[stopper, best])
    fitter.fit(Net(), loader(), loader(32))
    record = only_run()
    assert stopper.stopped_epoch == 1
    assert steps(record, "val_loss") == [BATCHES - 1, 2 * BATCHES - 1]
    assert record.metrics["early_stopping/stopped_epoch"] == 1
    assert record.metrics["checkpoint/best_model_score"] == pytest.approx(
        float(best.best_model_score))
    assert record.tags["checkpoint.best_model_path"] == os.path.abspath(best.best_model_path)
    assert record.models["model"]["checkpoint"] == os.path.abspath(best.best_model_path)
    assert record.params["checkpoint.monitor"] == "val_loss"
    assert record.params["early_stopping.patience"] == 0


def test_test_call_logs_test_metrics_in_its_own_run(tmp_path):
    autolog.enable(log_models=False)
    fitter = trainer(tmp_path, max_epochs=1, enable_checkpointing=False)
    model = Net()
    with autolog.start_run("together") as run:
        fitter.fit(model, loader())
        fitter.test(model, loader(32))
    record = only_run()
    assert record.id == run.id
    assert "test_loss" in record.metrics and "train_loss_epoch" in record.metrics
    fitter.test(model, loader(32))
    alone = next(r for r in autolog.list_runs() if r.id != run.id)
    assert alone.tags["lightning.stage"] == "test" and "test_loss" in alone.metrics


def test_training_step_error_reaches_the_user_and_the_run_fails(tmp_path):
    autolog.enable()
    fitter = trainer(tmp_path)
    before = list(fitter.callbacks)
    with pytest.raises(ValueError) as caught:
        fitter.fit(Exploding(), loader())
    assert caught.value is BOOM
    assert fitter.callbacks == before
    assert only_run().status == "FAILED"


# Lightning 2.1 warns this (later ones log it)
@pytest.mark.filterwarnings("ignore:Detected KeyboardInterrupt, attempting graceful shutdown")
def test_keyboard_interrupt_ends_the_run_killed(tmp_path):
    autolog.enable()
    fitter = trainer(tmp_path)
    try:
        fitter.fit(Interrupted(), loader())
    except SystemExit:  # Lightning 2.2+ turns Ctrl+C into a graceful exit(1); 2.1 returns
        pass
    assert fitter.interrupted
    assert only_run().status == "KILLED"


def test_callbacks_pickle_to_their_own_class():
    callback = AutologCallback(log_every_n_steps=3)
    copy = pickle.loads(pickle.dumps(callback))
    assert type(copy) is type(callback) and isinstance(copy, L.Callback)
    assert copy.log_every_n_steps == 3


SCRIPT = Path(__file__).with_name("lightning_ddp_script.py")


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp_spawn", "ddp"])
def test_ddp_on_cpu_logs_one_run_from_rank_zero(strategy, store, tmp_path):
    done = run_ddp_script(strategy, store, tmp_path)
    try:
        assert done.returncode == 0
        record = only_run()
        assert record.status == "FINISHED"
        assert record.params["trainer.world_size"] == 2
        assert record.params["trainer.strategy"] == strategy
        per_process = 4  # 64 rows over 2 processes, batches of 8
        assert steps(record, "train_loss_step") == list(range(2 * per_process))
        assert {v for _, v, _ in record.history("rank")} == {0.0}  # rank 0's own values only
        assert steps(record, "val_loss") == [per_process - 1, 2 * per_process - 1]
    except AssertionError as exc:  # a multi-process failure is hard to rerun: say everything
        raise AssertionError(f"{exc}\n--- exit {done.returncode}, stdout:\n{done.stdout[-2000:]}"
                             f"\n--- stderr:\n{done.stderr[-4000:]}\n--- store:\n"
                             f"{_describe(store)}") from exc


#: How a DDP launch fails when the port Lightning picked is taken, e.g. still in TIME_WAIT from a
#: server an earlier test stopped (Lightning-AI/pytorch-lightning#21308): before any training.
LAUNCH_RACE = ("EADDRINUSE", "address already in use")


def run_ddp_script(strategy: str, store: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """The DDP script, launched again (at most twice more) only when the launch itself lost the
    race for its port; any other failure is returned as it is."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("WANDB_")}  # the pytest process's W&B service, if a test began one
    env.update(AUTOLOG_DIR=str(store), PYTHONPATH=os.pathsep.join(sys.path))
    for _ in range(3):
        done = subprocess.run([sys.executable, str(SCRIPT), strategy], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=240)
        if done.returncode == 0 or not any(sign in done.stderr for sign in LAUNCH_RACE):
            break
        shutil.rmtree(store, ignore_errors=True)  # what the failed launch began: start over
    return done


def _describe(store: Path) -> str:
    lines = []
    for record in autolog.list_runs(store):
        points = {key: steps(record, key) for key in sorted(record.metrics)}
        lines.append(f"{record.id} {record.name!r} {record.status} params={len(record.params)} "
                     f"metrics={points}")
    journals = sorted(store.rglob("events.jsonl"))
    lines += [f"{path}: {path.stat().st_size} bytes" for path in journals]
    return "\n".join(lines) or "(no runs)"


_LIT = '''
import torch
import lightning.pytorch as L
from torch import nn


class LitClassifier(L.LightningModule):
    def __init__(self, hidden=4):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Linear(4, 1)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, index):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)
'''

_LIT_TRAIN = '''
from torch.utils.data import DataLoader, TensorDataset
data = TensorDataset(torch.randn(16, 4), torch.randn(16, 1))
L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
          enable_model_summary=False).fit(LitClassifier(), DataLoader(data, batch_size=8))
'''


def test_a_module_class_of_the_training_script_is_the_load_error(tmp_path, store, monkeypatch):
    """Item 16: loading a run whose LightningModule lives in the training script's ``__main__``
    raised "no installed plugin loads models of flavor 'lightning'", the real cause only a
    warning. The error names the class and both ways to load it; importing the class works."""
    from ..helpers import class_in_main, trained_in_a_script

    run_id = trained_in_a_script(tmp_path, store, _LIT, _LIT_TRAIN)
    with pytest.raises(autolog.ModelLoadError) as caught:
        autolog.load_model(run_id)
    message = str(caught.value)
    assert "__main__.LitClassifier is not importable here" in message
    assert "defined in the script that trained the model" in message
    assert "load_state_dict" in message and "no installed plugin" not in message
    class_in_main(monkeypatch, tmp_path, "LitClassifier")
    loaded = autolog.load_model(run_id)
    assert type(loaded).__name__ == "LitClassifier" and not loaded.training


def test_weight_and_gradient_histograms_every_n_epochs(tmp_path):
    import json

    autolog.enable(log_histograms=1)
    net = Net()
    trainer(tmp_path, max_epochs=2).fit(net, loader(), loader(32))
    record = only_run()
    weights = record.media_for("weights/net.0.weight", "histogram")
    grads = record.media_for("gradients/net.0.weight", "histogram")
    assert [m.step for m in weights] == [m.step for m in grads] == [0, 1]
    final = net.net[0].weight.detach().numpy()
    data = json.loads(record.artifact_path(weights[-1].path).read_text())
    assert sum(data["counts"]) == final.size
    assert data["edges"][0] == pytest.approx(final.min()) and data["edges"][-1] == \
        pytest.approx(final.max())
    assert grads[-1].meta["count"] == final.size and grads[-1].meta["nan"] == 0
    tags = record.tags
    assert (tags["dataset.training.rows"], tags["dataset.validation.rows"]) == ("64", "32")
    assert tags["dataset.training.kind"] == "torch.utils.data.dataloader.DataLoader"
    assert tags["dataset.training.digest"] != tags["dataset.validation.digest"]
