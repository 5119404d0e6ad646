"""Media: images, figures, histograms, tables and texts, written off the caller's thread and
read back from the local store; bad input warns once and keeps the rest of the run."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import autolog
from autolog import AutologWarning
from autolog.journal.files import JOURNAL

PIL = pytest.importorskip("PIL.Image")


def _png(record: autolog.RunRecord, media: autolog.journal.MediaRecord) -> np.ndarray:
    with PIL.open(record.artifact_path(media.path)) as image:
        return np.asarray(image)


def _json(record: autolog.RunRecord, name: str) -> dict:
    return json.loads(record.artifact_path(name).read_text())


def test_images_of_every_accepted_kind_read_back_pixel_for_pixel(tmp_path: Path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (8, 9), dtype=np.uint8)
    rgba = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    unit = rng.random((4, 5))
    chw = torch.from_numpy(rgb.transpose(2, 0, 1).copy())
    path = tmp_path / "picture.png"
    PIL.fromarray(rgb).save(path)
    with autolog.start_run() as run:
        run.log_image("rgb", rgb, step=3)
        run.log_image("grey", grey)
        run.log_image("rgba", rgba)
        run.log_image("unit", unit)
        run.log_image("chw", chw)
        run.log_image("pil", PIL.fromarray(grey))
        run.log_image("file", path)
        rgb[:] = 0  # the copy was taken at the call
        path.unlink()
    record = autolog.get_run(run.id)
    by_key = {m.key: m for m in record.media}
    assert by_key["rgb"].step == 3 and by_key["rgb"].meta["width"] == 30
    original = rng = np.random.default_rng(0)
    original = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert np.array_equal(_png(record, by_key["rgb"]), original)
    assert np.array_equal(_png(record, by_key["grey"]), grey)
    assert np.array_equal(_png(record, by_key["rgba"]), rgba)
    assert np.array_equal(_png(record, by_key["unit"]), np.rint(unit * 255).astype(np.uint8))
    assert np.array_equal(_png(record, by_key["chw"]), original)
    assert np.array_equal(_png(record, by_key["pil"]), grey)
    assert np.array_equal(_png(record, by_key["file"]), original)
    assert by_key["file"].path.endswith(".png") and by_key["file"].meta["format"] == "png"
    assert all(m.kind == "image" and m.path.startswith("media/image/") for m in record.media)


def test_steps_count_per_key_and_a_step_logged_twice_keeps_both(tmp_path: Path):
    image = np.zeros((2, 2), dtype=np.uint8)
    with autolog.start_run() as run:
        for _ in range(3):
            run.log_image("a", image)
        run.log_image("b", image)
        run.log_image("b", image, step=0)
    record = autolog.get_run(run.id)
    assert [m.step for m in record.media_for("a")] == [0, 1, 2]
    assert [m.step for m in record.media_for("b")] == [0, 0]
    assert len({m.path for m in record.media}) == 5


def test_a_matplotlib_figure_is_drawn_as_it_was_when_logged():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.plot([0, 1], [0, 1])
    with autolog.start_run() as run:
        run.log_figure("curve", fig, step=1)
        run.log_image("as_image", fig)
        ax.set_facecolor("black")  # after logging: not in the stored picture
    plt.close(fig)
    record = autolog.get_run(run.id)
    curve, as_image = record.media_for("curve")[0], record.media_for("as_image")[0]
    assert (curve.kind, curve.step, curve.meta["width"], curve.meta["height"]) == \
        ("image", 1, 100, 75)
    pixels = _png(record, curve)
    assert pixels.shape == (75, 100, 4) and pixels[37, 50, :3].min() > 200  # white, not black
    assert np.array_equal(pixels, _png(record, as_image))


def test_histograms_bin_values_like_numpy_and_keep_given_bins():
    torch = pytest.importorskip("torch")
    values = np.random.default_rng(1).normal(size=5000)
    with autolog.start_run() as run:
        run.log_histogram("np", values, step=2, bins=16)
        run.log_histogram("torch", torch.from_numpy(values), bins=16)
        run.log_histogram("list", [1, 2, 2, 3, float("nan"), float("inf")], bins=3)
        run.log_histogram("binned", ([1, 4, 2], [0.0, 1.0, 2.0, 3.0]))
    record = autolog.get_run(run.id)
    counts, edges = np.histogram(values, bins=16)
    for key in ("np", "torch"):
        item = record.media_for(key, "histogram")[0]
        data = _json(record, item.path)
        assert data["counts"] == counts.tolist()
        assert np.allclose(data["edges"], edges)
        assert item.meta["count"] == 5000 and item.meta["nan"] == 0
    assert record.media_for("np")[0].step == 2
    small = record.media_for("list")[0]
    assert (small.meta["nan"], small.meta["inf"], small.meta["count"]) == (1, 1, 6)
    assert _json(record, small.path)["counts"] == [1, 2, 1]
    binned = record.media_for("binned")[0]
    assert _json(record, binned.path) == {"counts": [1.0, 4.0, 2.0],
                                          "edges": [0.0, 1.0, 2.0, 3.0]}


def test_a_huge_tensor_is_sampled_before_the_copy():
    values = np.arange(3_000_000, dtype=np.float32)
    with autolog.start_run() as run:
        run.log_histogram("big", values)
    item = autolog.get_run(run.id).media[0]
    assert item.meta["count"] == 3_000_000 and item.meta["sampled"] == 1_000_000


def test_tables_from_rows_columns_arrays_and_dataframes():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", None], "c": [0.5, float("nan")]})
    with autolog.start_run() as run:
        run.log_table("dicts", [{"a": 1, "b": "x"}, {"a": 2, "c": True}])
        run.log_table("rows", [(1, "x"), (2, "y")], columns=["n", "s"])
        run.log_table("columns", {"n": [1, 2], "s": np.array([3.5, 4.5])})
        run.log_table("array", np.eye(2))
        run.log_table("frame", frame)
    record = autolog.get_run(run.id)

    def table(key: str) -> dict:
        return _json(record, record.media_for(key)[0].path)

    assert table("dicts") == {"columns": ["a", "b", "c"],
                              "data": [[1, "x", None], [2, None, True]]}
    assert table("rows") == {"columns": ["n", "s"], "data": [[1, "x"], [2, "y"]]}
    assert table("columns") == {"columns": ["n", "s"], "data": [[1, 3.5], [2, 4.5]]}
    assert table("array") == {"columns": ["0", "1"], "data": [[1.0, 0.0], [0.0, 1.0]]}
    assert table("frame") == {"columns": ["a", "b", "c"], "data": [[1, "x", 0.5], [2, None, None]]}
    assert record.media_for("frame")[0].meta == {"rows": 2, "columns": ["a", "b", "c"]}


def test_texts_and_the_module_level_functions():
    with autolog.start_run() as run:
        autolog.log_text("sample", "généré\nligne 2", step=5)
        autolog.log_image("img", np.ones((2, 2)))
        autolog.log_histogram("h", [1, 2, 3])
        autolog.log_table("t", [[1]])
    record = autolog.get_run(run.id)
    text = record.media_for("sample")[0]
    assert (text.kind, text.step, text.meta) == ("text", 5, {"chars": 14})
    assert record.artifact_path(text.path).read_text(encoding="utf-8") == "généré\nligne 2"
    assert [m.kind for m in record.media] == ["text", "image", "histogram", "table"]


@pytest.mark.parametrize(("call", "message"), [
    (lambda run: run.log_image("bad", np.zeros((2, 3, 5))), "shape .2, 3, 5."),
    (lambda run: run.log_image("bad", np.array([["a"]])), "needs numbers"),
    (lambda run: run.log_image("bad", np.full((2, 2), 300)), "within 0..255"),
    (lambda run: run.log_image("bad", "missing.png"), "cannot read"),
    (lambda run: run.log_figure("bad", np.zeros((2, 2))), "matplotlib figure was expected"),
    (lambda run: run.log_table("bad", 3), "int is not tabular"),
    (lambda run: run.log_table("bad", [1, 2, 3]), "all be dicts or all be sequences"),
    (lambda run: run.log_table("bad", [(1, 2), (3,)]), "needs 2 cells"),
    (lambda run: run.log_table("bad", {"a": [1], "b": [1, 2]}), "same length"),
    (lambda run: run.log_table("bad", np.zeros((2, 2, 2))), "must be 2-D"),
    (lambda run: run.log_histogram("bad", ["a", "b"]), "needs numbers"),
    (lambda run: run.log_histogram("bad", ([1, 2], [0.0, 1.0])), "one more edge"),
    (lambda run: run.log_histogram("bad", [1.0], bins=0), "bins must be"),
    (lambda run: run.log_text("bad", 42), "must be a str"),
])
def test_bad_media_warn_once_and_keep_the_rest_of_the_run(call, message):
    with autolog.start_run() as run:
        run.log_metric("loss", 1.0, step=0)
        with pytest.warns(AutologWarning, match=message):
            call(run)
        call(run)  # once per key: no second warning (filterwarnings=error would raise)
        run.log_image("good", np.zeros((2, 2), dtype=np.uint8))
        run.log_metric("loss", 0.5, step=1)
    record = autolog.get_run(run.id)
    assert record.status == "FINISHED"
    assert [v for _, v, _ in record.history("loss")] == [1.0, 0.5]
    assert [m.key for m in record.media] == ["good"]


def test_a_histogram_of_nans_is_recorded_with_its_count_and_one_warning():
    with autolog.start_run() as run:
        with pytest.warns(AutologWarning, match="all 3 values are NaN or infinite"):
            run.log_histogram("weights", [float("nan")] * 3)
        run.log_histogram("weights", [float("nan")] * 3)
    items = autolog.get_run(run.id).media_for("weights")
    assert [(m.meta["nan"], m.meta["count"]) for m in items] == [(3, 3), (3, 3)]


def test_media_are_written_on_the_writer_thread(monkeypatch: pytest.MonkeyPatch):
    from autolog import png

    threads = []
    encode = png.encode_png

    def spy(pixels, level=6):
        threads.append(threading.current_thread().name)
        return encode(pixels, level)

    monkeypatch.setattr("autolog.media.images.encode_png", spy)
    monkeypatch.setenv("AUTOLOG_FLUSH_INTERVAL", "0.05")
    with autolog.start_run() as run:
        run.log_image("img", np.zeros((4, 4), dtype=np.uint8))
        assert threads == []  # not encoded on this thread
        journal = run.path / JOURNAL
        deadline = time.monotonic() + 10
        while b'"media"' not in journal.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.02)
    assert threads == ["autolog-writer"]


def test_log_artifact_stores_figures_arrays_frames_and_dicts():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pd = pytest.importorskip("pandas")
    fig = plt.figure(figsize=(1, 1))
    with autolog.start_run() as run:
        assert run.log_artifact(fig) == "figure.png"
        assert run.log_artifact(np.arange(3), "weights.npy") == "weights.npy"
        assert run.log_artifact(pd.DataFrame({"a": [1]})) == "table.csv"
        assert run.log_artifact({"a": 1}, "config.json") == "config.json"
        with pytest.warns(AutologWarning, match="a object is not a file"):
            assert run.log_artifact(object()) is None
    plt.close(fig)
    record = autolog.get_run(run.id)
    assert set(record.artifacts) >= {"figure.png", "weights.npy", "table.csv", "config.json"}
    assert record.artifact_path("figure.png").read_bytes().startswith(b"\x89PNG")
    assert np.load(record.artifact_path("weights.npy")).tolist() == [0, 1, 2]
    assert record.artifact_path("table.csv").read_text() == "a\n1\n"


def test_a_deferred_artifact_is_made_on_the_writer_thread_and_a_failing_one_costs_itself(
        caplog):
    """``log_artifact_deferred`` (an integration's chart): ``produce`` runs on the journal
    writer's thread; one that raises is logged and skipped, a bad name is one warning, and the
    rest of the run is whole."""
    threads = []

    def produce() -> bytes:
        threads.append(threading.current_thread().name)
        return b"drawn"

    def fails() -> bytes:
        raise RuntimeError("out of ink")

    with autolog.start_run() as run:
        run.log_artifact_deferred("charts/drawn.bin", produce)
        run.log_artifact_deferred("charts/broken.bin", fails)
        with pytest.warns(AutologWarning, match="must be a relative path inside the run"):
            run.log_artifact_deferred("/elsewhere.bin", produce)
        run.log_metric("after", 1.0)
    # the end is the writer thread's (a run with files to make); reading back before it has
    # written them would make them on this thread
    deadline = time.monotonic() + 10
    while not threads and time.monotonic() < deadline:
        time.sleep(0.02)
    record = autolog.get_run(run.id)
    assert threads == ["autolog-writer"]
    assert "charts/drawn.bin" in record.artifacts and "charts/broken.bin" not in record.artifacts
    assert record.artifact_path("charts/drawn.bin").read_bytes() == b"drawn"
    assert not record.artifact_path("charts/broken.bin").exists()
    assert "charts/broken.bin" in caplog.text and "out of ink" in caplog.text
    assert record.metrics["after"] == 1.0 and record.status == "FINISHED"


@pytest.mark.parametrize("text", ["line 1\nline 2\n", "a one-line summary"])
def test_the_format_1_call_log_text_text_name_still_writes_the_artifact(text):
    with autolog.start_run() as run, pytest.warns(AutologWarning, match="log_text_artifact"):
        run.log_text(text, "notes.txt")
    record = autolog.get_run(run.id)
    assert "notes.txt" in record.artifacts and record.media == []
    assert record.artifact_path("notes.txt").read_text() == text


def test_a_text_value_that_is_not_a_file_name_is_text_media():
    with autolog.start_run() as run:
        run.log_text("sample", "once upon a time")
        run.log_text("notes.md", "a key that looks like a file")
    record = autolog.get_run(run.id)
    assert sorted(m.key for m in record.media) == ["notes.md", "sample"]


def test_a_version_1_journal_reads_as_before(store: Path):
    run_dir = store / ("ab" * 16)
    run_dir.mkdir(parents=True)
    lines = [{"t": "start", "v": 1, "id": "ab" * 16, "name": "old", "project": "p",
              "parent": None, "time": 1, "pid": 1, "host": "h", "backends": ["local"]},
             {"t": "params", "d": {"lr": 0.1}},
             {"t": "metrics", "d": {"loss": [[0], [0.5], [1]]}},
             {"t": "end", "status": "FINISHED", "time": 2}]
    (run_dir / JOURNAL).write_text("".join(json.dumps(line) + "\n" for line in lines))
    meta = {**lines[0], "status": "FINISHED", "start_time": 1, "end_time": 2}
    (run_dir / "meta.json").write_text(json.dumps(meta))
    record = autolog.get_run("ab" * 16)
    assert (record.status, record.params, record.metrics, record.media) == \
        ("FINISHED", {"lr": 0.1}, {"loss": 0.5}, [])
    assert autolog.journal.FORMAT_VERSION == 2


def test_a_palette_png_decodes_to_its_pixels_and_palette():
    image_module = pytest.importorskip("PIL.Image")
    import io

    from autolog.png import encode_palette_png

    width, height = 7, 5
    indices = bytes((x * y) % 3 for y in range(height) for x in range(width))
    palette = bytes([255, 255, 255, 0, 0, 0, 31, 119, 180])
    decoded = image_module.open(io.BytesIO(encode_palette_png(indices, width, height, palette)))
    assert decoded.mode == "P" and decoded.size == (width, height)
    assert decoded.tobytes() == indices
    assert bytes(decoded.getpalette()[:9]) == palette
    with pytest.raises(ValueError, match="34 pixels for a 7x5 image"):
        encode_palette_png(indices[:-1], width, height, palette)
    with pytest.raises(ValueError, match="1 to 256 RGB triples"):
        encode_palette_png(indices, width, height, palette[:-1])
