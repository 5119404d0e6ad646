"""Keras 3: real training on tiny arrays, read back through autolog.

Runs on the backend KERAS_BACKEND names, torch when unset. CI runs it on torch and JAX;
TensorFlow (a large wheel) by hand: see docs/compatibility.md.
"""

from __future__ import annotations

import os
import threading

import pytest

BACKEND = os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported
np = pytest.importorskip("numpy")
pytest.importorskip(BACKEND)
keras = pytest.importorskip("keras")

import autolog  # noqa: E402
from autolog.integrations.keras import AutologCallback  # noqa: E402

from ..helpers import only_run, run_started_in_another_thread  # noqa: E402

# Keras-on-torch converts tensors with np.array(..., copy=False) (NumPy 2 warns)
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

ROWS = 100


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.random((ROWS, 4), dtype=np.float32)
    return x, x.sum(axis=1, keepdims=True)


def make_model(lr: float = 0.01, model_class: type | None = None):
    keras.utils.set_random_seed(0)
    model = (model_class or keras.Sequential)(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse", metrics=["mae"])
    return model


def steps(record, key: str) -> list[int]:
    return [step for step, _, _ in record.history(key)]


def test_fit_logs_params_epoch_metrics_summary_and_model(data):
    x, y = data
    autolog.enable()
    model = make_model()
    model.fit(x, y, 16, 3, 0, validation_split=0.2)  # batch_size, epochs, verbose by position
    record = only_run()
    assert record.status == "FINISHED"
    params = record.params
    assert {k: params[k] for k in ("epochs", "batch_size", "validation_split", "shuffle",
                                   "initial_epoch")} == {
        "epochs": 3, "batch_size": 16, "validation_split": 0.2, "shuffle": True,
        "initial_epoch": 0}
    assert params["optimizer.class"] == "Adam" and params["optimizer.learning_rate"] == 0.01
    assert params["loss"] == "mse" and params["metrics"] == '["mae"]'
    assert params["model.class"] == "keras.src.models.sequential.Sequential"
    assert params["model.parameters"] == params["model.trainable_parameters"] == 4 * 8 + 8 + 9
    assert params["model.non_trainable_parameters"] == 0
    for key in ("loss", "mae", "val_loss", "val_mae", "learning_rate"):
        assert steps(record, key) == [0, 1, 2], key
    history = model.history.history
    assert [v for _, v, _ in record.history("val_loss")] == pytest.approx(history["val_loss"])
    assert record.metrics["learning_rate"] == pytest.approx(0.01)
    assert not [k for k in record.metric_keys if k.startswith("batch/")]  # epoch logs only
    summary = record.artifact_path("model_summary.txt").read_text(encoding="utf-8")
    assert "Total params: " in summary and "dense_1" in summary

    assert record.models["model"]["flavor"] == "keras"
    loaded = autolog.load_model(record)
    assert isinstance(loaded, keras.Model)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def _table(text: str) -> tuple[list[list[str]], list[str]]:
    """A summary's rows (cells, a wrapped cell's lines joined) and the lines after the table."""
    rows: list[list[str]] = []
    after: list[str] = []
    joined = True  # a rule was just passed: the next cell line starts a row
    for line in filter(None, text.splitlines()):
        if line[0] in "│┃":
            cells = [cell.strip() for cell in line[1:-1].split(line[0])]
            if joined:
                rows.append(cells)
            else:
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
            joined = False
        elif line[0] in "┏┡├└":
            joined = True
        elif rows:
            after.append(line.strip())
    return rows, after


class Tower(keras.Model):  # subclassed: its layers in order, shapes from their builds
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(8)
        self.norm = keras.layers.BatchNormalization()
        self.out = keras.layers.Dense(1)

    def call(self, x):
        return self.out(self.norm(self.hidden(x)))


def _two_inputs():
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    joined = keras.layers.Concatenate()([keras.layers.Dense(5, name="left")(a),
                                         keras.layers.Dense(5, name="right_branch")(b)])
    return keras.Model([a, b], keras.layers.Dense(1, name="head")(joined))


def _nested():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name="inner")
    x = keras.Input((4,))
    return keras.Model(x, keras.layers.Dense(1)(inner(x)))


