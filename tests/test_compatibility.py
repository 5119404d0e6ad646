"""compatibility.toml, the one source of docs/compatibility.md, the CI legs and `autolog doctor`:
the page is current, and pyproject.toml, the integrations and the legs agree with it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autolog import compatibility
from autolog.compatibility import components, legs

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def test_the_page_is_generated_from_the_data_file():
    page = ROOT / compatibility.PAGE
    assert page.read_text(encoding="utf-8") == compatibility.render(), (
        "docs/compatibility.md is stale: run python -m autolog.compatibility --write")


def test_check_fails_on_a_stale_page_and_write_fixes_it(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    assert compatibility.main(["--check", "--root", str(tmp_path)]) == 1  # no page
    assert "is stale" in capsys.readouterr().err
    assert compatibility.main(["--write", "--root", str(tmp_path)]) == 0
    assert compatibility.main(["--check", "--root", str(tmp_path)]) == 0
    page = tmp_path / compatibility.PAGE
    page.write_text(page.read_text(encoding="utf-8").replace("3.0.5", "3.0.4"), encoding="utf-8")
    assert compatibility.main(["--check", "--root", str(tmp_path)]) == 1


def _pyproject_floors() -> dict[str, set[str]]:
    """Every requirement of pyproject.toml: distribution name -> its specifiers."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    floors: dict[str, set[str]] = {}
    for requirement in requirements:
        found = re.match(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?\s*([<>=!~][^;]*)?", requirement)
        assert found, requirement
        name = found.group(1).lower()
        if name != "autolog-ml":
            floors.setdefault(name, set()).add((found.group(3) or "").strip())
    return floors


def test_pyproject_claims_the_tables_ranges():
    floors = _pyproject_floors()
    for component in components().values():
        claimed = [pkg for pkg in component["packages"] if pkg["name"] in floors]
        assert claimed, f"{component['name']}: none of its packages is in pyproject.toml"
        for pkg in claimed:
            assert floors[pkg["name"]] == {pkg["supported"]}, pkg["name"]
    # the packages the tests install in the newest run's place, same ranges
    assert floors["mlflow-skinny"] == floors["mlflow"]
    assert floors["xgboost-cpu"] == floors["xgboost"]


def test_every_integration_declares_the_tables_floor():
    from autolog.api import get_settings
    from autolog.plugins import get_plugins

    integrations = get_plugins(get_settings()).integrations()
    assert set(integrations) <= set(components())  # a new integration gets a row
    for name, integration in integrations.items():
        assert integration.supported == components()[name]["packages"][0]["supported"], name
        assert integration.is_supported(components()[name]["packages"][0]["oldest"])


def _pins(leg: dict) -> dict[str, str]:
    pins = {}
    for requirement in leg["requires"]:
        found = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?==([0-9][0-9A-Za-z.]*)", requirement)
        if found:
            pins[found.group(1).lower()] = found.group(3)
    return pins


def test_every_oldest_version_is_pinned_by_a_leg_that_shows_it():
    pinned: dict[str, set[str]] = {}
    for leg in legs().values():
        for name, version in _pins(leg).items():
            pinned.setdefault(name, set()).add(version)
        assert set(_pins(leg)) <= set(leg["show"]) | {"numpy", "scipy", "pandas"}, leg["name"]
    for component in components().values():
        for pkg in component["packages"]:
            assert pkg["oldest"] in pinned.get(pkg["name"], set()), pkg["name"]


def test_every_leg_runs_tests_that_exist_for_a_known_component():
    for leg in legs().values():
        assert leg["component"] in components() or leg["component"] == "core", leg["name"]
        paths = [arg for arg in leg["pytest"] if not arg.startswith("-")
                 and leg["pytest"][max(leg["pytest"].index(arg) - 1, 0)] != "-k"]
        assert paths and all((ROOT / path).exists() for path in paths), leg["name"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_leg_reads_back_in_the_shell_as_written():
    """.ci/leg evals ``--leg NAME``: quoting survives (``numpy<2``, ``-k``, ``*``)."""
    leg = legs()["mlflow-oldest"]
    script = (f'eval "$({sys.executable} -m autolog.compatibility --leg mlflow-oldest)"; '
              'eval "r=($LEG_REQUIRES)"; eval "p=($LEG_PYTEST)"; '
              'printf "%s\\n" "${r[@]}" --- "${p[@]}"')
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True,
                         timeout=60).stdout.splitlines()
    assert out == [*leg["requires"], "---", *leg["pytest"]]


def test_doctor_reports_the_supported_range_and_the_versions_tested():
    from autolog.doctor import report

    data = report()
    frameworks = {f["name"]: f for f in data["frameworks"]}
    sklearn = components()["sklearn"]["packages"][0]
    assert frameworks["sklearn"]["supported"] == sklearn["supported"]
    assert frameworks["sklearn"]["tested"] == f"{sklearn['oldest']} … {sklearn['newest']}"
    backends = {b["name"]: b for b in data["backends"]}
    assert backends["mlflow"]["supported"] == components()["mlflow"]["packages"][0]["supported"]


def test_installed_names_the_versions_here():
    from importlib import metadata

    try:
        version = metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:
        pytest.skip("scikit-learn is not installed")
    assert f"scikit-learn {version}" in compatibility.installed()


# -- .ci/run and its legs --------------------------------------------------------------------------


def test_ci_runs_the_readmes_test_command_verbatim():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```\n(.*?)\n```", readme, re.S)
    command = next(block for block in blocks if "python -m pytest" in block)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in [line.strip() for line in ci]


def _bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", f"set -euo pipefail; . {ROOT}/.ci/legs.sh; {script}"],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("column") is None,
                    reason="needs bash and column")
