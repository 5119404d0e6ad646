"""Every ``AUTOLOG_*`` setting: its name, default, parser and documentation, in one table.

``Settings.load()`` reads the environment once; ``enable(...)`` arguments override it. An invalid
value raises :class:`~autolog.errors.ConfigError` naming the variable and what it accepts.
``docs/configuration.md`` is generated from :data:`VARIABLES` (``python -m autolog.config``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from ._runtime import runtime
from .errors import ConfigError

__all__ = ["INTERNAL_VARIABLES", "VARIABLES", "Settings", "Var", "current", "nearest",
           "parse_bool"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; "
                      "use one of 1/0, true/false, yes/no, on/off")


def _bool(default: bool) -> Callable[[str, str | None], bool]:
    return lambda name, raw: parse_bool(name, raw, default)


def _positive(default: float, zero: bool = False) -> Callable[[str, str | None], float]:
    """Seconds: a finite number above 0 (``zero``: or 0)."""
    def parse(name: str, raw: str | None) -> float:
        if raw is None or not raw.strip():
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number; give seconds, e.g. {default:g}")
        if not (value >= 0 if zero else value > 0) or value == float("inf"):
            kind = "a finite number of seconds, 0 or more" if zero else \
                "a positive, finite number of seconds"
            raise ConfigError(f"{name}={raw!r} must be {kind}")
        return value

    return parse


def _count(default: int) -> Callable[[str, str | None], int]:
    def parse(name: str, raw: str | None) -> int:
        if raw is None or not raw.strip():
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number; e.g. {default}")
        if value < 0:
            raise ConfigError(f"{name}={raw!r} must be 0 or more")
        return value

    return parse


def _names(default: tuple[str, ...]) -> Callable[[str, str | None], tuple[str, ...]]:
    def parse(name: str, raw: str | None) -> tuple[str, ...]:
        if raw is None or not raw.strip():
            return default
        items = tuple(dict.fromkeys(p.strip().lower() for p in raw.split(",") if p.strip()))
        for item in items:
            if not _NAME.match(item):
                raise ConfigError(f"{name}: {item!r} is not a valid name (letters, digits, _.-)")
        return items

    return parse


def _choice(default: str, *choices: str) -> Callable[[str, str | None], str]:
    def parse(name: str, raw: str | None) -> str:
        if raw is None or not raw.strip():
            return default
        value = raw.strip().lower()
        if value not in choices:
            raise ConfigError(f"{name}={raw!r}: use one of {', '.join(choices)}")
        return value

    return parse


def _text(default: str | None) -> Callable[[str, str | None], str | None]:
    return lambda name, raw: default if raw is None or not raw.strip() else raw.strip()


class Var:
    """One setting: ``AUTOLOG_<NAME>`` parsed into ``Settings.<attr>``."""

    __slots__ = ("attr", "default", "doc", "env", "parse")

    def __init__(self, attr: str, default: Any, parse: Callable[[str, str | None], Any], doc: str):
        self.attr = attr
        self.env = "AUTOLOG_" + attr.upper()
        self.default = default
        self.parse = parse
        self.doc = doc


VARIABLES: tuple[Var, ...] = (
    Var("backend", ("local",), _names(("local",)),
        "Comma list of backends: local, http, mlflow, wandb, tensorboard, dvclive, aim, clearml, "
        "comet, or a plugin's name. The local journal is always written (it is the write-ahead "
        "log); the others receive a copy."),
    Var("dir", "./autolog-runs", _text("./autolog-runs"),
        "Directory of the local store: one sub-directory per run."),
    Var("project", "default", _text("default"),
        "Project name; MLflow maps it to an experiment, W&B to a project."),
    Var("run_name", None, _text(None),
        "Name of the next run started in this process (later runs get generated names)."),
    Var("disable", False, _bool(False),
        "Turn autolog into a no-op, whatever the code says."),
    Var("log_models", True, _bool(True), "Save trained models with each run."),
    Var("system_metrics", True, _bool(True),
        "Sample hardware usage (CPU, memory, disk, network, NVIDIA GPUs) while a run is active."),
    Var("system_interval", 10.0, _positive(10.0), "Seconds between hardware samples."),
    Var("gpu_all_devices", False, _bool(False),
        "Sample every NVIDIA GPU on the machine, not only those CUDA_VISIBLE_DEVICES makes "
        "visible to this process."),
    Var("http_url", None, _text(None), "URL of the `autolog server` the http backend sends to."),
    Var("http_token", None, _text(None), "Bearer token for the http backend."),
    Var("tensorboard_dir", "./runs", _text("./runs"),
        "Where the tensorboard backend writes event files: `<dir>/<project>/<run name>-<id>`."),
    Var("dvclive_dir", "./dvclive", _text("./dvclive"),
        "Where the dvclive backend writes DVCLive's files (one run per directory)."),
    Var("aim_repo", "./.aim", _text("./.aim"),
        "The Aim repository of the aim backend: a directory, or `aim://host:port`."),
    Var("clearml_dir", "~/.clearml/cache/offline", _text("~/.clearml/cache/offline"),
        "Where the clearml backend writes offline sessions (ClearML's own default place)."),
    Var("strict", False, _bool(False),
        "Raise autolog's own errors instead of warning about them (the test suite runs strict)."),
    Var("flush_interval", 1.0, _positive(1.0),
        "Seconds between the journal writer's passes: points move from the kill-safe tail to "
        "the journal (where backends read them); tensor-valued metrics and media are written."),
    Var("exit_timeout", 10.0, _positive(10.0),
        "Seconds the process may spend at exit delivering what backends have not received yet; "
        "what is left is reported and delivered later by `autolog sync`. Used when the exit "
        "waits (`AUTOLOG_EXIT_MODE`)."),
    Var("exit_mode", "auto", _choice("auto", "auto", "detach", "wait"),
        "What exit does with what backends have not received yet. `detach`: hand it to a "
        "delivery process that outlives the script (the script exits at once); `wait`: wait up "
        "to `AUTOLOG_EXIT_TIMEOUT`; `auto`: detach, but wait where a detached process would be "
        "killed with the job (SLURM, Kubernetes, a container's main process, a systemd service, "
        "batch and CI jobs; see docs/reliability.md)."),
    Var("delivery_delay", 5.0, _positive(5.0, zero=True),
        "Seconds after a process's first run starts before the backends that load a "
        "tracker's SDK (MLflow, W&B, TensorBoard, Aim, Comet) get anything; 0: at once. A "
        "script that ends sooner never loads the SDK: what it logged goes to the delivery "
        "process at exit (or is delivered while the exit waits). `autolog.flush()` delivers "
        "at once."),
    Var("detach_timeout", 600.0, _positive(600.0),
        "Seconds the detached delivery process keeps trying (a backend that is down is retried "
        "with backoff) before it leaves the rest for `autolog sync`."),
    Var("plugins", (), _names(()),
        "Allow list of entry-point plugins to load (empty: all installed)."),
    Var("disable_plugins", (), _names(()),
        "Block list of plugins, entry-point or built-in (e.g. `nvidia`, `wandb`)."),
    Var("max_child_runs", 50, _count(50),
        "Search CVs (GridSearchCV and the like): child runs for the top N candidates by rank "
        "(0: none)."),
    Var("metrics_sample_rows", 100_000, _count(100_000),
        "Training-set metrics of scikit-learn estimators are computed on at most this many rows "
        "(a fixed-seed sample beyond it), so they never cost as much as a long fit."),
    Var("capture_console", True, _bool(True),
        "Copy what the process writes to stdout and stderr into each run as `console.log` "
        "(timestamped lines, progress bars collapsed); see docs/capture.md."),
    Var("console_max_lines", 100_000, _count(100_000),
        "Lines of `console.log` kept per run: the last ones (the count dropped is a tag)."),
    Var("capture_code", False, _bool(False),
        "Record the uncommitted `git diff` (`code/diff.patch`), the untracked files and a copy "
        "of the entry script with each run (on under `autolog run`)."),
    Var("capture_args", False, _bool(False),
        "Log the entry point's argparse arguments, click/typer parameters (`args.*`) and Hydra "
        "config (`config.*`) as params (on under `autolog run`)."),
    Var("max_diff_bytes", 2 * 1024 * 1024, _count(2 * 1024 * 1024),
        "Largest `git diff` recorded; a larger one is skipped with one warning (checked from "
        "the changed files' sizes before the diff is read)."),
    Var("log_plots", True, _bool(True),
        "Evaluation plots of scikit-learn and XGBoost models: confusion matrix, ROC and "
        "precision-recall curves, predicted-vs-true and residuals (images and their data)."),
    Var("log_datasets", True, _bool(True),
        "Record a fingerprint of each training call's data (`dataset.*` tags: shape, dtype, "
        "rows, a digest of a bounded sample)."),
    Var("log_histograms", 0, _count(0),
        "Keras, Lightning and transformers: weight (and gradient) histograms every N epochs "
        "(0: off)."),
)

_BY_ATTR = {v.attr: v for v in VARIABLES}

#: set by ``autolog run`` for the processes it starts (not settings of their own)
INTERNAL_VARIABLES = ("AUTOLOG_LAUNCHED", "AUTOLOG_LAUNCH_ID", "AUTOLOG_LAUNCH_COMMAND",
                      "AUTOLOG_LAUNCH_RUNS")


def nearest(name: str, choices: list[str]) -> str | None:
    """The choice ``name`` is most likely a typo of (``mlfow`` -> ``mlflow``), or None."""
    import difflib

    found = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if not found:
        lowered = {c.lower(): c for c in choices}
        found = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
        found = [lowered[f] for f in found]
    return found[0] if found else None


class Settings:
    """The parsed configuration. Attributes are named after the variables, lowercased."""

    backend: tuple[str, ...]
    dir: str
    project: str
    run_name: str | None
    disable: bool
    log_models: bool
    system_metrics: bool
    system_interval: float
    gpu_all_devices: bool
    http_url: str | None
    http_token: str | None
    tensorboard_dir: str
    dvclive_dir: str
    aim_repo: str
    clearml_dir: str
    strict: bool
    flush_interval: float
    exit_timeout: float
    exit_mode: str
    delivery_delay: float
    detach_timeout: float
    plugins: tuple[str, ...]
    disable_plugins: tuple[str, ...]
    max_child_runs: int
    metrics_sample_rows: int
    capture_console: bool
    console_max_lines: int
    capture_code: bool
    capture_args: bool
    max_diff_bytes: int
    log_plots: bool
    log_datasets: bool
    log_histograms: int

    def __init__(self, values: Mapping[str, Any]):
        for var in VARIABLES:
            setattr(self, var.attr, values[var.attr])

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Parse every variable from ``environ`` (default ``os.environ``); overrides win."""
        env = os.environ if environ is None else environ
        values = {v.attr: v.parse(v.env, env.get(v.env)) for v in VARIABLES}
        for attr, value in overrides.items():
            if attr not in _BY_ATTR:
                raise TypeError(f"unknown setting {attr!r}")
            if value is not None:
                values[attr] = _coerce_override(_BY_ATTR[attr], value)
        return cls(values)

    def replace(self, **overrides: Any) -> Settings:
        values = {v.attr: getattr(self, v.attr) for v in VARIABLES}
        values.update({k: _coerce_override(_BY_ATTR[k], v) for k, v in overrides.items()
                       if v is not None})
        return Settings(values)

    def environ(self) -> dict[str, str]:
        """These settings as ``AUTOLOG_*`` variables, for a process that must use them too."""
        out = {}
        for var in VARIABLES:
            value = getattr(self, var.attr)
            if isinstance(value, bool):
                out[var.env] = "1" if value else "0"
            elif isinstance(value, tuple):
                out[var.env] = ",".join(value)
            elif value is not None:
                out[var.env] = str(value)
        return out

    def __repr__(self) -> str:
        shown = ", ".join(f"{v.attr}={getattr(self, v.attr)!r}" for v in VARIABLES
                          if v.attr != "http_token")
        return f"Settings({shown})"


def current() -> Settings:
    """The settings in force: from ``enable(...)``, else parsed from the environment once."""
    settings = runtime.settings
    if settings is None:
        with runtime.lock:
            if runtime.settings is None:
                runtime.settings = Settings.load()
            settings = runtime.settings
    return settings


def _coerce_override(var: Var, value: Any) -> Any:
    """Apply the variable's own parser to an ``enable()`` argument given as a Python value."""
    if isinstance(var.default, tuple) and not isinstance(value, str):
        value = ",".join(value)
    elif isinstance(var.default, bool):
        return bool(value)
    return var.parse(var.env, str(value))


def markdown_table() -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for var in VARIABLES:
        default = var.default
        if isinstance(default, tuple):
            default = ",".join(default) or "(empty)"
        elif isinstance(default, bool):
            default = "on" if default else "off"
        elif default is None:
            default = "(unset)"
        rows.append(f"| `{var.env}` | `{default}` | {var.doc} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
