"""The tensorboard backend, read back with TensorBoard's own code: the event accumulator, and the
HParams plugin's session-group handler (what its table and parallel coordinates show)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import autolog
from autolog import testing
from autolog.backends.tensorboard import TensorBoardBackend
from autolog.cli import main as cli_main
from autolog.delivery import replay as delivery
from autolog.runs import make_backend

from .file_readers import (
    read_tensorboard,
    same_points,
    tensorboard_accumulator,
    tensorboard_context,
    tensorboard_run_dir,
)
from .media_items import TEXT, local_bytes, log_every_kind

pytest.importorskip("tensorboard")


def hparams_table(logdir: Path) -> dict[str, dict]:
    """Session groups as TensorBoard's HParams dashboard requests them."""
    from google.protobuf import json_format
    from tensorboard import context
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

    tb = tensorboard_context(logdir)
    # TensorBoard before 2.13 has no include_metrics: it always sends the metrics
    fields = api_pb2.ListSessionGroupsRequest.DESCRIPTOR.fields_by_name
    metrics = {"include_metrics": True} if "include_metrics" in fields else {}
    request = api_pb2.ListSessionGroupsRequest(
        allowed_statuses=[api_pb2.STATUS_SUCCESS, api_pb2.STATUS_FAILURE,
                          api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_RUNNING],
        col_params=[api_pb2.ColParams(hparam="lr")], start_index=0, slice_size=100, **metrics)
    response = list_session_groups.Handler(context.RequestContext(),
                                           backend_context.Context(tb), "", request).run()
    groups = json.loads(json_format.MessageToJson(response))["sessionGroups"]
    return {g["name"]: g for g in groups}


def test_runs_children_and_hparams(tensorboard_dir: Path):
    autolog.enable(backend="local,tensorboard")
    with autolog.start_run("search", project="vision") as parent:
        parent.log_params({"cv": 3})
        for lr in (0.1, 0.01):
            with autolog.start_run(f"lr-{lr}") as child:
                child.log_params({"lr": lr, "optimizer": "sgd"})
                for step in range(20):
                    child.log_metric("loss", lr * (20 - step), step=step)
        parent.log_metric("best_loss", 0.01)
        parent.log_text_artifact("Model: two layers", "model_summary.txt")
    with pytest.raises(RuntimeError), autolog.start_run("broken", project="vision") as broken:
        broken.log_metric("loss", math.nan, step=0)
        raise RuntimeError("boom")
    assert autolog.flush(60)

    top = tensorboard_run_dir(tensorboard_dir, parent.id)
    assert top.parent == tensorboard_dir / "vision" and top.name == f"search-{parent.id[:8]}"
    children = sorted(p.name for p in top.iterdir() if p.is_dir())
    assert len(children) == 2 and all(c.startswith("lr-0.") for c in children)
    got = read_tensorboard(top)
    assert got.metrics == {"best_loss": [(0, 0.01)]} and got.params == {"cv": "3"}
    assert got.artifacts >= {"model_summary.txt"}
    from tensorboard.util import tensor_util

    summary = tensorboard_accumulator(top).Tensors("artifacts/model_summary.txt")[0]
    assert tensor_util.make_ndarray(summary.tensor_proto).item() == b"    Model: two layers"
    assert math.isnan(read_tensorboard(tensorboard_run_dir(tensorboard_dir, broken.id))
                      .metrics["loss"][0][1])

    table = hparams_table(tensorboard_dir)
    child = table[next(n for n in table if "lr-0.01" in n)]
    assert child["hparams"] == {"lr": 0.01, "optimizer": "sgd"}
    assert child["metricValues"][0]["name"]["tag"] == "loss"
    assert child["metricValues"][0]["value"] == pytest.approx(0.01)  # the last value, step 19
    assert child["sessions"][0]["status"] == "STATUS_SUCCESS"
    failed = table[next(n for n in table if "broken" in n)]
    assert failed["sessions"][0]["status"] == "STATUS_FAILURE"
    assert table[next(n for n in table if n.endswith(f"search-{parent.id[:8]}"))]["hparams"] \
        == {"cv": 3.0}


