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
import sys
from pathlib import Path
from typing import Any

from .hookspecs import hookimpl
from .plugins import get_plugins
from .values import qualified_name

__all__ = ["SPEC_FILE", "load_model", "save_model"]

SPEC_FILE = "autolog-model.json"


def save_model(model: Any, path: Path, **options: Any) -> dict[str, Any] | None:
    """Save ``model`` into the empty directory ``path``; its spec, or None if nobody knows it."""
    spec = get_plugins().save_model(model, path, options)
    if spec is not None:
        spec.setdefault("python_version", ".".join(map(str, sys.version_info[:3])))
        (path / SPEC_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True), encoding="utf-8")
    return spec


def load_model(spec: dict[str, Any], path: Path) -> Any:
    model = get_plugins().load_model(spec, path)
    if model is None:
        raise LookupError(f"no installed plugin loads models of flavor {spec.get('flavor')!r}; "
                          f"install the framework that saved it")
    return model


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
    return pickle.loads((path / spec.get("file", "model.pkl")).read_bytes())