@pytest.mark.parametrize("build", [make_model, Tower, _two_inputs, _nested],
                         ids=["sequential", "subclassed", "two-inputs", "nested"])
def test_the_model_summary_says_what_keras_summary_says(data, build, monkeypatch):
    """autolog draws the summary table itself (Keras's rich table costs 3 to 8 ms a fit): the
    same rows, cells and totals as ``model.summary()``, whatever the console's width."""
    monkeypatch.setenv("COLUMNS", "60")  # Keras would wrap and cut its cells ("concatenate…")
    x, y = data
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    inputs = [x, x[:, :3]] if build is _two_inputs else x
    autolog.enable()
    model.fit(inputs, y, epochs=1, verbose=0)
    ours = only_run().artifact_path("model_summary.txt").read_text(encoding="utf-8")
    printed: list[str] = []
    monkeypatch.setenv("COLUMNS", "300")  # wide enough for Keras to cut nothing
    model.summary(print_fn=lambda text, *args, **kwargs: printed.append(text))
    theirs = "\n".join(printed)
    assert ours.splitlines()[0] == theirs.splitlines()[0] == f'Model: "{model.name}"'
    rows, totals = _table(ours)
    assert (rows, totals) == _table(theirs)
    assert len(rows) == 1 + len(model.layers)  # the header, then each layer
    if build is _two_inputs:
        assert rows[0][-1] == "Connected to" and ["concatenate (Concatenate)", "(None, 10)", "0",
                                                  "left[0][0], right_branch[0][0]"] in rows
    assert max(map(len, ours.splitlines())) > 60  # no cell was wrapped to fit


def test_positional_and_keyword_arguments_log_the_same_params(data):
    x, y = data
    autolog.enable()
    make_model().fit(x, y, 32, 2, 0)
    make_model().fit(x=x, y=y, batch_size=32, epochs=2, verbose=0)
    make_model().fit(x, y, epochs=2, verbose=0)  # batch size implicit: Keras's 32
    fitted = [{k: v for k, v in r.params.items() if not k.startswith("model.name")}
              for r in autolog.list_runs()]
    assert len(fitted) == 3 and fitted[0] == fitted[1] == fitted[2]
    assert fitted[0]["batch_size"] == 32 and fitted[0]["epochs"] == 2


def test_batch_logging_by_hand_without_enable(data):
    x, y = data
    callback = AutologCallback(log_every_n_steps=3)
    make_model().fit(x, y, batch_size=10, epochs=2, verbose=0, callbacks=[callback])
    record = only_run()
    # 10 batches an epoch: global batch indices 0..19, every third one logged
    assert sorted(steps(record, "batch/loss")) == [2, 5, 8, 11, 14, 17]
    assert sorted(steps(record, "batch/mae")) == [2, 5, 8, 11, 14, 17]
    assert steps(record, "loss") == [0, 1]
    assert record.params["batch_size"] == 10  # read from fit's frame: no patch needed
    assert record.params["epochs"] == 2


def test_batch_hooks_are_async_safe():
    callback = AutologCallback(log_every_n_steps=1)
    assert callback.async_safe is True
    callbacks = keras.callbacks.CallbackList([callback])
    # newer Keras may run our batch hooks off the training thread (not on TensorFlow; 3.0 never)
    if hasattr(callbacks, "_async_train") and BACKEND != "tensorflow":
        assert callbacks._async_train


def test_same_callbacks_list_for_two_fits_gives_two_runs(data):
    x, y = data
    autolog.enable()
    history = keras.callbacks.History()
    callbacks = [history]
    make_model().fit(x, y, epochs=2, verbose=0, callbacks=callbacks)
    make_model().fit(x, y, epochs=3, verbose=0, callbacks=callbacks)
    assert callbacks == [history]  # the user's list is untouched
    first, second = sorted(autolog.list_runs(), key=lambda r: r.start_time)
    assert first.id != second.id
    assert steps(first, "loss") == [0, 1] and steps(second, "loss") == [0, 1, 2]