def test_wall_times_are_autologs_and_values_exact(tensorboard_dir: Path):
    autolog.enable(backend="local,tensorboard")
    with autolog.start_run("exact") as run:
        for step in range(100):
            run.log_metric("x", 1 / 3 + step * 1e-12, step=step)  # float32 would merge these
    assert autolog.flush(60)
    got = read_tensorboard(tensorboard_run_dir(tensorboard_dir, run.id))
    local = autolog.get_run(run.id).history("x")
    assert got.metrics["x"] == [(s, v) for s, v, _ in local]
    assert got.times["x"] == [t for _, _, t in local]


class FailsAfterWriting(TensorBoardBackend):
    """A destination whose disk write goes through and whose acknowledgement is lost once."""

    failures = 1

    def log_batch(self, run, batch):
        super().log_batch(run, batch)
        if FailsAfterWriting.failures:
            FailsAfterWriting.failures -= 1
            raise OSError("killed after writing")


def test_a_retried_or_resumed_delivery_never_doubles_a_point(tensorboard_dir: Path, store: Path):
    with autolog.start_run("resume") as run:  # local only
        for step in range(300):
            run.log_metric("loss", 1 / (step + 1), step=step)
    backend = FailsAfterWriting(autolog.api.get_settings())
    with pytest.raises(OSError, match="killed after writing"):
        delivery.deliver(backend, run.path)  # the batch is in the file, its ack is not
    assert delivery.deliver(backend, run.path)  # retried in this process
    assert delivery.deliver(make_backend("tensorboard"), run.path)  # nothing left to do
    got = read_tensorboard(tensorboard_run_dir(tensorboard_dir, run.id))
    assert same_points(got.metrics["loss"], [(s, 1 / (s + 1)) for s in range(300)])


def test_sync_writes_what_live_delivery_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               tensorboard_dir: Path):
    autolog.enable(backend="local,tensorboard")
    with autolog.start_run("live", tags={"team": "vision"}) as run:
        run.log_params({"lr": 0.001, "layers": 2})
        for step in range(500):
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / 500}, step=step)
        run.log_text_artifact("summary", "model_summary.txt")
        run.log_image("samples", [[0, 255], [255, 0]], step=3)
        run.log_histogram("weights", [0.1, 0.2, 0.2, 0.9], step=3, bins=3)
        run.log_table("predictions", [[1, "a"]], columns=["x", "y"])
        with autolog.start_run("child") as child:
            child.log_metric("x", 2.0, step=1)
    assert autolog.flush(60)
    testing.reset()

    synced_root = tmp_path / "synced"
    monkeypatch.setenv("AUTOLOG_TENSORBOARD_DIR", str(synced_root))
    assert cli_main(["sync", "--to", "tensorboard"]) == 0
    for run_id in (run.id, child.id):
        live_dir = tensorboard_run_dir(tensorboard_dir, run_id)
        synced_dir = tensorboard_run_dir(synced_root, run_id)
        assert live_dir.relative_to(tensorboard_dir) == synced_dir.relative_to(synced_root)
        assert read_tensorboard(live_dir) == read_tensorboard(synced_dir)
        assert _events(live_dir) == _events(synced_dir)


def _events(run_dir: Path) -> list[tuple]:
    """Every event of the directory's files, serialized: content equal whatever the batching."""
    from tensorboard.backend.event_processing import event_file_loader

    out = []
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        out += [e.SerializeToString() for e in
                event_file_loader.LegacyEventFileLoader(str(path)).Load()]
    return sorted(out)


