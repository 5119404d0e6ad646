"""Read back what the tensorboard, dvclive, aim, clearml and comet backends wrote, each with the
tracker's own reader where it has one, into a :class:`Recorded` in autolog's terms.

Each reader undoes only the documented mapping of its backend (Aim's ``__system__`` names,
ClearML's title/series, TensorBoard's ``tags/`` text summaries...).
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Recorded:
    """A run as any backend holds it, in autolog's terms."""

    name: str | None
    status: str | None
    params: dict[str, str]  # values as text: the one form every backend keeps
    tags: dict[str, str]
    metrics: dict[str, list[tuple[int, float]]]  # (step, value) in step order
    artifacts: set[str] = field(default_factory=set)  # file paths under the run
    times: dict[str, list[int]] = field(default_factory=dict)  # ms, where the backend keeps them


def text_params(params: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in params.items()}


def same_points(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> bool:
    """Equal point by point, NaN equal to NaN."""
    return len(a) == len(b) and all(
        sa == sb and (va == vb or (math.isnan(va) and math.isnan(vb)))
        for (sa, va), (sb, vb) in zip(a, b, strict=True))


# -- TensorBoard: TensorBoard's own event reader ------------------------------------------------

TB_STATUS = {"STATUS_SUCCESS": "FINISHED", "STATUS_FAILURE": "FAILED", "STATUS_UNKNOWN": "KILLED"}


def tensorboard_accumulator(run_dir: Path) -> Any:
    from tensorboard.backend.event_processing import plugin_event_accumulator

    accumulator = plugin_event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={plugin_event_accumulator.TENSORS: 0})
    accumulator.Reload()
    return accumulator


def read_tensorboard(run_dir: Path) -> Recorded:
    """A run directory read with ``plugin_event_accumulator.EventAccumulator``."""
    from tensorboard.plugins.hparams import metadata as hparams_metadata
    from tensorboard.util import tensor_util

    acc = tensorboard_accumulator(run_dir)
    tags = acc.Tags()["tensors"]
    scalars, texts = set(_content(acc, "scalars")), set(_content(acc, "text"))

    def text(tag: str) -> str:
        return tensor_util.make_ndarray(acc.Tensors(tag)[-1].tensor_proto).item().decode()

    metrics = {tag: sorted((e.step, tensor_util.make_ndarray(e.tensor_proto).item())
                           for e in acc.Tensors(tag)) for tag in tags if tag in scalars}
    times = {tag: [round(e.wall_time * 1000) for e in acc.Tensors(tag)] for tag in metrics}
    hparams = _content(acc, "hparams")
    params, status = {}, None
    if hparams:
        start = hparams_metadata.parse_session_start_info_plugin_data(
            hparams[hparams_metadata.SESSION_START_INFO_TAG])
        params = {key: _hparam_text(value) for key, value in start.hparams.items()}
        end = hparams_metadata.parse_session_end_info_plugin_data(
            hparams[hparams_metadata.SESSION_END_INFO_TAG])
        from tensorboard.plugins.hparams import api_pb2

        status = TB_STATUS[api_pb2.Status.Name(end.status)]
    return Recorded(
        name=run_dir.name.rsplit("-", 1)[0], status=status, params=params,
        tags={t[5:]: text(t) for t in texts if t.startswith("tags/")},
        metrics=metrics, times=times,
        artifacts={t[10:] for t in texts if t.startswith("artifacts/")})


def _content(accumulator: Any, plugin: str) -> dict[str, bytes]:
    try:
        return dict(accumulator.PluginTagToContent(plugin))
    except KeyError:  # nothing of that plugin in the run
        return {}


def _hparam_text(value: Any) -> str:
    kind = value.WhichOneof("kind")
    if kind == "bool_value":
        return str(value.bool_value)
    if kind == "number_value":  # HParams keeps numbers as doubles: 2 comes back 2.0
        number = value.number_value
        return str(int(number)) if number.is_integer() else str(number)
    return value.string_value


