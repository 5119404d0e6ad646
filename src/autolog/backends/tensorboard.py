"""The ``tensorboard`` backend: runs written as TensorBoard event files.

``AUTOLOG_BACKEND=local,tensorboard``; ``tensorboard --logdir runs`` shows them. The mapping
(``docs/backends/tensorboard.md``):

- one directory per run, ``AUTOLOG_TENSORBOARD_DIR/<project>/<run name>-<id[:8]>`` (default root
  ``./runs``, TensorBoard's own convention); a child run's directory is inside its parent's;
- metrics are scalar summaries at their step with autolog's wall time, stored as float64
  tensors (``simple_value`` is float32 and would change the numbers);
- tags are text summaries ``tags/<key>``; text artifacts (``.txt``/``.md``, the Keras model
  summary) are text summaries ``artifacts/<path>``; a model is a text summary ``models/<name>``
  holding its spec;
- params and the run's status go to the HParams plugin (a session start and end info written
  when the run ends, with every param), so the HParams table and parallel coordinates list the
  run with the last value of each metric;
- media at their step and time: images as image summaries (PNG, JPEG, GIF and BMP as they are,
  other formats converted to PNG), histograms as histogram summaries of the ``histograms`` plugin
  (``[left, right, count]`` rows: the exact edges and counts, which the Distributions dashboard
  reads too), texts as text summaries, tables as text summaries holding a markdown table (the
  first 1,000 rows), evaluation plots as their drawing (an image summary) and their data as a
  markdown table ``<key>/data``.

The events are built with TensorBoard's own protocol buffers (``tensorboard.compat.proto``, no
TensorFlow) and framed as TFRecords with the ``crc32c`` C extension; the package is imported on
the delivery worker only.

Re-delivery never doubles a point: each delivery session (a process delivering the run: the
training process, then maybe ``autolog sync``) appends to its own event file, and the run's
delivery state keeps each file's size after the last acknowledged call. A call that failed or
was killed midway left bytes past that size: they are cut before the batch is written again.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import socket
import struct
import time
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from . import _media
from ._files import append_once, import_sdk, lineage, missing_sdk, run_dirname, safe_name
from .base import Backend, Batch, Media, RunRef

__all__ = ["TensorBoardBackend"]

TEXT_SUFFIXES = (".txt", ".md")
MAX_TEXT = 64 * 1024  # a text artifact larger than this is not copied into the event file
MAX_HPARAM = 1024  # characters of a param value kept for the HParams table
#: formats TensorBoard's image dashboard serves (its ``img_mime_type_detector``)
SHOWN_FORMATS = {"png", "jpeg", "jpg", "gif", "bmp"}
STATUS = {"FINISHED": "STATUS_SUCCESS", "FAILED": "STATUS_FAILURE", "KILLED": "STATUS_UNKNOWN",
          "CRASHED": "STATUS_FAILURE"}

_counter = itertools.count()


class _Protos:
    """TensorBoard's protocol buffers and the CRC the TFRecord framing needs."""

    def __init__(self) -> None:
        sdk = import_sdk("tensorboard.compat.proto.event_pb2", "tensorboard", "tensorboard")
        from google.protobuf import struct_pb2
        from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorboard.plugins.histogram import metadata as histogram_metadata
        from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
        from tensorboard.plugins.hparams import metadata as hparams_metadata
        from tensorboard.plugins.image import metadata as image_metadata
        from tensorboard.plugins.text import metadata as text_metadata

        try:
            from crc32c import crc32c
        except ImportError as exc:
            raise missing_sdk("tensorboard", "tensorboard", exc) from exc
        self.Event = sdk.Event
        self.summary, self.tensor, self.types = summary_pb2, tensor_pb2, types_pb2
        self.scalar_shape = tensor_shape_pb2.TensorShapeProto()
        self.struct, self.api, self.plugin_data = struct_pb2, api_pb2, plugin_data_pb2
        self.hparams_metadata, self.text_metadata = hparams_metadata, text_metadata
        self.histogram_metadata, self.image_metadata = histogram_metadata, image_metadata
        self.shape = tensor_shape_pb2.TensorShapeProto
        self.crc32c = crc32c
        scalars = summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
        self.scalar_metadata = summary_pb2.SummaryMetadata(plugin_data=scalars)

    def record(self, event: Any) -> bytes:
        """One TFRecord: length, masked CRC of the length, data, masked CRC of the data."""
        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        return (header + struct.pack("<I", self._masked(header)) + data
                + struct.pack("<I", self._masked(data)))

    def _masked(self, data: bytes) -> int:
        crc = self.crc32c(data)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    def scalar(self, tag: str, value: float, step: int, wall_time: float) -> Any:
        tensor = self.tensor.TensorProto(dtype=self.types.DT_DOUBLE, double_val=[value],
                                         tensor_shape=self.scalar_shape)
        value_pb = self.summary.Summary.Value(tag=tag, tensor=tensor,
                                              metadata=self.scalar_metadata)
        return self.Event(wall_time=wall_time, step=step,
                          summary=self.summary.Summary(value=[value_pb]))

    def text(self, tag: str, text: str, wall_time: float, step: int = 0) -> Any:
        tensor = self.tensor.TensorProto(dtype=self.types.DT_STRING,
                                         string_val=[text.encode("utf-8")],
                                         tensor_shape=self.scalar_shape)
        metadata = self.text_metadata.create_summary_metadata(display_name=tag, description="")
        value_pb = self.summary.Summary.Value(tag=tag, tensor=tensor, metadata=metadata)
        return self.Event(wall_time=wall_time, step=step,
                          summary=self.summary.Summary(value=[value_pb]))

    def image(self, tag: str, data: bytes, width: int, height: int, step: int,
              wall_time: float) -> Any:
        """The image plugin's tensor: width, height, then the encoded image."""
        tensor = self.tensor.TensorProto(dtype=self.types.DT_STRING,
                                         string_val=[b"%d" % width, b"%d" % height, data],
                                         tensor_shape=self._dims(3))
        metadata = self.image_metadata.create_summary_metadata(display_name=tag, description="")
        return self._event(tag, tensor, metadata, step, wall_time)

    def histogram(self, tag: str, counts: list[float], edges: list[float], step: int,
                  wall_time: float) -> Any:
        """The histograms plugin's tensor: one ``[left, right, count]`` row per bin, float64."""
        rows = [(edges[i], edges[i + 1], float(c)) for i, c in enumerate(counts)]
        content = struct.pack(f"<{3 * len(rows)}d", *(x for row in rows for x in row))
        tensor = self.tensor.TensorProto(dtype=self.types.DT_DOUBLE, tensor_content=content,
                                         tensor_shape=self._dims(len(rows), 3))
        metadata = self.histogram_metadata.create_summary_metadata(display_name=tag,
                                                                   description="")
        return self._event(tag, tensor, metadata, step, wall_time)

    def _dims(self, *sizes: int) -> Any:
        return self.shape(dim=[self.shape.Dim(size=size) for size in sizes])

    def _event(self, tag: str, tensor: Any, metadata: Any, step: int, wall_time: float) -> Any:
        value_pb = self.summary.Summary.Value(tag=tag, tensor=tensor, metadata=metadata)
        return self.Event(wall_time=wall_time, step=step,
                          summary=self.summary.Summary(value=[value_pb]))

    def hparams(self, params: dict[str, Any], status: str, start: float, end: float) -> list[Any]:
        """The HParams plugin's session start and end infos for one run."""
        hparams = {key: self._hparam_value(value) for key, value in params.items()}
        start_info = self.plugin_data.SessionStartInfo(hparams=hparams, start_time_secs=start)
        end_info = self.plugin_data.SessionEndInfo(status=self.api.Status.Value(STATUS[status]),
                                                   end_time_secs=end)
        meta = self.hparams_metadata
        return [self._plugin_event(meta.SESSION_START_INFO_TAG,
                                   self.plugin_data.HParamsPluginData(
                                       session_start_info=start_info,
                                       version=meta.PLUGIN_DATA_VERSION), end),
                self._plugin_event(meta.SESSION_END_INFO_TAG,
                                   self.plugin_data.HParamsPluginData(
                                       session_end_info=end_info,
                                       version=meta.PLUGIN_DATA_VERSION), end)]

    def _hparam_value(self, value: Any) -> Any:
        if isinstance(value, bool):
            return self.struct.Value(bool_value=value)
        if isinstance(value, (int, float)):
            return self.struct.Value(number_value=value)
        return self.struct.Value(string_value=str(value)[:MAX_HPARAM])

    def _plugin_event(self, tag: str, data: Any, wall_time: float) -> Any:
        metadata = self.hparams_metadata.create_summary_metadata(data)
        value_pb = self.summary.Summary.Value(tag=tag, metadata=metadata,
                                              tensor=self.hparams_metadata.NULL_TENSOR)
        return self.Event(wall_time=wall_time, summary=self.summary.Summary(value=[value_pb]))


