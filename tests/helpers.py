"""Small helpers shared by the tests."""

from __future__ import annotations

import autolog


def only_run(**filters: str) -> autolog.RunRecord:
    """The single run in the store (fails if there are none or several)."""
    runs = autolog.list_runs(**filters)
    assert len(runs) == 1, runs
    return runs[0]
