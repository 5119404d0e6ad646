"""Reading the pages back: the runs table's rows, the charts' data (the debug registry)."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

ROW_IDS = "() => [...document.querySelectorAll('tr[data-run]')].map(e => e.dataset.run)"


def table_ids(page: Page) -> list[str]:
    ids: list[str] = page.evaluate(ROW_IDS)
    return ids


def wait_table(page: Page, expected: list[str], timeout: float = 10_000) -> None:
    """Wait until the runs table shows exactly ``expected`` (in order), then check it."""
    try:
        page.wait_for_function(f"exp => JSON.stringify(({ROW_IDS})()) === JSON.stringify(exp)",
                               arg=expected, timeout=timeout)
    except PlaywrightTimeout:
        pass
    shown = table_ids(page)
    assert shown == expected, f"the table shows {shown}, expected {expected}"


def chart_lines(page: Page, key: str, timeout: float = 15_000) -> list[dict[str, Any]]:
    """The lines the chart of ``key`` draws: label, runId, steps, values (as logged)."""
    page.wait_for_function("k => window.__autolog && window.__autolog.charts[k] && "
                           "window.__autolog.charts[k].lines().length > 0", arg=key,
                           timeout=timeout)
    lines: list[dict[str, Any]] = page.evaluate(
        "k => window.__autolog.charts[k].lines()", key)
    return lines


def chart_keys(page: Page) -> set[str]:
    keys: list[str] = page.evaluate("() => Object.keys((window.__autolog || {charts: {}}).charts)")
    return set(keys)


def wait_chart(page: Page, key: str, predicate: str, timeout: float = 15_000) -> None:
    """Wait until ``predicate`` (JS over ``lines``) holds for the chart of ``key``."""
    page.wait_for_function(
        f"k => {{ const c = window.__autolog && window.__autolog.charts[k]; if (!c) return false;"
        f" const lines = c.lines(); return {predicate}; }}", arg=key, timeout=timeout)


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