def test_callback_by_hand_with_enable_logs_once(data):
    x, y = data
    autolog.enable()
    callback = AutologCallback()
    callbacks = [callback]
    make_model().fit(x, y, epochs=2, verbose=0, callbacks=callbacks)
    assert callbacks == [callback]
    record = only_run()
    assert steps(record, "loss") == [0, 1]


def test_a_callback_list_given_to_fit_is_copied_not_changed(data):
    x, y = data
    autolog.enable()
    model = make_model()
    history = keras.callbacks.History()
    given = keras.callbacks.CallbackList([history], model=model, epochs=2, verbose=0)
    model.fit(x, y, epochs=2, verbose=0, callbacks=given)
    assert given.callbacks == [history]
    assert steps(only_run(), "loss") == [0, 1]
    assert history.history["loss"]  # the user's History still saw the epochs


def test_fit_inside_a_user_run_logs_into_it(data):
    x, y = data
    autolog.enable()
    with autolog.start_run("mine") as run:
        make_model().fit(x, y, epochs=2, verbose=0)
        run.log_metric("after", 1.0)
    record = only_run()
    assert record.id == run.id and record.name == "mine"
    assert steps(record, "loss") == [0, 1] and record.metrics["after"] == 1.0


def test_early_stopping_outcome_and_restored_model(data):
    x, y = data
    autolog.enable()
    model = make_model(lr=0.5)
    # an improvement bigger than any possible stops training after the first patient epoch
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=1e9,
                                            restore_best_weights=True)
    model.fit(x, y, epochs=10, verbose=0, callbacks=[stopper])
    record = only_run()
    assert stopper.stopped_epoch == 1
    assert steps(record, "loss") == [0, 1]
    assert record.metrics["early_stopping/stopped_epoch"] == 1
    assert record.metrics["early_stopping/restored_epoch"] == 0
    assert record.metrics["early_stopping/best"] == pytest.approx(record.history("loss")[0][1])
    assert record.params["early_stopping.monitor"] == "loss"
    assert record.params["early_stopping.patience"] == 1
    loaded = autolog.load_model(record)  # the restored (best) weights, as the user has them
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_hand_added_callback_before_early_stopping_saves_restored_weights(data):
    x, y = data
    model = make_model(lr=0.5)
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=1e9,
                                            restore_best_weights=True)
    model.fit(x, y, epochs=10, verbose=0, callbacks=[AutologCallback(), stopper])
    loaded = autolog.load_model(only_run())
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def _archive(path) -> tuple[dict, dict]:
    """A ``.keras`` archive's config and every weight array by its path in the archive."""
    import json
    import zipfile

    h5py = pytest.importorskip("h5py")
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        with h5py.File(archive.open("model.weights.h5"), "r") as weights:
            arrays: dict = {}
            weights.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                               if isinstance(item, h5py.Dataset) else None)
    return config, arrays


def test_the_saved_archive_is_keras_own_and_its_saving_state_is_left_as_found(
        data, tmp_path, monkeypatch):
    """autolog's save finds the skip sets Keras cached (no reference objects built again), saves
    what Keras's own save does, and leaves Keras's saving state as it found it."""
    from keras.src.backend.common import global_state
    from keras.src.layers.layer import Layer

    x, y = data
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.BatchNormalization(), keras.layers.Dropout(0.1),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.save(tmp_path / "before.keras")  # the user's own save: Keras caches its skip sets
    names_before = set(vars(global_state.GLOBAL_STATE_TRACKER))
    built = []
    layer_init = Layer.__init__

    def counting_init(self, *args, **kwargs):
        built.append(type(self))
        layer_init(self, *args, **kwargs)

    monkeypatch.setattr(Layer, "__init__", counting_init)
    autolog.enable()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert Layer not in built  # Keras's reference Layer() for its skip set: not built again
    added = set(vars(global_state.GLOBAL_STATE_TRACKER)) - names_before
    assert not any(name.startswith("saving_attr_") for name in added)
    model.save(tmp_path / "after.keras")
    config, arrays = _archive(only_run().artifact_path("model/model.keras"))
    expected_config, expected_arrays = _archive(tmp_path / "after.keras")
    assert config == expected_config
    assert arrays.keys() == expected_arrays.keys() and len(arrays) > 10  # optimizer state too
    for name, array in arrays.items():
        np.testing.assert_array_equal(array, expected_arrays[name], err_msg=name)


