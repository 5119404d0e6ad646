"""A run still training: its chart grows and the table follows without a reload; when its
process dies, the pages say CRASHED."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

import autolog

from ...helpers import clean_env
from .conftest import UiServer, Watch, go
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


FIRST = r"""
import sys, time, autolog
from pathlib import Path
run = autolog.start_run("first-run", project="fresh", tags={"stage": "warm-up"})
print(run.id, flush=True)
while not Path(GO).exists():  # the test says when the first metrics come
    time.sleep(0.05)
step = 0
while True:
    run.log_metrics({"val_accuracy": 0.5 + step / 1000, "train_loss": 1 / (step + 1)}, step=step)
    autolog.flush()
    step += 1
    time.sleep(0.2)
"""


def test_a_table_opened_before_the_first_metric_shows_it_when_it_comes(
        page: Page, tmp_path: Path) -> None:
    """`autolog ui` opened on an empty store, then a training started: its run shows up, its
    project joins the picker, and once it logs metrics they become the table's default
    columns, with no reload."""
    store = tmp_path / "autolog-runs"
    store.mkdir()
    server = UiServer(store, tmp_path / "ui.log")
    run = LiveRun(store, FIRST.replace("GO", repr(str(tmp_path / "go"))))
    try:
        watch = Watch(page, server.base)
        page.goto(server.url)
        page.wait_for_url(server.base + "/")
        link = page.locator(f"tr[data-run='{run.id}'] a.run-link")
        expect(link).to_have_text("first-run", timeout=15_000)  # the table polls every 3 s
        # the project picker, empty when the page opened, has the run's project
        expect(page.locator(".project-picker option", has_text="fresh (1)")).to_have_count(1)
        assert page.locator("th[data-col^='metrics.']").count() == 0  # no metric logged yet
        page.evaluate("() => { window.__notReloaded = true; }")
        (tmp_path / "go").touch()
        cell = page.locator(f"tr[data-run='{run.id}'] td[data-col='metrics.val_accuracy']")
        expect(cell).to_have_text(re.compile(r"^0\.5"), timeout=30_000)  # keys every 10 s
        headers = page.locator("th[data-col^='metrics.']")
        assert [h.get_attribute("data-col") for h in headers.all()] == [
            "metrics.val_accuracy", "metrics.train_loss"]  # validation quality first
        assert page.evaluate("() => window.__notReloaded") is True
        assert "cols=" not in page.url  # still the defaults, not a pick
        assert not watch.problems, watch.problems
    finally:
        run.kill()
        server.stop()


QUICK = r"""
import autolog
with autolog.start_run("quick-fit", project="quick") as run:
    run.log_metrics({"train_loss": 0.5, "val_loss": 0.25}, step=1)
print(run.id)
"""


def test_a_run_that_ended_before_the_table_saw_it_still_brings_its_metrics(
        page: Page, tmp_path: Path) -> None:
    """A short fit, started and ended between two polls of a table opened on an empty store:
    the table never sees it RUNNING, yet its metrics become the default columns."""
    store = tmp_path / "autolog-runs"
    store.mkdir()
    server = UiServer(store, tmp_path / "ui.log")
    try:
        watch = Watch(page, server.base)
        page.goto(server.url)
        page.wait_for_url(server.base + "/")
        expect(page.get_by_role("heading", name="No runs yet")).to_be_visible()
        page.evaluate("() => { window.__notReloaded = true; }")
        done = subprocess.run([sys.executable, "-c", QUICK], env=clean_env(store),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        run_id = done.stdout.split()[-1]
        cell = page.locator(f"tr[data-run='{run_id}'] td[data-col='metrics.val_loss']")
        expect(cell).to_have_text("0.25", timeout=15_000)
        headers = page.locator("th[data-col^='metrics.']")
        assert [h.get_attribute("data-col") for h in headers.all()] == [
            "metrics.val_loss", "metrics.train_loss"]
        expect(page.locator(".project-picker option", has_text="quick (1)")).to_have_count(1)
        assert page.evaluate("() => window.__notReloaded") is True
        assert not watch.problems, watch.problems
    finally:
        server.stop()
