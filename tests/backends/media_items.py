"""One run holding every media kind, logged the same way for each backend's media test."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import autolog

PIXELS = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
MATRIX = {"labels": ["cat", "dog"], "matrix": [[5, 1], [2, 7]]}
ROC = {"fpr": [0.0, 0.0, 0.5, 1.0], "tpr": [0.0, 0.5, 1.0, 1.0],
       "thresholds": [None, 0.9, 0.4, 0.1], "auc": 0.875, "positive": "dog"}
PR = {"precision": [1.0, 1.0, 0.8, 0.5], "recall": [0.0, 0.5, 1.0, 1.0],
      "thresholds": [None, 0.9, 0.4, 0.1], "average_precision": 0.9, "positive": "dog"}
SCATTER = {"true": [1.0, 2.0, 3.0], "predicted": [1.1, 1.9, 3.2], "points": 3}
#: bins of unequal widths, given already binned
COUNTS, EDGES = [3, 0, 5], [-1.0, 0.0, 0.5, 2.0]
ROWS = [{"x": 1, "y": "a|b"}, {"x": 2, "y": "c"}]
TEXT = "once upon a time\nthere was a run"


def log_every_kind(backend: str, tmp_path: Path) -> autolog.Run:
    """Images (two steps, a step logged twice, a WebP file), two histograms (values; counts and
    uneven edges), a table, a text and four evaluation plots, and one metric."""
    from PIL import Image

    webp = tmp_path / "sample.webp"
    Image.fromarray(PIXELS).save(webp, lossless=True)
    autolog.enable(backend=backend)
    with autolog.start_run("media") as run:
        run.log_image("samples", PIXELS, step=0)
        run.log_image("samples", PIXELS[::-1], step=1)
        run.log_image("samples", PIXELS[:, ::-1], step=1)  # a second image at step 1
        run.log_image("file", webp, step=0)
        run.log_histogram("weights", np.linspace(0, 1, 101), step=2, bins=4)
        run.log_histogram("binned", (COUNTS, EDGES), step=0)
        run.log_table("predictions", ROWS)
        run.log_text("generated", TEXT, step=3)
        run.log_plot("training_confusion_matrix", "confusion_matrix", MATRIX)
        run.log_plot("training_roc_curve", "roc_curve", ROC)
        run.log_plot("training_precision_recall_curve", "precision_recall_curve", PR)
        run.log_plot("training_predicted_vs_true", "predicted_vs_true", SCATTER)
        run.log_metric("loss", 0.5, step=0)
    assert autolog.flush(60)
    return run


def local_bytes(run: autolog.Run, key: str) -> list[bytes]:
    """The files of ``key``'s items in the local store, in logging order (a plot's: its
    drawing)."""
    record = autolog.get_run(run.id)
    return [record.artifact_path(item.image or item.path).read_bytes()
            for item in record.media_for(key)]
