"""Reading W&B's offline run files (``run-<id>.wandb``) back, for tests.

wandb 0.31 writes the file from its Go core and ships no Python reader, so this is one. The
file is a LevelDB-style log of protobuf records (``wandb.proto.wandb_internal_pb2.Record``):

- a 7-byte file header: the ident ``:W&B``, the magic ``0xBEE1`` (little endian) and version 0;
- then 32 KiB blocks (the header takes the first 7 bytes of the first one); each block holds
  chunks with a 7-byte header: checksum (4 bytes), length (2), type (1: FULL, 2: FIRST,
  3: MIDDLE, 4: LAST), little endian; a record is one FULL chunk or FIRST, MIDDLE..., LAST;
- fewer than 7 bytes left at the end of a block are zero padding;
- the checksum is zlib's CRC-32 (IEEE, not LevelDB's masked CRC-32C) of the type byte followed
  by the chunk's data: W&B's format, checked on every chunk.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["WandbRun", "find_run_file", "iter_records", "read_run"]

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32 * 1024
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class CorruptFile(ValueError):
    pass


def iter_chunks(data: bytes) -> Iterator[tuple[int, bytes]]:
    """``(type, payload)`` of each chunk, checksums verified. A file shorter than its header
    (created, not yet written: W&B's service writes it on its own) holds no chunk yet."""
    if len(data) < len(HEADER) and HEADER.startswith(data):
        return
    if not data.startswith(HEADER):
        raise CorruptFile(f"not a W&B run file: header {data[:7]!r}")
    pos = len(HEADER)
    while pos + CHUNK_HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < CHUNK_HEADER:
            pos += left_in_block  # trailer padding
            continue
        checksum, length, kind = struct.unpack_from("<IHB", data, pos)
        if checksum == 0 and length == 0 and kind == 0:
            pos += left_in_block  # a zero-filled rest of block (preallocated or padding)
            continue
        payload = data[pos + CHUNK_HEADER:pos + CHUNK_HEADER + length]
        if len(payload) < length:
            return  # a chunk still being written
        if zlib.crc32(bytes([kind]) + payload) & 0xFFFFFFFF != checksum:
            raise CorruptFile(f"bad checksum for the chunk at byte {pos}")
        yield kind, payload
        pos += CHUNK_HEADER + length


def iter_records(path: str | Path) -> Iterator[Any]:
    """Every ``Record`` of the file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    parts: list[bytes] = []
    for kind, payload in iter_chunks(Path(path).read_bytes()):
        if kind == FULL:
            parts = [payload]
        elif kind == FIRST:
            parts = [payload]
            continue
        elif kind == MIDDLE:
            parts.append(payload)
            continue
        elif kind == LAST:
            parts.append(payload)
        else:
            raise CorruptFile(f"unknown chunk type {kind}")
        record = pb.Record()
        record.ParseFromString(b"".join(parts))
        parts = []
        yield record


def _items(items: Any) -> dict[str, Any]:
    """Protobuf ``*Item`` lists (key or nested_key, value_json) as a dict."""
    out = {}
    for item in items:
        key = item.key or "/".join(item.nested_key)
        out[key] = json.loads(item.value_json)
    return out


class WandbRun:
    """What an offline run file says about its run."""

    def __init__(self) -> None:
        self.run: Any = None  # the last RunRecord (id, project, display_name, ...)
        self.config: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []  # one dict per history row, "_step" included
        self.summary: dict[str, Any] = {}
        self.artifacts: list[Any] = []  # ArtifactRecord
        self.metric_defs: list[Any] = []  # MetricRecord
        self.exit_code: int | None = None
        self.records: list[Any] = []

    def metric(self, key: str, step_key: str = "_step") -> list[tuple[Any, Any]]:
        """``(step, value)`` for each history row holding ``key``."""
        return [(row.get(step_key), row[key]) for row in self.history if key in row]


def read_run(path: str | Path) -> WandbRun:
    out = WandbRun()
    for record in iter_records(path):
        out.records.append(record)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out.run = record.run
            out.config.update(_config(record.run.config.update))
        elif kind == "config":
            out.config.update(_config(record.config.update))
            for item in record.config.remove:
                out.config.pop(item.key, None)
        elif kind == "history":
            row = _items(record.history.item)
            if record.history.HasField("step") and "_step" not in row:
                row["_step"] = record.history.step.num
            out.history.append(row)
        elif kind == "summary":
            out.summary.update(_items(record.summary.update))
            for item in record.summary.remove:
                out.summary.pop(item.key, None)
        elif kind == "artifact":
            out.artifacts.append(record.artifact)
        elif kind == "metric":
            out.metric_defs.append(record.metric)
        elif kind == "exit":
            out.exit_code = record.exit.exit_code
    return out


def _config(items: Any) -> dict[str, Any]:
    """Config values are stored as ``{"value": ..., "desc": ...}``-less JSON; drop W&B's own."""
    values = _items(items)
    values.pop("_wandb", None)
    return values


def find_run_file(wandb_dir: str | Path, run_id: str) -> Path:
    """The newest ``run-<id>.wandb`` under ``wandb_dir`` (W&B adds a ``wandb/`` level): the
    one of the latest run folder, ``offline-run-<YYYYmmdd_HHMMSS>-<id>[-<n>]`` (a run resumed
    in the same second gets ``-1``, ``-2``...). Not the latest written: W&B's service may still
    write to an earlier file after the next one is made."""
    found = sorted(Path(wandb_dir).rglob(f"run-{run_id}.wandb"), key=_started)
    if not found:
        raise FileNotFoundError(f"no run-{run_id}.wandb under {wandb_dir}")
    return found[-1]


def _started(path: Path) -> tuple[str, int, float]:
    match = re.fullmatch(r".*-run-(\d{8}_\d{6})-.*?(?:-(\d+))?", path.parent.name)
    if match is None:
        return "", 0, path.stat().st_mtime
    return match[1], int(match[2] or 0), path.stat().st_mtime