class TensorBoardBackend(Backend):
    name = "tensorboard"
    distributions = ("tensorboard",)

    def __init__(self, settings: Any):
        super().__init__(settings)
        self.root = Path(os.path.expanduser(settings.tensorboard_dir)).absolute()
        self._pb: _Protos | None = None

    def cursor_key(self) -> str:
        """``tensorboard-<8 hex>`` of the root directory: each root keeps its own cursors."""
        return "tensorboard-" + hashlib.sha256(str(self.root).encode()).hexdigest()[:8]

    @property
    def pb(self) -> _Protos:
        if self._pb is None:
            self._pb = _Protos()
        return self._pb

    def run_dir(self, run: RunRef) -> Path:
        """``<root>/<project>/<top run>-<id8>/<child>-<id8>/...``, from the local store alone."""
        chain = lineage(run)
        project = safe_name(str(chain[0].get("project") or "default"))
        return self.root.joinpath(project, *(run_dirname(start) for start in chain))

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, run: RunRef) -> None:
        """Open this delivery session's event file; cut what an unacknowledged call left."""
        self.pb  # noqa: B018 - the SDK check: BackendUnavailable before anything is written
        state = run.state
        run_dir = self.run_dir(run)
        sizes: dict[str, int] = state.setdefault("files", {})
        for name, size in sizes.items():
            _truncate(run_dir / name, size)
        name = (f"events.out.tfevents.{int(time.time()):010d}.{safe_name(socket.gethostname())}"
                f".{os.getpid()}.{next(_counter)}")
        state.update(dir=str(run_dir), file=name)
        sizes[name] = 0

    def log_batch(self, run: RunRef, batch: Batch) -> None:
        pb = self.pb
        events = [pb.scalar(m.key, m.value, m.step, m.timestamp / 1000) for m in batch.metrics]
        start = run.start_time / 1000
        events += [pb.text(f"tags/{key}", value, start) for key, value in batch.tags.items()]
        if batch.params:
            params = run.state.setdefault("params", {})
            params.update({key: _json_scalar(value) for key, value in batch.params.items()})
        self._write(run, events)

    def end_run(self, run: RunRef, status: str, end_time: int) -> None:
        params = run.state.get("params", {})
        self._write(run, self.pb.hparams(params, status, run.start_time / 1000, end_time / 1000))

    # -- files ---------------------------------------------------------------------------------

    def log_artifact(self, run: RunRef, local_path: Path, name: str) -> None:
        files = [local_path] if local_path.is_file() else sorted(local_path.rglob("*"))
        events = []
        for path in files:
            if path.suffix in TEXT_SUFFIXES and path.is_file() and path.stat().st_size <= MAX_TEXT:
                relative = name if path == local_path else f"{name}/{path.relative_to(local_path)}"
                text = path.read_text(encoding="utf-8", errors="replace")
                events.append(self.pb.text(f"artifacts/{relative}", _preformatted(text),
                                           path.stat().st_mtime))
        if events:
            self._write(run, events)

    def log_model(self, run: RunRef, local_path: Path, name: str, spec: dict[str, Any]) -> None:
        rows = "\n".join(f"| {key} | {value} |" for key, value in spec.items())
        text = f"| | |\n| --- | --- |\n{rows}"
        self._write(run, [self.pb.text(f"models/{name}", text, run.start_time / 1000)])

    def log_media(self, run: RunRef, media: Media) -> None:
        if _media.gone(run, media, "TensorBoard"):
            return
        if media.kind not in ("image", "histogram", "text", "table", "plot"):
            super().log_media(run, media)  # a later kind: its files, as artifacts
            return
        self._write(run, self._media_events(media))

    def _media_events(self, media: Media) -> list[Any]:
        # TensorBoard shows one summary per tag and step: an item logged again at its step
        # (the local store's 3-1.png) is the tag <key>/<n>
        n = _media.repeat(media)
        pb, key, step, wall = self.pb, f"{media.key}/{n}" if n else media.key, media.step, \
            media.timestamp / 1000
        if media.kind in ("image", "plot"):
            path, meta = ((media.path, media.meta) if media.kind == "image" else
                          (media.image, {"format": "png"}))
            image = None if path is None or not path.exists() else _image(path, meta)
            events = [] if image is None else [pb.image(key, *image, step, wall)]
            if media.kind == "plot":
                table = _media.markdown_table(*_media.table_of(media))
                events.append(pb.text(f"{key}/data", f"{_media.plot_caption(media)}\n\n{table}",
                                      wall, step))
            return events
        if media.kind == "histogram":
            data = _media.load(media)
            return [pb.histogram(key, data["counts"], data["edges"], step, wall)]
        if media.kind == "table":
            table = _media.markdown_table(*_media.table_of(media), media.meta.get("total_rows"))
            return [pb.text(key, table, wall, step)]
        return [pb.text(key, media.path.read_text(encoding="utf-8"), wall, step)]

    def _write(self, run: RunRef, events: list[Any]) -> None:
        if not events:
            return
        state = run.state
        sizes, name = state["files"], state["file"]
        if sizes.get(name, 0) == 0:
            version = self.pb.Event(wall_time=run.start_time / 1000, file_version="brain.Event:2")
            events = [version, *events]
        data = b"".join(self.pb.record(event) for event in events)
        append_once(Path(state["dir"]) / name, data, sizes, name)


def _truncate(path: Path, size: int) -> None:
    try:
        if path.stat().st_size > size:
            with open(path, "r+b") as f:
                f.truncate(size)
    except FileNotFoundError:
        pass


def _image(path: Path, meta: dict[str, Any]) -> tuple[bytes, int, int] | None:
    """``(encoded image, width, height)`` in a format TensorBoard shows, or None."""
    fmt = str(meta.get("format") or path.suffix.lstrip(".")).lower()
    data = path.read_bytes() if fmt in SHOWN_FORMATS else _media.convert_to_png(path)
    if data is None:
        return None
    width, height = meta.get("width"), meta.get("height")
    if not (isinstance(width, int) and isinstance(height, int)):
        width, height = _png_size(data)
    return data, width, height


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG header (0, 0 for another format: TensorBoard needs them
    only as labels)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    return 0, 0


def _json_scalar(value: Any) -> Any:
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def _preformatted(text: str) -> str:
    """Markdown that TensorBoard shows as the text itself (monospace, line breaks kept)."""
    return "\n".join("    " + line for line in text.splitlines())


@hookimpl
def autolog_register_backends(register: Any) -> None:
    register(TensorBoardBackend)