def test_legs_go_on_after_a_failure_and_the_summary_fails(tmp_path):
    out = _bash("good() { leg_note 'thing 1.0'; }; bad() { false; echo not reached; }; "
                "leg good -- good; leg broken -- bad; legs_summary", tmp_path)
    assert out.returncode == 1, out.stderr
    assert "== leg: broken ==" in out.stdout and "not reached" not in out.stdout
    # bash's SECONDS counts whole seconds: a leg of a few ms can read 0m01s
    assert re.search(r"== leg: broken: FAILED \(exit 1\) in 0m0\ds; ", out.stdout), out.stdout
    table = out.stdout.split("== legs ==")[1].splitlines()
    assert re.match(r"LEG\s+STATUS\s+TIME\s+DISK FREE\s+VERSIONS", table[1])
    assert re.match(r"good\s+ok\s+0m0\ds\s+\d+(\.\d+)?[KMGT]\s+thing 1.0", table[2])
    assert re.match(r"broken\s+FAILED \(exit 1\)\s+0m0\ds", table[3])


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("column") is None,
                    reason="needs bash and column")
def test_background_legs_run_two_at_a_time_and_their_output_stays_whole(tmp_path):
    # each leg prints, sleeps, prints: run together, lines of legs printed line by line would mix
    out = _bash("step() { echo \"$1 begins\"; sleep 1; leg_note \"note $1\"; echo \"$1 ends\"; "
                "[ \"$1\" != b ]; }; "
                "leg_async a -- step a; leg_async b -- step b; leg_async c -- step c; "
                "legs_wait; legs_summary", tmp_path)
    assert out.returncode == 1, out.stderr  # b failed
    for name in "abc":
        block = re.search(rf"== leg: {name} ==\n{name} begins\n{name} ends\n== leg: {name}: ",
                          out.stdout)
        assert block, out.stdout
    table = out.stdout.split("== legs ==")[1]
    assert re.search(r"a\s+ok\s+0m0\ds\s+\S+\s+note a", table)
    assert re.search(r"b\s+FAILED \(exit 1\)", table)
    assert re.search(r"c\s+ok", table)
    # a and b ran together; c waited for a free place, from when a or b had ended
    started = {name: re.search(rf"leg {name} ran in the background, from (\S+)", out.stdout)[1]
               for name in "abc"}
    assert started["a"] <= started["b"] < started["c"]  # HH:MM:SS, a second apart at least


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("column") is None,
                    reason="needs bash and column")
def test_a_streamed_leg_prints_as_it_goes_and_holds_the_others_back(tmp_path):
    out = _bash("step() { echo \"$1 begins\"; sleep \"$2\"; echo \"$1 ends\"; }; "
                "leg_async --stream main -- step main 3; leg_async small -- step small 1; "
                "legs_wait; legs_summary", tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    # small ended first, but its output comes after main's whole output
    assert re.search(r"== leg: main ==\nmain begins\nmain ends\n== leg: main: ok[^\n]*\n"
                     r"ci: leg small ran in the background, from \S+\n\n== leg: small ==\n"
                     r"small begins\nsmall ends\n", out.stdout), out.stdout
    table = out.stdout.split("== legs ==")[1]
    assert table.index("small") < table.index("main")  # rows in the order the legs ended


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(("body", "passes"), [
    ("def test_ok():\n    pass\n", True),
    ("import pytest\npytest.skip('no framework', allow_module_level=True)\n", False),
    ("x = 1\n", False),  # no test collected
])
def test_a_leg_needs_a_passed_test(tmp_path, body, passes):
    (tmp_path / "test_leg.py").write_text(body, encoding="utf-8")
    out = _bash(f"pytest_passed {sys.executable} -p no:cacheprovider test_leg.py", tmp_path)
    assert (out.returncode == 0) is passes, out.stdout