def tensorboard_context(logdir: Path) -> Any:
    """What TensorBoard's server hands its plugins for ``--logdir logdir``: a multiplexer over
    every run below it and the data provider the dashboards read."""
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin

    mux = plugin_event_multiplexer.EventMultiplexer(
        size_guidance={"tensors": 0, "images": 0})  # every event, not a sample
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
    return base_plugin.TBContext(logdir=str(logdir), multiplexer=mux, data_provider=provider)


def tensorboard_run_dir(root: Path, run_id: str) -> Path:
    [found] = [p for p in root.rglob(f"*-{run_id[:8]}") if p.is_dir()]
    return found


# -- DVCLive: DVCLive's own readers, DVC's where a repository is set up --------------------------

def read_dvclive(out: Path) -> Recorded:
    """The files of one DVCLive directory (a run), read with ``dvclive.utils``."""
    from types import SimpleNamespace

    import pytest

    yaml = pytest.importorskip("yaml")
    parse_metrics = pytest.importorskip("dvclive.utils").parse_metrics  # the reader under test

    live = SimpleNamespace(plots_dir=str(out / "plots"), metrics_file=str(out / "metrics.json"))
    history, _ = parse_metrics(live)  # what DVCLive's own tests read back
    metrics: dict[str, list[tuple[int, float]]] = {}
    times: dict[str, list[int]] = {}
    base = out / "plots" / "metrics"
    for path in sorted(base.rglob("*.tsv")):
        key = path.relative_to(base).with_suffix("").as_posix()
        column = path.stem
        rows = history[str(path)]
        metrics[key] = sorted((int(r["step"]), float(r[column])) for r in rows)
        times[key] = [int(r["timestamp"]) for r in rows]
    params_file = out / "params.yaml"
    params = yaml.safe_load(params_file.read_text()) if params_file.exists() else {}
    return Recorded(name=None, status=None, params=text_params(params or {}), tags={},
                    metrics=metrics, times=times)


def dvc_show(repo_root: Path) -> dict[str, Any]:
    """What DVC itself reads in the workspace: ``dvc metrics/params/plots show``."""
    from dvc.repo import Repo

    with Repo(str(repo_root)) as repo:
        return {"metrics": repo.metrics.show(), "params": repo.params.show(),
                "plots": repo.plots.show()}


# -- Aim: Aim's own SDK ---------------------------------------------------------------------------

def aim_runs(repo_path: Path) -> list[Any]:
    """Every run of the repository, indexed first as ``aim up`` does, then ``iter_runs()``."""
    from aim import Repo
    from aim.sdk.index_manager import RepoIndexManager

    repo = Repo.from_path(str(repo_path))
    manager = RepoIndexManager.get_index_manager(repo)
    for run_hash in repo.list_all_runs():
        manager.index(run_hash)
    return list(repo.iter_runs())


def _aim_key(name: str, context: dict[str, Any]) -> str:
    from autolog.backends.aim import AIM_SYSTEM, GPU_NAMES, SYSTEM_NAMES

    if not name.startswith(AIM_SYSTEM):
        return name
    reading = name[len(AIM_SYSTEM):]
    if "gpu" in context:
        back = {v: k for k, v in GPU_NAMES.items()}
        rest = back.get(reading, reading.removeprefix("gpu_"))
        return f"system/gpu/{context['gpu']}/{rest}"
    back = {v: k for k, v in SYSTEM_NAMES.items()}
    return "system/" + back.get(reading, reading)


