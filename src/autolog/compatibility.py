"""What autolog is tested with, read from ``compatibility.toml`` (shipped in the package).

That one file is the source of ``docs/compatibility.md`` (this module writes it), of the version
legs ``.ci/run`` runs (``--legs``, ``--leg NAME``) and of the "supported" and "tested" columns of
``autolog doctor``. The tests check that the page, ``pyproject.toml`` and each integration's
``supported`` agree with it.

    python -m autolog.compatibility --write     # regenerate docs/compatibility.md
    python -m autolog.compatibility --check     # exit 1 when the page is stale
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["components", "installed", "legs", "load", "render", "tested"]

PAGE = Path("docs") / "compatibility.md"


@functools.cache
def load() -> dict[str, Any]:
    """The parsed ``compatibility.toml``."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    text = resources.files("autolog").joinpath("compatibility.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def components() -> dict[str, dict[str, Any]]:
    """Integrations and backends by autolog's name for them (``sklearn``, ``mlflow``, ...)."""
    return {component["name"]: component for component in load()["component"]}


def legs() -> dict[str, dict[str, Any]]:
    """The version legs CI runs besides the main (newest) run, by name."""
    return {leg["name"]: leg for leg in load()["leg"]}


def tested(name: str) -> dict[str, str] | None:
    """``{"supported": ">=1.3", "tested": "1.3.2 … 1.9.1"}`` for a component's main package."""
    component = components().get(name)
    if component is None:
        return None
    package = component["packages"][0]
    return {"supported": package["supported"],
            "tested": f"{package['oldest']} … {package['newest']}"}


# -- the page --------------------------------------------------------------------------------------


def render() -> str:
    """``docs/compatibility.md``, from the data file alone."""
    data = load()
    parts = [_HEADER.format(**data["python"], checked=data["checked"]),
             _table(components()), _legs_section(legs()), _floors(data["floors"]),
             _limits(components()), _by_hand(data.get("by_hand", [])), _FOOTER]
    return "\n".join(part for part in parts if part)


_HEADER = """\
# Compatibility

<!-- Generated from src/autolog/compatibility.toml by `python -m autolog.compatibility --write`.
     Edit that file, not this page; tests/test_compatibility.py fails when the two disagree. -->

Every integration and backend is tested at both ends of the range it claims: **newest** is the
main CI run (the README's test command, which installs the newest releases; the versions below are
those of the last check, {checked}), **oldest** is a CI leg of its own, in a venv of its own,
pinned to the oldest release and running only the tests that concern it. "Supported" is what
`pyproject.toml` requires and `autolog doctor` reports.

Python: {claimed} is claimed; CI tests {tested_text}. {note}
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(comps: dict[str, dict[str, Any]]) -> str:
    rows = ["| | package | supported | oldest tested | newest tested | CI legs | notes |",
            "|---|---|---|---|---|---|---|"]
    for name, comp in comps.items():
        title = f"[{comp['title']}]({comp['doc']})" if comp.get("doc") else comp["title"]
        for i, pkg in enumerate(comp["packages"]):
            leg_names = ", ".join(f"`{leg}`" for leg in _legs_of(name, pkg["name"]))
            rows.append("| " + " | ".join([
                f"**{title}** ({comp['kind']})" if i == 0 else "",
                f"`{pkg['name']}`", _cell(pkg["supported"]), pkg["oldest"], pkg["newest"],
                leg_names or "—", _cell(pkg.get("note", ""))]) + " |")
    return "## Versions\n\n" + "\n".join(rows) + "\n"


def _legs_of(component: str, package: str) -> list[str]:
    return [leg["name"] for leg in legs().values()
            if leg["component"] == component and package in leg.get("show", [])]


def _legs_section(all_legs: dict[str, dict[str, Any]]) -> str:
    rows = ["| leg | installs (after autolog) | pytest | environment |", "|---|---|---|---|"]
    for name, leg in all_legs.items():
        installs = ", ".join(f"`{req}`" for req in
                             (["torch==2.13.0"] if leg.get("torch") else []) + leg["requires"])
        tests = " ".join(leg["pytest"])
        env = ", ".join([f"Python {leg['python']}"] if leg.get("python") else []
                        + [f"`{k}={v}`" for k, v in leg.get("env", {}).items()]) or "—"
        rows.append(f"| `{name}` | {installs} | `{tests}` | {env} |")
    return _LEGS_TEXT + "\n".join(rows) + "\n"


_LEGS_TEXT = """\
## The CI legs

