"""``autolog doctor``: what is installed and configured, and every problem found with its fix;
exit status 1 when there is one."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .render import Cell, Column, Table, print_table

__all__ = ["cmd_doctor", "configure"]


def configure(sub: Any) -> None:
    doctor = sub.add_parser(
        "doctor", help="check the setup: backends, SDKs, servers, settings, the store",
        description="Check the setup and say what is wrong, each with its fix: unknown "
        "backends or AUTOLOG_* variables, tracker SDKs not installed, servers not reachable "
        "or refusing the token, the store not writable. Versions of the frameworks, backends "
        "and samplers. Exit status 1 when anything is wrong.")
    doctor.add_argument("--offline", action="store_true",
                        help="skip the network checks (servers reachable, tokens valid)")
    doctor.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="for each network check (default 5)")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from ..doctor import report

    data = report(network=not args.offline, timeout=args.timeout)
    code = 1 if data["problems"] else 0
    if args.json:
        print(json.dumps(data, indent=2))
        return code
    _versions(data)
    _problems(data)
    return code


def _versions(data: dict[str, Any]) -> None:
    print(f"autolog {data['autolog']}  python {data['python']}  store {data['store']}")
    print(f"backends configured: {', '.join(data['configured_backends'])}\n")
    print_table(Table([Column("framework"), Column("installed"), Column("supported"),
                       Column("tested", flexible=True), Column("status", flexible=True)],
                      [[f["name"], f["installed"] or "-", f["supported"], f["tested"] or "-",
                        f["status"]] for f in data["frameworks"]]))
    print()
    print_table(Table([Column("backend"), Column("installed"), Column("supported"),
                       Column("tested", flexible=True), Column("configured")],
                      [[b["name"], b["installed"] or "-", b.get("supported", "-"),
                        b.get("tested") or "-",
                        Cell("yes", "bold") if b["configured"] else "no"]
                       for b in data["backends"]]))
    print()
    print_table(Table([Column("sampler"), Column("status", flexible=True)],
                      [[s["name"], s["status"]] for s in data["samplers"]]))
    print(f"\nserver: {data['server']['status']}")
    print(f"plugins loaded: {', '.join(data['plugins'])}")
    for name, why in data["failed_plugins"].items():
        print(f"plugin {name} FAILED: {why}")
    for note in data["notes"]:
        print(f"note: {note}")


def _problems(data: dict[str, Any]) -> None:
    problems = data["problems"]
    if not problems:
        print("\nno problems found")
        return
    print(f"\n{len(problems)} problem{'s' if len(problems) != 1 else ''} found:")
    for problem in problems:
        print(f"  {problem['check']}: {problem['message']}\n      fix: {problem['fix']}")