def read_aim(run: Any) -> Recorded:
    metrics, times = {}, {}
    for seq in run.metrics():
        key = _aim_key(seq.name, seq.context.to_dict())
        steps, (values, stamps) = seq.data.view(["val", "time"]).items_list()
        metrics[key] = sorted(zip(steps, values, strict=True))
        times[key] = [round(t * 1000) for _, t in sorted(zip(steps, stamps, strict=True))]
    info = run.get("autolog") or {}
    return Recorded(name=run.name, status=info.get("status"),
                    params=text_params(run.get("hparams") or {}), tags=dict(run.get("tags") or {}),
                    metrics=metrics, times=times)


def aim_run_for(runs: list[Any], run_id: str) -> Any:
    [found] = [r for r in runs if (r.get("autolog") or {}).get("run_id") == run_id]
    return found


# -- ClearML: the offline session archive ---------------------------------------------------------

def _clearml_key(title: str, series: str) -> str:
    if title == ":monitor:machine":
        return "system/" + series
    if title == ":monitor:gpu":
        _, label, reading = series.split("_", 2)
        return f"system/gpu/{label}/{reading}"
    return title if title == series else f"{title}/{series}"


def read_clearml(archive: Path) -> Recorded:
    """An offline session zip, as ``Task.import_offline_session`` opens it."""
    with zipfile.ZipFile(archive) as z:
        task = json.loads(z.read("task.json"))
        lines = z.read("metrics.jsonl").decode().splitlines() if "metrics.jsonl" in z.namelist() \
            else []
    metrics: dict[str, list[tuple[int, float]]] = {}
    for line in lines:
        for event in json.loads(line):
            if event["type"] != "training_stats_scalar":  # media: debug samples, plots
                continue
            key = _clearml_key(event["metric"], event["variant"])
            metrics.setdefault(key, []).append((event["iter"], event["value"]))
    props = {k: v["value"] for k, v in task["hyperparams"].get("properties", {}).items()}
    own = {"autolog.run_id", "autolog.parent_id", "autolog.status"}
    return Recorded(
        name=task["name"], status=props.get("autolog.status"),
        params={k: v["value"] for k, v in task["hyperparams"].get("General", {}).items()},
        tags={k: v for k, v in props.items() if k not in own},
        metrics={k: sorted(v) for k, v in metrics.items()},
        artifacts={a["key"] for a in task["execution"]["artifacts"]})


# -- Comet: the offline experiment archive --------------------------------------------------------

def comet_messages(archives: list[Path]) -> list[dict[str, Any]]:
    out = []
    for archive in archives:
        with zipfile.ZipFile(archive) as z:
            out += [json.loads(line) for line in z.read("messages.json").decode().splitlines()]
    return out


def read_comet(archives: list[Path]) -> Recorded:
    """The offline archives of one experiment (``<key>.zip`` then ``<key>-<suffix>.zip``)."""
    others: dict[str, Any] = {}
    params: dict[str, str] = {}
    metrics: dict[str, list[tuple[int, float]]] = {}
    files = set()
    for message in comet_messages(archives):
        payload, kind = message["payload"], message["type"]
        if kind == "log_other":
            others[payload["key"]] = payload["value"]
        elif kind == "ws_msg" and "log_other" in payload:  # how Comet 3.40 wrote them
            others[payload["log_other"]["key"]] = payload["log_other"]["val"]
        elif kind == "parameter_msg" and payload["param"]["source"] == "manual":
            params[payload["param"]["paramName"]] = str(payload["param"]["paramValue"])
        elif kind == "metric_msg":
            metric = payload["metric"]
            metrics.setdefault(metric["metricName"], []).append(
                (metric["step"], float(metric["metricValue"])))
        elif kind == "file_upload" and payload.get("upload_type") == "asset":
            files.add(payload["additional_params"]["fileName"])
    own = {"Name", "offline_experiment", "autolog.run_id", "autolog.parent_id", "autolog.status"}
    return Recorded(name=others.get("Name"), status=others.get("autolog.status"), params=params,
                    tags={k: str(v) for k, v in others.items() if k not in own},
                    metrics={k: sorted(v) for k, v in metrics.items()}, artifacts=files)
