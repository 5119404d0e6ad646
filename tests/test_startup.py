"""What ``enable()`` costs a script (issue 18): it imports no framework, no SDK, not wrapt (which
imports asyncio) and no built-in integration or backend; each integration loads with its
framework, through the post-import hook, and patches it with plain Python wrappers (wrapt is
not imported then either)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autolog.plugins import BUILTIN_INTEGRATIONS

from .helpers import clean_env

LOADED = """
import json, sys
import autolog
autolog.enable()
after_enable = set(sys.modules)
{then}
print(json.dumps({{"enable": sorted(after_enable), "end": sorted(sys.modules)}}))
"""


def modules(store: Path, then: str = "") -> dict[str, list[str]]:
    done = subprocess.run([sys.executable, "-c", LOADED.format(then=then)], env=clean_env(store),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_enable_imports_no_framework_no_wrapt_and_no_builtin_plugin(store: Path) -> None:
    loaded = set(modules(store)["enable"])
    for name in ("wrapt", "asyncio", "numpy", "sklearn", "torch", "mlflow", "wandb",
                 "importlib.metadata"):
        assert name not in loaded, name
    assert not {m for m in loaded if m.startswith(("autolog.integrations.", "autolog.backends."))}


def test_an_integration_loads_with_its_framework_and_patches_it(store: Path) -> None:
    pytest.importorskip("sklearn")
    then = ("from sklearn.linear_model import LogisticRegression\n"
            "LogisticRegression().fit([[0.0], [1.0], [0.2], [0.9]], [0, 1, 0, 1])\n"
            "assert len(autolog.list_runs()) == 1")
    loaded = set(modules(store, then)["end"])
    assert "autolog.integrations.sklearn" in loaded
    assert "autolog.integrations.keras" not in loaded
    assert "wrapt" not in loaded  # (asyncio may be: joblib imports it)


def test_recording_to_the_local_store_loads_no_delivery_and_no_reading_code(store: Path) -> None:
    """The delivery code is loaded with the first backend, the journal reader by what reads
    runs back: a local-only training process writes, and needs neither."""
    then = ("run = autolog.start_run('local')\n"
            "run.log_metric('loss', 0.5)\n"
            "run.end()\n"
            "autolog.flush()\n")
    loaded = set(modules(store, then)["end"])
    assert "autolog.journal.writer" in loaded
    assert not {m for m in loaded if m.startswith("autolog.delivery.") and
                m != "autolog.delivery.worker"}, sorted(loaded)
    assert "autolog.journal.reader" not in loaded
    assert "dataclasses" not in modules(store)["enable"]


@pytest.mark.parametrize("name", sorted(BUILTIN_INTEGRATIONS))
def test_the_builtin_manifest_names_what_each_integration_watches(name: str) -> None:
    module = importlib.import_module(f"autolog.integrations.{name}")
    found: list[object] = []
    module.autolog_register_integrations(found.append)
    [integration] = found
    assert integration.name == name  # type: ignore[attr-defined]
    assert tuple(integration.modules) == BUILTIN_INTEGRATIONS[name]  # type: ignore[attr-defined]


def test_import_autolog_and_the_launcher_load_no_recording_code(store: Path) -> None:
    """``autolog run`` starts the command before the recording code is imported: the package,
    the CLI and the launcher load nothing else of autolog (the API loads on first use)."""
    code = ("import sys\n"
            "before = set(sys.modules)  # what the interpreter's start loaded (site, .pth files)\n"
            "import autolog, autolog.cli, autolog.launch, autolog.bootstrap\n"
            "print(sorted(m for m in sys.modules if m.startswith('autolog')))\n"
            "print(sorted(m for m in ('argparse', 'subprocess', 'typing', 'contextlib') "
            "if m in set(sys.modules) - before))\n"
            "autolog.enable\n"
            "print('autolog.api' in sys.modules, autolog.Run.__module__)")
    done = subprocess.run([sys.executable, "-c", code], env=clean_env(store),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    first, heavy, then = done.stdout.splitlines()
    assert json.loads(first.replace("'", '"')) == ["autolog", "autolog._version",
                                                    "autolog.bootstrap", "autolog.cli",
                                                    "autolog.launch"]
    assert heavy == "[]"  # argparse for `autolog run --help` only; posix_spawn, not subprocess;
    # nor contextlib (0.6 ms of the launcher's start)
    assert then == "True autolog.run"


def test_the_bootstrap_directory_adds_no_module_where_autolog_is_not_launched(
        store: Path) -> None:
    """Every Python process of an ``autolog run`` command has the bootstrap's sitecustomize on
    its path, the launcher's own helpers too: where autolog does not start it imports nothing a
    plain interpreter does not (it finds the sitecustomize it hides with the import system's
    own machinery, not importlib.util)."""
    from autolog.launch import SITE_DIR

    code = "import sys; print(sorted(sys.modules))"
    plain = subprocess.run([sys.executable, "-c", code], env=clean_env(store),
                           capture_output=True, text=True, timeout=60, check=True)
    env = clean_env(store)
    env["PYTHONPATH"] = os.pathsep.join([SITE_DIR, env["PYTHONPATH"]])
    env.pop("AUTOLOG_LAUNCHED", None)
    site = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    added = set(json.loads(site.stdout.replace("'", '"'))) - \
        set(json.loads(plain.stdout.replace("'", '"')))
    assert added <= {"sitecustomize"}  # (plain has it too where Python ships one)


def test_a_submodule_is_an_attribute_and_a_wrong_name_a_clear_error() -> None:
    import autolog

    assert autolog.testing.__name__ == "autolog.testing"
    with pytest.raises(AttributeError, match="module 'autolog' has no attribute 'nothing_here'"):
        autolog.nothing_here  # noqa: B018
    assert {"enable", "log_metrics", "Run", "hookimpl"} <= set(dir(autolog))
