"""The entry point's command line and configuration as params: argparse results as
``args.<dest>``, click and typer parameters as ``args.<name>``, the Hydra (OmegaConf) config as
``config.<path>``.

What is patched, through autolog's patcher (``disable()`` reverts it), when ``capture_args`` is
on (``autolog run``, ``enable(capture=...)``, ``AUTOLOG_CAPTURE_ARGS``):

- ``argparse.ArgumentParser.parse_known_args`` (which ``parse_args`` and HfArgumentParser call):
  only a parse of the process's own command line (``args`` not given), and not Hydra's own
  parser, is recorded;
- ``click.core.Command.invoke`` (and the click that typer vendors): each command's parameters
  as click parsed them;
- ``hydra.main``: the task function is wrapped (with wrapt, so Hydra still finds its file) to
  record the composed config, resolved, before it runs.

What was captured lives in the runtime: logged into the top-level runs active now, and into each
top-level run started later (:func:`log_into`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .._runtime import runtime
from ..patching import on_import, patcher
from ..report import internal_error

if TYPE_CHECKING:
    from ..run import Run

__all__ = ["captured", "log_into", "record", "watch"]

#: frames of these modules are skipped when looking for who parsed the command line
_PLUMBING = ("argparse", "autolog.", "wrapt", "typing")


def watch() -> None:
    """Patch argparse, click and hydra as soon as each is imported (now, if it is)."""
    on_import("argparse", _patch_argparse)
    on_import("click.core", _patch_click)
    on_import("typer._click.core", _patch_click)  # typer 0.2x vendors its own click
    on_import("hydra", _patch_hydra)


def captured() -> dict[str, Any]:
    with runtime.lock:
        return dict(runtime.cli_params)


def log_into(run: Run) -> None:
    """Log what was captured so far into ``run`` (a top-level run that just started)."""
    params = captured()
    if params:
        run.log_params(params)


def record(prefix: str, values: Mapping[str, Any]) -> None:
    """Remember ``values`` under ``prefix.`` and log them into the active top-level runs."""
    params = {f"{prefix}.{key}": value for key, value in values.items()}
    if not params:
        return
    with runtime.lock:
        runtime.cli_params.update(params)
    with runtime.runs_lock:
        runs = [run for run in runtime.runs if run.parent_id is None]
    for run in runs:
        run.log_params(params)


# -- argparse ------------------------------------------------------------------------------------


def _patch_argparse(module: ModuleType) -> None:
    with runtime.lock:
        patcher().wrap(module.ArgumentParser, "parse_known_args", _parsed)


def _parsed(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    result = wrapped(*args, **kwargs)
    try:
        given = args[0] if args else kwargs.get("args")
        if given is None and not _called_from("hydra"):
            namespace = result[0] if isinstance(result, tuple) else result
            record("args", vars(namespace))
    except Exception as exc:
        internal_error("capturing argparse arguments", exc)
    return result


def _called_from(package: str) -> bool:
    """Whether the code that asked to parse lives in ``package`` (skipping argparse itself)."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not name.startswith(_PLUMBING):
            return name == package or name.startswith(package + ".")
        frame = frame.f_back  # type: ignore[assignment]
    return False


# -- click and typer -----------------------------------------------------------------------------


def _patch_click(module: ModuleType) -> None:
    with runtime.lock:
        patcher().wrap(module.Command, "invoke", _invoked)


def _invoked(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        context = args[0] if args else kwargs.get("ctx")
        params = getattr(context, "params", None)
        if isinstance(params, Mapping):
            record("args", params)
    except Exception as exc:
        internal_error("capturing click parameters", exc)
    return wrapped(*args, **kwargs)


# -- hydra ---------------------------------------------------------------------------------------


def _patch_hydra(module: ModuleType) -> None:
    with runtime.lock:
        patcher().wrap(module, "main", _hydra_main)


def _hydra_main(wrapped: Any, instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
    decorator = wrapped(*args, **kwargs)

    def decorate(task_function: Any) -> Any:
        import wrapt

        # a wrapt proxy keeps __code__ and __module__: Hydra finds the config next to the task
        return decorator(wrapt.FunctionWrapper(task_function, _run_task))

    return decorate


def _run_task(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        config = args[0] if args else next(iter(kwargs.values()), None)
        if config is not None:
            record("config", _container(config))
    except Exception as exc:
        internal_error("capturing the Hydra config", exc)
    return wrapped(*args, **kwargs)


def _container(config: Any) -> dict[str, Any]:
    """An OmegaConf config as plain data, interpolations resolved where they can be."""
    from omegaconf import OmegaConf

    try:
        data = OmegaConf.to_container(config, resolve=True)
    except Exception:  # a missing value (???) or a resolver that fails: keep them unresolved
        data = OmegaConf.to_container(config, resolve=False)
    return {str(k): v for k, v in data.items()} if isinstance(data, dict) else {"value": data}