# TensorBoard's plugins import its vendored bleach, whose html5lib warns when imported
@pytest.mark.filterwarnings("ignore:html5lib's sanitizer is deprecated:DeprecationWarning")
def test_media_in_tensorboards_dashboards(tensorboard_dir: Path, tmp_path: Path):
    """Images, histograms (and the distributions made from them), texts, tables and plots, read
    with TensorBoard's data provider and its histogram and distribution plugins."""
    pytest.importorskip("PIL")
    from tensorboard import context
    from tensorboard.plugins.distribution import distributions_plugin
    from tensorboard.plugins.histogram import histograms_plugin

    run = log_every_kind("local,tensorboard", tmp_path)
    logdir = tensorboard_run_dir(tensorboard_dir, run.id)
    tb = tensorboard_context(logdir.parent)
    ctx, name = context.RequestContext(), logdir.name
    provider = tb.data_provider

    images = provider.read_blob_sequences(ctx, experiment_id="", plugin_name="images",
                                          downsample=100)[name]
    def blobs(tag: str) -> list[tuple[int, bytes]]:
        return [(datum.step, provider.read_blob(ctx, blob_key=datum.values[2].blob_key))
                for datum in images[tag]]

    samples = blobs("samples") + blobs("samples/1")  # TensorBoard keeps one image a step
    assert [step for step, _ in samples] == [0, 1, 1]
    assert [blob for _, blob in samples] == local_bytes(run, "samples")
    [(_, webp)] = blobs("file")
    assert webp.startswith(b"\x89PNG")  # converted: TensorBoard shows no WebP
    assert blobs("training_confusion_matrix") == [(0, local_bytes(run,
                                                                 "training_confusion_matrix")[0])]

    plugin = histograms_plugin.HistogramsPlugin(tb)
    body, _ = plugin.histograms_impl(ctx, "weights", name, experiment="")
    [(wall_time, step, buckets)] = body
    assert step == 2 and [b[2] for b in buckets] == [25, 25, 25, 26]
    assert [b[0] for b in buckets] == [0, 0.25, 0.5, 0.75] and buckets[-1][1] == 1
    local = autolog.get_run(run.id).media_for("weights")[0]
    assert wall_time == local.timestamp / 1000
    body, _ = plugin.histograms_impl(ctx, "binned", name, experiment="")
    assert body[0][2] == [[-1.0, 0.0, 3.0], [0.0, 0.5, 0.0], [0.5, 2.0, 5.0]]  # exact edges
    spread, _ = distributions_plugin.DistributionsPlugin(tb).distributions_impl(
        ctx, "weights", name, experiment="")
    assert spread[0][1] == 2 and len(spread[0][2]) == 9  # the nine basis points of a spread

    texts = {tag: [(d.step, d.numpy.item().decode()) for d in series] for tag, series in
             provider.read_tensors(ctx, experiment_id="", plugin_name="text",
                                   downsample=100)[name].items()}
    assert texts["generated"] == [(3, TEXT)]
    [(step, table)] = texts["predictions"]
    assert step == 0
    assert table.splitlines() == ["| x | y |", "| --- | --- |", "| 1 | a\\|b |", "| 2 | c |"]
    [(_, matrix)] = texts["training_confusion_matrix/data"]
    assert "| cat | 5 | 1 |" in matrix and "| dog | 2 | 7 |" in matrix
    [(_, roc)] = texts["training_roc_curve/data"]
    assert roc.startswith("roc_curve, auc 0.875") and "| 0.5 | 1.0 | 0.4 |" in roc


def test_media_are_written_once_when_delivery_is_retried(tensorboard_dir: Path, store: Path,
                                                         tmp_path: Path):
    pytest.importorskip("PIL")
    run = log_every_kind("local", tmp_path)

    class FailsAfterMedia(TensorBoardBackend):
        failures = 1

        def log_media(self, ref, media):
            super().log_media(ref, media)
            if FailsAfterMedia.failures:
                FailsAfterMedia.failures -= 1
                raise OSError("killed after writing")

    with pytest.raises(OSError):
        delivery.deliver(FailsAfterMedia(autolog.api.get_settings()), run.path)
    assert delivery.deliver(make_backend("tensorboard"), run.path)  # another process
    run_dir = tensorboard_run_dir(tensorboard_dir, run.id)
    from tensorboard.backend.event_processing import event_file_loader

    tags = [(value.tag, event.step) for path in sorted(run_dir.glob("events.out.tfevents.*"))
            for event in event_file_loader.LegacyEventFileLoader(str(path)).Load()
            for value in event.summary.value]
    assert sorted(t for t in tags if t[0].startswith(("samples", "weights"))) == \
        [("samples", 0), ("samples", 1), ("samples/1", 1), ("weights", 2)]
