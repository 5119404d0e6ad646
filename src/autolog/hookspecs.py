"""The hooks a plugin can implement. These docstrings are the plugin reference.

A plugin is a module or object with functions named like the specs below, decorated with
``autolog.hookimpl``, and exposed through the ``autolog`` entry-point group::

    [project.entry-points.autolog]
    mybackend = "mypackage.autolog_plugin"

Built-in integrations, backends and samplers use these same hooks. Objects are contributed through
a ``register`` callback (the style of ``llm``), not return values, so one hook call may register
several.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from .delivery.contract import Backend
    from .integrations.base import Integration
    from .run import Run
    from .system import Sampler

hookspec = pluggy.HookspecMarker("autolog")
hookimpl = pluggy.HookimplMarker("autolog")


@hookspec
def autolog_register_backends(register: Callable[[type[Backend]], None]) -> None:
    """Register :class:`~autolog.backends.base.Backend` subclasses.

    ``register(cls)`` makes ``cls.name`` usable in ``AUTOLOG_BACKEND``. The class is instantiated
    with the settings only when a run is sent to it, so registering must not import its SDK.

    :param register: call it once per backend class
    """


@hookspec
def autolog_register_integrations(register: Callable[[Integration], None]) -> None:
    """Register :class:`~autolog.integrations.base.Integration` instances.

    ``enable()`` calls ``integration.patch(patcher, module)`` for each module named in
    ``integration.modules`` as soon as it is imported (at once if it already is).

    :param register: call it once per integration
    """


@hookspec
def autolog_register_samplers(register: Callable[[type[Sampler]], None]) -> None:
    """Register :class:`~autolog.system.Sampler` subclasses for hardware monitoring.

    Each sampler class is instantiated on the monitor thread when a run starts; raising
    :class:`~autolog.system.SamplerUnavailable` there switches it off for that run, quietly.

    :param register: call it once per sampler class
    """


@hookspec
def autolog_run_context(run: Run) -> dict[str, str] | None:
    """Contribute tags describing where a run happens (git, host, packages).

    Called once per top-level run on a background thread, never on the training thread. Return
    tags to set; use ``run.log_text_artifact`` for larger things (``requirements.txt``).

    :param run: the run that just started
    :return: tags, or None
    """


@hookspec
def autolog_save_model(model: Any, path: Path, options: dict[str, Any]) -> dict[str, Any] | None:
    """Save ``model`` into the empty directory ``path`` if this plugin knows its type.

    The first implementation that returns a spec wins. The spec is a JSON-safe dict with at least
    ``flavor`` (the plugin's name for the kind of model, e.g. ``sklearn``), ``format`` (e.g.
    ``pickle``, ``ubj``, ``keras``) and ``framework_version``; it is stored with the run and
    given back to :func:`autolog_load_model`.

    :param model: the trained model object
    :param path: the directory to write into
    :param options: keyword arguments given to ``Run.log_model``
    :return: the spec, or None to let another plugin try
    """


@hookspec
def autolog_load_model(spec: dict[str, Any], path: Path) -> Any:
    """Load a model saved by :func:`autolog_save_model` whose ``spec["flavor"]`` is yours.

    :param spec: the spec the save hook returned
    :param path: the directory the model was saved into
    :return: the model object, or None when the flavor is not yours
    """
