"""autolog's bootstrap, first on PYTHONPATH only for commands started by ``autolog run``.

Python imports the first ``sitecustomize`` it finds at start-up. This one first runs the one it
hides (the next ``sitecustomize`` on the path, if any), then, when ``AUTOLOG_LAUNCHED=1``, starts
autolog in this process (:func:`autolog.bootstrap.bootstrap`). A failure is one line on stderr:
the command runs as it would without autolog.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _chain() -> None:
    # the import system's own modules, which every CPython process has loaded: importlib.util
    # would import contextlib, collections and functools, 4 ms of each launched process's start
    machinery: Any = sys.modules.get("_frozen_importlib_external")
    util: Any = sys.modules.get("_frozen_importlib")
    if machinery is None or util is None:  # pragma: no cover - not CPython
        import importlib.machinery as machinery
        import importlib.util as util
    here = os.path.dirname(os.path.abspath(__file__))
    path = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)


def _start() -> None:
    if os.environ.get("AUTOLOG_LAUNCHED") != "1":
        return
    try:
        from autolog.bootstrap import bootstrap

        bootstrap()
    except Exception as exc:  # never stop the user's command
        print(f"autolog: not started in this process: {type(exc).__name__}: {exc}",
              file=sys.stderr)


_chain()
_start()
