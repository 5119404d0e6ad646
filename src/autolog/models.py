"""Saving and loading models through the integrations' model hooks.

``Run.log_model`` asks each plugin's ``autolog_save_model`` in turn; the first that recognises the
model writes it in its framework's native format and returns a spec (flavor, format, framework
version). The spec is stored in the journal and next to the files as ``autolog-model.json``, and
``autolog.load_model`` hands it to ``autolog_load_model``. A last-resort ``pickle`` flavor (this
module's own hooks, tried last) covers picklable objects no integration claims.
"""

from __future__ import annotations

import json
import pickle
import re
import sys
from pathlib import Path
from typing import Any

from .errors import ModelLoadError
from .hookspecs import hookimpl
from .plugins import get_plugins
from .values import qualified_name

__all__ = ["SPEC_FILE", "load_model", "not_importable", "save_model", "unpickle"]

SPEC_FILE = "autolog-model.json"


def save_model(model: Any, path: Path, **options: Any) -> dict[str, Any] | None:
    """Save ``model`` into the empty directory ``path``; its spec, or None if nobody knows it."""
    spec = get_plugins().save_model(model, path, options)
    if spec is not None:
        spec.setdefault("python_version", ".".join(map(str, sys.version_info[:3])))
        (path / SPEC_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True), encoding="utf-8")
    return spec


def load_model(spec: dict[str, Any], path: Path) -> Any:
    """The model saved at ``path``; :class:`ModelLoadError` names the real cause when no plugin
    can load it (a plugin that recognised the model but failed says why, and its failure is the
    error, not a warning)."""
    model, failures = get_plugins().load_model(spec, path)
    if model is not None:
        return model
    flavor = spec.get("flavor")
    if failures:
        explained = next((exc for _, exc in failures if isinstance(exc, ModelLoadError)), None)
        if explained is not None:
            raise explained
        name, exc = failures[0]
        raise ModelLoadError(f"the {flavor} model at {path} could not be loaded: plugin {name} "
                             f"failed with {type(exc).__name__}: {exc}") from exc
    raise ModelLoadError(f"no installed plugin loads models of flavor {flavor!r}; install the "
                         f"framework that saved it")


def not_importable(qualified: str, what: str, path: Path, alternative: str) -> ModelLoadError:
    """The error for a model whose class ``qualified`` cannot be imported here."""
    module = qualified.rpartition(".")[0]
    where = (f"it was defined in the script that trained the model ({module}), which is not "
             f"this process's {module}; define it here, or import it into this script "
             f"(`from your_module import {qualified.rpartition('.')[2]}`)"
             if module == "__main__" else f"import {module} (install what it needs)")
    return ModelLoadError(f"the {what} class {qualified} is not importable here: {where}, then "
                          f"call autolog.load_model again; or {alternative} (the files are in "
                          f"{path})")


def unpickle(data: bytes, spec: dict[str, Any], path: Path) -> Any:
    """``pickle.loads``, with a :class:`ModelLoadError` that names a class pickle cannot find."""
    try:
        return pickle.loads(data)
    except (AttributeError, ModuleNotFoundError, ImportError) as exc:
        qualified = str(spec.get("class") or "")
        found = _missing_class(exc) or qualified
        raise not_importable(found, "pickled model's", path,
                             "unpickle the file yourself where that class is defined") from exc


def _missing_class(exc: BaseException) -> str | None:
    """``module.Name`` from pickle's "Can't get attribute 'Name' on <module 'module' ...>"."""
    found = re.search(r"Can't get attribute '([^']+)' on <module '([^']+)'", str(exc))
    return f"{found.group(2)}.{found.group(1)}" if found else None


@hookimpl(trylast=True)
def autolog_save_model(model: Any, path: Path, options: dict[str, Any]) -> dict[str, Any] | None:
    try:
        data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None
    (path / "model.pkl").write_bytes(data)
    return {"flavor": "pickle", "format": "pickle", "framework_version": None,
            "class": qualified_name(type(model)), "file": "model.pkl"}


@hookimpl(trylast=True)
def autolog_load_model(spec: dict[str, Any], path: Path) -> Any:
    if spec.get("flavor") != "pickle":
        return None
    return unpickle((path / spec.get("file", "model.pkl")).read_bytes(), spec, path)
