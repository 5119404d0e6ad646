"""An example third-party autolog plugin: the ``csv`` backend.

Each run becomes a directory under ``AUTOLOG_CSV_DIR`` (default ``./autolog-csv``) holding
``params.json``, ``tags.json``, ``metrics.csv`` (key, step, value, timestamp) and ``status``.
Install it (``pip install ./examples/autolog-csv-backend``) and use ``AUTOLOG_BACKEND=local,csv``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from autolog import hookimpl
from autolog.backends.base import Backend


class CsvBackend(Backend):
    name = "csv"
    variables = ("AUTOLOG_CSV_DIR",)  # its own setting: autolog does not take it for a typo

    def _dir(self, run):
        path = Path(os.environ.get("AUTOLOG_CSV_DIR", "autolog-csv")) / run.id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start_run(self, run):
        (self._dir(run) / "run.json").write_text(json.dumps(
            {"id": run.id, "name": run.name, "project": run.project}))

    def log_batch(self, run, batch):
        path = self._dir(run)
        for name, items in (("params", batch.params), ("tags", batch.tags)):
            if items:
                file = path / f"{name}.json"
                merged = json.loads(file.read_text()) if file.exists() else {}
                file.write_text(json.dumps({**merged, **items}))
        # A batch can be retried after a crash: journal_range makes the append idempotent.
        done = path / "delivered-offset"
        _, end = batch.journal_range
        if done.exists() and int(done.read_text()) >= end:
            return
        if batch.metrics:
            with open(path / "metrics.csv", "a", newline="") as f:
                csv.writer(f).writerows(
                    (m.key, m.step, m.value, m.timestamp) for m in batch.metrics)
        done.write_text(str(end))

    def end_run(self, run, status, end_time):
        (self._dir(run) / "status").write_text(status)


@hookimpl
def autolog_register_backends(register):
    register(CsvBackend)