class Where(keras.callbacks.Callback):
    """An async-safe callback with a batch hook of its own, which notes the threads it runs on."""

    async_safe = True

    def __init__(self):
        super().__init__()
        self.threads: set[int] = set()

    def on_train_batch_end(self, batch, logs=None):
        self.threads.add(threading.get_ident())


class Probe(keras.callbacks.Callback):
    """No batch hook of its own: notes at each epoch's end whether Keras's callback pool has
    started threads during the fit (it starts them as it hands the first batch over)."""

    def __init__(self):
        super().__init__()
        self.before = self._pool_threads()
        self.pooled: list[bool] = []

    @staticmethod
    def _pool_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("ThreadPoolExecutor")}

    def on_epoch_end(self, epoch, logs=None):
        self.pooled.append(bool(self._pool_threads() - self.before))


def test_on_the_cpu_the_batch_hooks_run_on_the_training_thread(data):
    """Keras hands the batch hooks of async-safe callbacks to a thread pool: for torch on the
    CPU that costs more than it saves, so autolog's callback is not async-safe there, and Keras
    runs the batch hooks in line. JAX dispatches asynchronously even on the CPU, and a callback
    of the user's that is async-safe with batch hooks of its own asked for the pool: there the
    pool stays."""
    from autolog.integrations.keras import _pool_pays

    x, y = data
    has_pool = hasattr(keras.callbacks.CallbackList, "_async_dispatch")  # not in Keras 3.0
    in_line = BACKEND == "torch"
    model = make_model()
    assert _pool_pays(model, []) is not in_line  # its weights are in host memory
    assert _pool_pays(model, [Where()]) is True
    assert _pool_pays(keras.Sequential([keras.layers.Dense(1)]), []) is True  # no weights yet

    def fit(*callbacks):
        make_model().fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=list(callbacks))

    probe = Probe()
    fit(probe)
    assert probe.pooled == [has_pool] * 2  # without autolog: Keras's pool, where it has one
    autolog.enable()
    probe = Probe()
    fit(probe)
    assert probe.pooled == [has_pool and not in_line] * 2
    probe, where = Probe(), Where()
    fit(probe, where)  # the user's async-safe batch hook stays on the pool
    assert probe.pooled == [has_pool] * 2
    assert (threading.get_ident() in where.threads) is not has_pool
    assert [steps(record, "loss") for record in autolog.list_runs()] == [[0, 1]] * 2


BOOM = RuntimeError("boom in train_step")


class ExplodingModel(keras.Sequential):
    def train_step(self, *args):  # (data) on torch, (state, data) on JAX
        raise BOOM


def test_training_error_reaches_the_user_and_the_run_fails(data):
    x, y = data
    autolog.enable()
    with pytest.raises(RuntimeError) as caught:
        make_model(model_class=ExplodingModel).fit(x, y, epochs=2, verbose=0)
    assert caught.value is BOOM
    assert only_run().status == "FAILED"


class BrokenConfig(keras.optimizers.Adam):
    def get_config(self):
        raise RuntimeError("a config that breaks")


def test_autolog_failure_in_a_hook_warns_and_training_goes_on(data, lenient):
    from autolog.errors import AutologWarning

    x, y = data
    autolog.enable(log_models=False)  # the save would fail too, with a warning of its own
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=BrokenConfig(0.01), loss="mse")
    with pytest.warns(AutologWarning, match="on_train_begin failed"):
        model.fit(x, y, epochs=2, verbose=0)
    assert len(model.history.history["loss"]) == 2
    record = only_run()
    assert record.status == "FINISHED" and steps(record, "loss") == [0, 1]


