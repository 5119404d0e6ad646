"""Plugins: real entry points (a tiny example backend, a broken plugin), allow and block lists."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import autolog
from autolog import hookspecs, plugins
from autolog._runtime import runtime

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "autolog-csv-backend"


def install_dist(site: Path, name: str, entry_points: dict[str, str]) -> None:
    """What pip leaves behind for a package with ``autolog`` entry points: a .dist-info."""
    info = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[autolog]\n{lines}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(EXAMPLE / "autolog_csv_backend.py", site)
    install_dist(site, "autolog-csv-backend", {"csv": "autolog_csv_backend"})
    (site / "broken_plugin.py").write_text("raise ImportError('this plugin is broken')\n")
    install_dist(site, "broken-plugin", {"broken": "broken_plugin"})
    monkeypatch.syspath_prepend(str(site))
    plugins.reset()
    yield site
    sys.modules.pop("autolog_csv_backend", None)


def test_example_backend_through_a_real_entry_point(site, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOLOG_CSV_DIR", str(tmp_path / "csv"))
    with pytest.warns(autolog.AutologWarning, match="plugin 'broken'.*this plugin is broken"):
        autolog.enable(backend="local,csv")
    with autolog.start_run("csv-run") as run:
        run.log_params({"lr": 0.01})
        for i in range(5):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
    assert autolog.flush(timeout=30)
    out = tmp_path / "csv" / run.id
    with open(out / "metrics.csv") as f:
        rows = list(csv.reader(f))
    assert [(r[0], int(r[1]), float(r[2])) for r in rows] == [
        ("loss", i, 1.0 / (i + 1)) for i in range(5)]
    assert (out / "status").read_text() == "FINISHED"
    assert "lr" in (out / "params.json").read_text()


def test_broken_plugin_never_breaks_import_or_enable(site, tmp_path):
    script = tmp_path / "s.py"
    script.write_text(textwrap.dedent("""
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import autolog
            autolog.enable()
            with autolog.start_run() as run:
                run.log_metric("x", 1.0)
        print(len([w for w in caught if "plugin 'broken'" in str(w.message)]))
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOLOG_")}
    env.update(PYTHONPATH=f"{site}{os.pathsep}{ROOT / 'src'}", AUTOLOG_DIR=str(tmp_path / "r"))
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "1"


def test_allow_and_block_lists(site, monkeypatch):
    monkeypatch.setenv("AUTOLOG_PLUGINS", "csv")
    manager = plugins.get_plugins(autolog.api.get_settings())  # no warning: broken not loaded
    assert "csv" in manager.names() and "broken" not in manager.failed
    plugins.reset()
    monkeypatch.setenv("AUTOLOG_DISABLE_PLUGINS", "csv,context")
    runtime.settings = None
    manager = plugins.get_plugins(autolog.api.get_settings())
    assert "csv" not in manager.names() and "context" not in manager.names()
    assert "csv" not in manager.backends()


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(autolog.ConfigError,
                       match=r"AUTOLOG_BACKEND: unknown backend 'mlfow' \(did you mean "
                             r"'mlflow'\?\); accepted: local"):
        autolog.enable(backend="mlfow")


def test_every_hook_is_documented_and_implemented_by_a_builtin():
    manager = plugins.get_plugins(autolog.api.get_settings())
    manager.load_builtins()  # built-ins load when a hook needs them
    for name in [n for n in dir(hookspecs) if n.startswith("autolog_")]:
        spec = getattr(hookspecs, name)
        assert spec.__doc__ and len(spec.__doc__.strip()) > 40, name
        assert getattr(manager.pm.hook, name).get_hookimpls(), f"no built-in implements {name}"
        assert f"`{name}" in (ROOT / "docs" / "plugins.md").read_text(), name


def test_the_builtin_listing_finds_what_pkgutil_finds(tmp_path):
    """Built-ins are found by a directory listing, not pkgutil (1 ms of ``enable()``): the same
    modules and packages, here and in a made-up package with a folder that is no package."""
    import importlib
    import pkgutil

    for package in plugins._BUILTIN_PACKAGES:
        path = importlib.import_module(package).__path__
        assert plugins._submodules(path) == sorted(i.name for i in pkgutil.iter_modules(path))
    made = tmp_path / "made"
    (made / "sub").mkdir(parents=True)
    (made / "sub" / "__init__.py").write_text("")
    (made / "data").mkdir()  # no __init__.py: not a package
    for name in ("__init__.py", "one.py", "two.py", "notes.txt"):
        (made / name).write_text("")
    assert plugins._submodules([str(made)]) == ["one", "sub", "two"]
    assert plugins._submodules([str(made), str(tmp_path / "gone")]) == ["one", "sub", "two"]
    import zipfile

    with zipfile.ZipFile(tmp_path / "zipped.zip", "w") as archive:  # a zipped install
        for name in ("made/__init__.py", "made/one.py", "made/sub/__init__.py"):
            archive.writestr(name, "")
    assert plugins._submodules([str(tmp_path / "zipped.zip" / "made")]) == ["one", "sub"]
    assert sorted(i.name for i in pkgutil.iter_modules([str(made)])) == ["one", "sub", "two"]
