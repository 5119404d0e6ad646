"""autolog adds no host-device synchronisation to training (issue 18 item 4).

On a GPU, reading a tensor's value on the training thread (``.item()``, ``.cpu()``,
``.tolist()``, ``float(t)``, ``bool(t)``...) waits for the device's queue to drain. autolog must
add none: it logs what the framework already turned into numbers, at the framework's own
logging cadence, or reads tensors on another thread. Checked on the CPU by counting those calls
on the training thread (a ``TorchFunctionMode`` sees every tensor method and conversion) during
a real Lightning, Keras (torch backend) and transformers fit, without autolog and with it at its
default settings: the counts must be equal. ``benchmarks/check_nvidia.py`` checks the same on an
NVIDIA GPU with ``torch.cuda.set_sync_debug_mode("error")``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported

torch = pytest.importorskip("torch")
from torch.overrides import TorchFunctionMode  # noqa: E402

import autolog  # noqa: E402

#: tensor methods and conversions that read a value back to the host (``.numpy()`` is not one:
#: on a device tensor it raises; autolog calls it on CPU datasets only, for their fingerprint)
SYNCING = {"item", "cpu", "tolist", "__float__", "__int__", "__bool__", "__index__",
           "__complex__", "__array__", "nonzero", "any", "all", "equal", "allclose"}


class SyncCounter(TorchFunctionMode):
    """Counts, on the thread it is entered on, the calls that would synchronise on a GPU."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_function__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        name = getattr(func, "__name__", "")
        if name in SYNCING:
            self.counts[name] += 1
        return func(*args, **(kwargs or {}))


def counted(fit: Callable[[SyncCounter], None], whole: bool) -> Counter[str]:
    counter = SyncCounter()
    if whole:
        with counter:
            fit(counter)
    else:
        fit(counter)  # the fit enters and leaves the counter itself
    return counter.counts


def compare(fit: Callable[[SyncCounter], None], whole: bool = True
            ) -> tuple[Counter[str], Counter[str]]:
    """The counts of one fit without autolog and one with it (defaults), after a warm-up."""
    fit(SyncCounter())  # first-call work of the framework (lazy initialisation) is not ours
    autolog.disable()
    plain = counted(fit, whole)
    autolog.enable()
    logged = counted(fit, whole)
    autolog.disable()
    assert autolog.list_runs(), "autolog recorded the fit"
    return plain, logged


@pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning")
@pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\).*is deprecated")
@pytest.mark.filterwarnings("ignore:.*`self.log\\(.*but have no logger configured")
@pytest.mark.filterwarnings("ignore:The number of training batches .* is smaller than")
def test_lightning_fit_adds_no_sync(tmp_path: Path) -> None:
    L = pytest.importorskip("lightning.pytorch")
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    class Model(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Linear(4, 1)

        def training_step(self, batch: Any, index: int) -> Any:
            x, y = batch
            loss = nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss, prog_bar=True)
            return loss

        def validation_step(self, batch: Any, index: int) -> None:
            x, y = batch
            self.log("val_loss", nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    x = torch.rand(64, 4, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)

    def fit(counter: SyncCounter) -> None:
        trainer = L.Trainer(max_epochs=2, accelerator="cpu", log_every_n_steps=2,
                            enable_progress_bar=False, enable_model_summary=False,
                            enable_checkpointing=False, logger=False,
                            default_root_dir=tmp_path)
        trainer.fit(Model(), loader, loader)

    plain, logged = compare(fit)
    assert logged == plain


# Keras-on-torch converts tensors with np.array(..., copy=False) (NumPy 2 warns)
@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
@pytest.mark.parametrize("dispatch", ["pool", "in line"])
def test_keras_torch_backend_fit_adds_no_sync(dispatch: str, monkeypatch: Any) -> None:
    """Where every callback is async-safe, Keras runs the batch hooks on its callback thread and
    turns the logs into numbers there; autolog's callback is async-safe on an accelerator, not on
    the CPU (``_pool_pays``). ``pool``: the accelerator's way, the model's weights taken for
    device ones. ``in line``: the CPU's way, with a callback of the user's that is not
    async-safe, so that Keras reads the logs on the training thread with or without autolog."""
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("Keras runs another backend in this process")
    np = pytest.importorskip("numpy")
    from autolog.integrations import keras as integration

    if dispatch == "pool":
        monkeypatch.setattr(integration, "_pool_pays", lambda model, callbacks: True)
    rng = np.random.default_rng(0)
    x = rng.random((64, 4), dtype=np.float32)
    y = x.sum(axis=1, keepdims=True)

    class Window(keras.callbacks.Callback):
        """Counts from the first batch to the end of the last epoch (listed first, it runs
        before autolog's callback at each event)."""

        def __init__(self, counter: SyncCounter):
            super().__init__()
            self.counter, self.open = counter, False
            self.async_safe = dispatch == "pool"

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            pass  # Keras dispatches a callback with its own batch hooks as async_safe says

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            if not self.open:
                self.open = True
                self.counter.__enter__()

        def on_train_end(self, logs: Any = None) -> None:
            self.counter.__exit__(None, None, None)

    def fit(counter: SyncCounter) -> None:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, activation="relu"),
                                  keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse", metrics=["mae"])
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_split=0.25,
                  callbacks=[Window(counter)])

    # The training loop, every epoch's end included. Not its two boundaries, where autolog reads
    # values once with nothing of the training queued after them: the optimizer's settings
    # before the first step (its config), and the model's weights after the last (saving it).
    try:
        plain, logged = compare(fit, whole=False)
    finally:
        keras.backend.clear_session()  # fresh layer names for the tests after this one
    assert logged == plain


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_transformers_trainer_adds_no_sync(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from .test_transformers import make_trainer, training_args

    def fit(counter: SyncCounter) -> None:
        args = training_args(tmp_path, logging_steps=2, eval_strategy="steps", eval_steps=4)
        make_trainer(tmp_path, n_train=32, args=args).train()

    plain, logged = compare(fit)
    assert logged == plain


def test_a_tensor_is_read_as_it_was_when_logged_and_never_on_the_logging_thread() -> None:
    loss = torch.tensor(0.5)
    with SyncCounter() as counter, autolog.start_run() as run:
        run.log_metrics({"loss": loss, "scaled": loss * 2}, step=0)
        loss.add_(1.0)  # the framework updates its tensor in place after logging it
        run.log_metrics({"loss": loss}, step=1)
        weight = torch.tensor(2.0, requires_grad=True)
        graph = weight * 3  # part of an autograd graph: snapshotted detached
        run.log_metrics({"graph": graph}, step=0)
        with torch.no_grad():
            graph.add_(1.0)
    assert counter.counts == Counter()  # read by the journal writer, not here
    record = autolog.get_run(run.id)
    assert [(s, v) for s, v, _ in record.history("loss")] == [(0, 0.5), (1, 1.5)]
    assert [(s, v) for s, v, _ in record.history("scaled")] == [(0, 1.0)]
    assert [(s, v) for s, v, _ in record.history("graph")] == [(0, 6.0)]
