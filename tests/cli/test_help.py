"""``--help`` of every command reads as plain text: no doc markup (``autolog``, `autolog`,
:class:, **bold**), and it exits 0."""

from __future__ import annotations

import re

import pytest

from autolog.cli import _parser

from .conftest import cli, ok

MARKUP = re.compile(r"`|:(class|func|mod|meth|attr):|\*\*")


def _commands() -> list[list[str]]:
    sub = next(a for a in _parser()._actions if a.dest == "==SUPPRESS==" and a.choices)
    found = [[], *([name] for name in sub.choices)]
    return [*found, ["server", "token"], ["server", "token", "create"], ["server", "migrate"]]


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "autolog")
def test_help_is_plain_text(command: list[str]) -> None:
    text = ok(cli(*command, "--help"))
    assert text.startswith("usage: autolog"), text
    assert not MARKUP.search(text), f"markup in `autolog {' '.join(command)} --help`:\n{text}"