`.ci/run` runs the README's test command (newest releases, the whole suite) and each leg below
in a venv of its own (`.venv-<leg>`; pip's cache is shared, so a wheel is downloaded once), and
prints a table of the legs with their versions, status, duration and the disk space left. Two
legs run at a time (`CI_LEG_JOBS`): the small legs below one after another beside the README's
command (its pytest runs on one core), then the two that run the whole suite on another Python.
The README command's output is printed as it comes, each other leg's whole once it has ended.
A leg fails when a test fails or when no test passed. A venv that a leg made is
removed when the leg ends (all of them at once, 13 GB, once filled a CI machine's disk);
`CI_KEEP_VENVS=1` keeps them. Run one by hand: `bash .ci/leg NAME` (`bash .ci/leg --list`).

"""


def _floors(floors: dict[str, Any]) -> str:
    lines = [f"- **{item['package']}** ({item['what']}): {item['from']} → {item['to']}. "
             f"{item['why']}" for item in floors.get("changed", [])]
    return "## Floors\n\n" + floors["text"] + "\n\n" + "\n".join(lines) + "\n"


def _limits(comps: dict[str, dict[str, Any]]) -> str:
    lines = []
    for comp in comps.values():
        lines += [f"- **{comp['title']}**: {limit}" for limit in comp.get("limits", [])]
    return "## Known limits\n\n" + "\n".join(lines) + "\n" if lines else ""


def _by_hand(checks: list[dict[str, str]]) -> str:
    if not checks:
        return ""
    lines = [f"- **{c['what']}** ({c['date']}): {c['versions']}. Ran: {c['ran']} "
             f"Result: {c['result']}" for c in checks]
    return "## Checked by hand\n\nNot in CI (a large download), checked by hand:\n\n" \
        + "\n".join(lines) + "\n"


_FOOTER = """\
## Changing a range

Edit `src/autolog/compatibility.toml` (the package's range, the oldest leg's pins, the limits),
the matching `pyproject.toml` extra and the integration's `supported`, then
`python -m autolog.compatibility --write`. `tests/test_compatibility.py` checks that the three
agree and that this page is current; `.ci/run` runs the new leg.
"""


def installed() -> str:
    """``keras 3.15.1, ...`` for the table's packages installed here; ``(newer than the table)``
    marks a release the table does not name yet: time to update its ``newest``."""
    from importlib import metadata

    found = []
    for component in components().values():
        for pkg in component["packages"]:
            for dist in (pkg["name"], *pkg.get("installed_as", [])):
                try:
                    version = metadata.version(dist)
                except metadata.PackageNotFoundError:
                    continue
                newer = _release(version) > _release(pkg["newest"])
                found.append(f"{pkg['name']} {version}" + (" (newer than the table)" * newer))
                break
    return ", ".join(found)


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


# -- command line: the page and the CI legs ------------------------------------------------------


def _leg_shell(name: str) -> str:
    """One leg as shell assignments for ``.ci/leg`` (values quoted for ``eval``)."""
    import shlex

    leg = legs()[name]
    values = {"LEG_PYTHON": f"python{leg.get('python', '3')}",
              "LEG_TORCH": "1" if leg.get("torch") else "",
              "LEG_REQUIRES": shlex.join(leg["requires"]), "LEG_PYTEST": shlex.join(leg["pytest"]),
              "LEG_SHOW": shlex.join(leg.get("show", [])),
              "LEG_ENV": shlex.join(f"{k}={v}" for k, v in leg.get("env", {}).items())}
    return "\n".join(f"{key}={shlex.quote(value)}" for key, value in values.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autolog.compatibility",
                                     description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--write", action="store_true", help=f"write {PAGE}")
    what.add_argument("--check", action="store_true", help=f"exit 1 when {PAGE} is stale")
    what.add_argument("--legs", action="store_true", help="the names of the CI version legs")
    what.add_argument("--leg", metavar="NAME", help="one leg, as shell assignments")
    what.add_argument("--installed", action="store_true",
                      help="the installed version of each package in the table")
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository's root")
    args = parser.parse_args(argv)
    page = args.root / PAGE
    if args.write:
        page.write_text(render(), encoding="utf-8")
    elif args.check:
        if not page.is_file() or page.read_text(encoding="utf-8") != render():
            print(f"{page} is stale: run python -m autolog.compatibility --write",
                  file=sys.stderr)
            return 1
    elif args.legs:
        print("\n".join(legs()))
    elif args.installed:
        print(installed())
    else:
        if args.leg not in legs():
            print(f"no leg {args.leg!r}; legs: {', '.join(legs())}", file=sys.stderr)
            return 2
        print(_leg_shell(args.leg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
