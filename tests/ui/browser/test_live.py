"""A run still training: its chart grows and the table follows without a reload; when its
process dies, the pages say CRASHED."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

import autolog

from .conftest import go
from .pages import chart_lines, wait_chart
from .store import LiveRun

pytestmark = pytest.mark.slow


@pytest.fixture
def live(ui_dir: Path) -> Iterator[LiveRun]:
    run = LiveRun(ui_dir)
    yield run
    run.kill()


def last_logged_step(store: Path, run_id: str) -> int:
    return autolog.get_run(run_id, store).history("loss")[-1][0]


def test_a_live_run_grows_then_crashes(ui: Page, ui_dir: Path, live: LiveRun) -> None:
    go(ui, "/p/vision")  # a new run shows up in the table by itself (polled every 3 s)
    link = ui.locator(f"tr[data-run='{live.id}'] a.run-link")
    expect(link).to_have_text("live-run", timeout=10_000)
    link.click()
    expect(ui.locator(".run-head .status")).to_have_text("RUNNING")
    first = len(chart_lines(ui, "loss")[0]["steps"])
    # a point logged now is drawn with no reload (the page polls every 2 s, the index follows
    # the journal every second: about 3 s; the bound is loose for a loaded machine)
    time.sleep(0.5)
    logged = last_logged_step(ui_dir, live.id)
    wait_chart(ui, "loss", f"lines[0].steps[lines[0].steps.length - 1] >= {logged}",
               timeout=15_000)
    lines = chart_lines(ui, "loss")
    assert len(lines[0]["steps"]) > first
    steps = lines[0]["steps"]
    assert steps == sorted(set(steps))  # appended, never duplicated
    history = dict((s, v) for s, v, _ in autolog.get_run(live.id, ui_dir).history("loss"))
    assert all(history[s] == pytest.approx(v) for s, v in zip(steps, lines[0]["values"],
                                                               strict=True))
    ui.evaluate("() => { window.__notReloaded = true; }")

    go(ui, "/p/vision")
    status = ui.locator(f"tr[data-run='{live.id}'] .status")
    expect(status).to_have_text("RUNNING")
    ui.evaluate("() => { window.__notReloaded = true; }")
    live.kill()
    expect(status).to_have_text("CRASHED", timeout=10_000)  # the table polls every 3 s
    assert ui.evaluate("() => window.__notReloaded") is True
    go(ui, f"/r/{live.id}")
    expect(ui.locator(".run-head .status")).to_have_text("CRASHED")