def test_log_models_off_and_disable(data):
    x, y = data
    autolog.enable()
    make_model().fit(x, y, epochs=1, verbose=0, callbacks=[AutologCallback(log_models=False)])
    assert only_run().models == {}
    autolog.disable()
    make_model().fit(x, y, epochs=1, verbose=0)
    assert len(autolog.list_runs()) == 1


def test_async_batch_hooks_log_into_the_fits_run_from_another_thread(data):
    """Issue 15, item 9: Keras may run the batch hooks on its own threads; a fit in a worker
    thread that activated a run logs every batch into that run, not into the main thread's."""
    import threading

    x, y = data
    autolog.enable()
    shared = run_started_in_another_thread("shared")
    errors: list[BaseException] = []

    def worker():
        try:
            with shared.activate():
                make_model().fit(x, y, batch_size=10, epochs=2, verbose=0,
                                 callbacks=[AutologCallback(log_every_n_steps=1)])
        except BaseException as exc:
            errors.append(exc)

    with autolog.start_run("main") as main:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(300)
    shared.end()
    assert not errors, errors
    record = autolog.get_run(shared.id)
    assert sorted(steps(record, "batch/loss")) == list(range(20))
    assert steps(record, "loss") == [0, 1]
    assert autolog.get_run(main.id).metric_keys == []
    assert {r.id for r in autolog.list_runs()} == {shared.id, main.id}
    assert autolog.get_run(main.id).parent_id is None


_KERAS = '''
import numpy as np
import keras


class Scale(keras.layers.Layer):  # not registered: Keras cannot find it elsewhere
    def call(self, x):
        return x * 2.0
'''

_KERAS_TRAIN = '''
model = keras.Sequential([keras.Input((3,)), Scale(), keras.layers.Dense(1)])
model.compile("sgd", "mse")
model.fit(np.zeros((8, 3)), np.zeros((8, 1)), epochs=1, verbose=0)
'''


def test_a_custom_class_of_the_training_script_is_the_load_error(tmp_path, store, monkeypatch):
    """Item 16, Keras: a layer class defined in the training script and not registered."""
    from ..helpers import import_defs, trained_in_a_script

    run_id = trained_in_a_script(tmp_path, store, _KERAS, _KERAS_TRAIN,
                                 KERAS_BACKEND=keras.backend.backend())  # this leg's backend
    with pytest.raises(autolog.ModelLoadError, match="its class 'Scale' is not known here") as e:
        autolog.load_model(run_id)
    assert "register_keras_serializable" in str(e.value) and "custom_objects" in str(e.value)
    defs = import_defs(monkeypatch, tmp_path)
    with keras.saving.custom_object_scope({"Scale": defs.Scale}):
        assert len(autolog.load_model(run_id).layers) == 2


def _histogram(record, item) -> dict:
    import json

    return json.loads(record.artifact_path(item.path).read_text())


def test_weight_histograms_every_n_epochs_and_dataset_fingerprints(data):
    x, y = data
    autolog.enable(log_histograms=2)
    model = make_model()
    model.fit(x[:80], y[:80], batch_size=16, epochs=4, verbose=0, validation_data=(x[80:], y[80:]))
    record = only_run()
    kernels = record.media_for(f"weights/{model.layers[0].kernel.path}", "histogram")
    assert [m.step for m in kernels] == [1, 3]  # the 2nd and 4th epochs
    histogram = _histogram(record, kernels[-1])
    assert sum(histogram["counts"]) == 4 * 8 == kernels[-1].meta["count"]
    final = model.layers[0].kernel.numpy()
    assert histogram["edges"][0] == pytest.approx(final.min(), abs=1e-6)
    assert histogram["edges"][-1] == pytest.approx(final.max(), abs=1e-6)
    assert len({m.key for m in record.media}) == len(model.weights)
    tags = record.tags
    assert (tags["dataset.training.shape"], tags["dataset.validation.rows"]) == ("[80, 4]", "20")


def test_no_histograms_unless_asked(data):
    x, y = data
    autolog.enable()
    make_model().fit(x, y, epochs=2, verbose=0)
    assert only_run().media == []
