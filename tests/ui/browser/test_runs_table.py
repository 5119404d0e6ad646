"""The runs table against the Python reference (autolog.list_runs): listing, folding children,
sorting by a picked metric column, filtering, searching, the project picker, the URL."""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

import autolog
from autolog.headlines import headline

from ...helpers import clean_env
from .conftest import UiServer, go, shot
from .pages import table_ids, wait_table

pytestmark = pytest.mark.slow


def top_level(store: Path, project: str | None = None) -> list[autolog.RunRecord]:
    """Top-level, non-deleted runs, newest first: what the table shows by default."""
    return [r for r in autolog.list_runs(store, project)
            if r.parent_id is None and not r.deleted]


def test_lists_every_top_level_run_newest_first(ui: Page, ui_dir: Path) -> None:
    expected = sorted(top_level(ui_dir), key=lambda r: r.start_time, reverse=True)
    wait_table(ui, [r.id for r in expected])
    expect(ui.locator(".table-foot")).to_contain_text(f"{len(expected)} runs")
    crashed = next(r for r in expected if r.status == "CRASHED")
    expect(ui.locator(f"tr[data-run='{crashed.id}'] .status")).to_have_text("CRASHED")
    expect(ui.locator(f"tr[data-run='{crashed.id}'] .status")).to_have_class(
        "status status-crashed")


def test_children_fold_under_their_parent(ui: Page, ui_dir: Path) -> None:
    runs = autolog.list_runs(ui_dir)
    search = next(r for r in runs if r.name.startswith("GridSearchCV") and r.parent_id is None)
    children = {r.id for r in runs if r.parent_id == search.id}
    assert len(children) == 3
    row = ui.locator(f"tr[data-run='{search.id}']")
    expect(row.locator("button.expand")).to_contain_text("3")
    assert not children & set(table_ids(ui))
    row.locator("button.expand").click()
    ui.wait_for_function("n => document.querySelectorAll('tr.child-row').length === n", arg=3)
    shown = table_ids(ui)
    at = shown.index(search.id)
    assert set(shown[at + 1:at + 4]) == children  # right under the parent
    row.locator("button.expand").click()
    expect(ui.locator("tr.child-row")).to_have_count(0)


def sort_key(run: autolog.RunRecord, key: str) -> tuple[bool, float]:
    value = run.metrics.get(key)
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return (missing, 0.0 if missing else float(value))  # type: ignore[arg-type]


def default_columns(store: Path, project: str, parent: str | None = None) -> list[str]:
    """The reference for the columns shown before any is picked: the headline metrics of the
    newest 100 top-level runs (or children of ``parent``), those at least half of them have
    first."""
    listed = top_level(store, project) if parent is None else [
        r for r in autolog.list_runs(store, project) if r.parent_id == parent and not r.deleted]
    newest = sorted(listed, key=lambda r: r.start_time, reverse=True)[:100]
    counts = Counter(k for r in newest for k in r.metrics)
    ordered = headline(counts)
    shared = [k for k in ordered if 2 * counts[k] >= len(newest)]
    rest = [k for k in ordered if 2 * counts[k] < len(newest)]
    return [f"metrics.{key}" for key in (shared + rest)[:4]]


def test_the_metrics_the_runs_share_are_shown_until_columns_are_picked(ui: Page,
                                                                        ui_dir: Path) -> None:
    go(ui, "/p/vision")
    runs = top_level(ui_dir, "vision")
    expected = default_columns(ui_dir, "vision")
    assert set(expected[:2]) == {"metrics.loss", "metrics.accuracy"}  # every resnet logged them
    wait_table(ui, [r.id for r in sorted(runs, key=lambda r: r.start_time, reverse=True)])
    shown = ui.locator("th[data-col^='metrics.']")
    expect(shown).to_have_count(len(expected))
    assert [th.get_attribute("data-col") for th in shown.all()] == expected
    assert "cols=" not in ui.url
    expect(ui.get_by_role("button", name="Columns")).to_have_text(f"Columns ({len(expected)})")
    for run in runs:  # each cell holds the run's last value, or nothing
        for column in expected:
            cell = ui.locator(f"tr[data-run='{run.id}'] td[data-col='{column}']")
            value = run.metrics.get(column.removeprefix("metrics."))
            if value is None:
                expect(cell).to_have_text("")
            else:
                assert float(cell.inner_text().replace(",", "")) == pytest.approx(value,
                                                                                  rel=1e-4)
    shot(ui, "runs")
    # removing them all is a choice the URL keeps, through a reload
    ui.get_by_role("button", name="Columns").click()
    ui.get_by_role("button", name="Remove all").click()
    ui.get_by_role("button", name="Columns").click()
    expect(shown).to_have_count(0)
    assert "cols=none" in ui.url
    ui.reload()
    wait_table(ui, [r.id for r in sorted(runs, key=lambda r: r.start_time, reverse=True)])
    expect(shown).to_have_count(0)
    expect(ui.get_by_role("button", name="Columns")).to_have_text("Columns")


def test_switching_project_shows_its_own_defaults_from_the_first_rows(ui: Page,
                                                                      ui_dir: Path) -> None:
    """The rows of the project switched to are asked for with its own default columns, never
    with those of the project left (a fetch drawn once, then again)."""
    other = next(r.project for r in top_level(ui_dir) if r.name.startswith("GridSearchCV"))
    expected = default_columns(ui_dir, other)
    vision = default_columns(ui_dir, "vision")
    assert expected and expected != vision
    go(ui, "/p/vision")
    expect(ui.locator("th[data-col^='metrics.']")).to_have_count(len(vision))
    asked: list[str] = []
    ui.on("request", lambda request: asked.append(request.url)
          if "/api/v1/runs?" in request.url and f"project={other}" in request.url else None)
    ui.locator(".project-picker select").select_option(other)
    runs = sorted(top_level(ui_dir, other), key=lambda r: r.start_time, reverse=True)
    wait_table(ui, [r.id for r in runs])
    shown = ui.locator("th[data-col^='metrics.']")
    expect(shown).to_have_count(len(expected))
    assert [th.get_attribute("data-col") for th in shown.all()] == expected
    # long keys wrap in their headers: the defaults fit beside the tags, no sideways scroll
    assert ui.evaluate("() => { const box = document.querySelector('.table-box');"
                       " return box.scrollWidth <= box.clientWidth; }")
    assert asked
    for url in asked:
        columns = parse_qs(urlsplit(url).query)["columns"][0].split(",")
        assert columns == expected, url


def test_a_parents_children_show_their_own_headline_metrics(ui: Page, ui_dir: Path,
                                                            ids: dict[str, str]) -> None:
    search = autolog.get_run(ids["grid-search"], ui_dir)
    expected = default_columns(ui_dir, search.project, parent=search.id)
    assert "metrics.mean_test_score" in expected  # not the parent's training scores
    go(ui, f"/p/{search.project}?parent={search.id}")
    children = sorted((r for r in autolog.list_runs(ui_dir) if r.parent_id == search.id),
                      key=lambda r: r.start_time, reverse=True)
    wait_table(ui, [r.id for r in children])
    shown = ui.locator("th[data-col^='metrics.']")
    expect(shown).to_have_count(len(expected))
    assert [th.get_attribute("data-col") for th in shown.all()] == expected
    for run in children:
        cell = ui.locator(f"tr[data-run='{run.id}'] td[data-col='metrics.mean_test_score']")
        assert float(cell.inner_text()) == pytest.approx(run.metrics["mean_test_score"],
                                                         rel=1e-4)


def test_sort_by_a_picked_metric_column(ui: Page, ui_dir: Path) -> None:
    go(ui, "/p/vision?cols=none")
    runs = top_level(ui_dir, "vision")
    ui.get_by_role("button", name="Columns").click()
    ui.locator(".pick-metric", has_text="loss").get_by_label("last").check()
    ui.get_by_role("button", name="Columns").click()
    expect(ui.locator("th", has_text="loss")).to_be_visible()
    ui.locator("th button.sort", has_text="loss").click()  # ascending
    ascending = sorted(runs, key=lambda r: sort_key(r, "loss"))
    wait_table(ui, [r.id for r in ascending])
    assert "sort=metrics.loss" in ui.url and "cols=metrics.loss" in ui.url
    for run in ascending[:3]:
        cell = ui.locator(f"tr[data-run='{run.id}'] td.num").last
        assert float(cell.inner_text().replace(",", "")) == pytest.approx(run.metrics["loss"],
                                                                           rel=1e-4)
    ui.locator("th button.sort", has_text="loss").click()  # descending; missing still last
    with_loss = [r for r in runs if not sort_key(r, "loss")[0]]
    without = [r for r in runs if sort_key(r, "loss")[0]]
    descending = sorted(with_loss, key=lambda r: -r.metrics["loss"]) + without
    wait_table(ui, [r.id for r in descending][:len(with_loss)] + table_ids(ui)[len(with_loss):])
    assert table_ids(ui)[:len(with_loss)] == [r.id for r in descending][:len(with_loss)]


def test_sort_by_name_then_reload_keeps_the_view(ui: Page, ui_dir: Path) -> None:
    go(ui, "/?sort=name")
    expected = sorted(top_level(ui_dir), key=lambda r: r.name)
    wait_table(ui, [r.id for r in expected])
    expect(ui.locator("th[aria-sort='ascending']")).to_contain_text("Name")
    ui.reload()
    wait_table(ui, [r.id for r in expected])


def test_filter_expression_equals_the_reference(ui: Page, ui_dir: Path) -> None:
    expression = "params.lr >= 0.01 and status = FINISHED"
    ui.locator("tr[data-run]").first.wait_for()
    ui.keyboard.press("/")  # focuses the filter
    expect(ui.locator("#filter")).to_be_focused()
    ui.keyboard.type(expression)
    ui.keyboard.press("Enter")
    expected = [r for r in top_level(ui_dir)
                if isinstance(r.params.get("lr"), (int, float)) and r.params["lr"] >= 0.01
                and r.status == "FINISHED"]
    expected.sort(key=lambda r: r.start_time, reverse=True)
    assert len(expected) >= 2
    wait_table(ui, [r.id for r in expected])
    assert "filter=" in ui.url
    ui.reload()  # the URL holds the filter
    expect(ui.locator("#filter")).to_have_value(expression)
    wait_table(ui, [r.id for r in expected])
    ui.locator("#filter").press("Escape")  # clears it
    wait_table(ui, [r.id for r in sorted(top_level(ui_dir), key=lambda r: r.start_time,
                                         reverse=True)])


def test_filter_on_a_tag_and_a_metric(ui: Page, ui_dir: Path) -> None:
    go(ui, "/?filter=" + "tags.team%20%3D%20%22vision%22%20and%20metrics.loss%20%3C%201")
    expected = [r for r in top_level(ui_dir) if r.tags.get("team") == "vision"
                and r.metrics.get("loss") is not None and r.metrics["loss"] < 1]
    expected.sort(key=lambda r: r.start_time, reverse=True)
    wait_table(ui, [r.id for r in expected])


def test_a_bad_filter_points_at_its_column(ui: Page) -> None:
    ui.locator("#filter").fill("metrics.loss < ")
    ui.locator("#filter").press("Enter")
    error = ui.locator(".filter-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("column")
    caret_line = error.locator("pre").inner_text().split("\n")[1]
    assert caret_line.strip() == "^"
    assert len(caret_line) - 1 >= len("metrics.loss <")  # at the missing value, not before
    expect(ui.locator(".table-foot")).not_to_contain_text("Loading")  # no rows are coming
    shot(ui, "filter-error")


def test_search_and_the_project_picker(ui: Page, ui_dir: Path) -> None:
    ui.get_by_placeholder("Search").fill("RESNET")
    expected = [r for r in top_level(ui_dir) if "resnet" in r.name.lower()]
    expected.sort(key=lambda r: r.start_time, reverse=True)
    wait_table(ui, [r.id for r in expected])
    go(ui, "/")
    ui.locator(".project-picker select").select_option("speech")
    ui.wait_for_url("**/p/speech")
    wait_table(ui, [r.id for r in top_level(ui_dir, "speech")])


def test_unknown_page_and_run(ui: Page) -> None:
    go(ui, "/r/0123456789abcdef0123456789abcdef")
    expect(ui.get_by_role("heading", name="Not found")).to_be_visible()
    go(ui, "/nowhere/at/all")
    expect(ui.get_by_role("heading", name="Not found")).to_be_visible()


def test_the_persons_tags_come_before_the_recorded_ones(ui: Page, ui_dir: Path,
                                                        ids: dict[str, str]) -> None:
    """An autologged run tags what it was trained on (``dataset.*``) and the estimator; a tag
    the person set (here afterwards, with ``autolog tag``) is listed first, the recorded ones
    after it, dimmed, none hidden; autolog's context (``autolog.*``) is not among them."""
    run = autolog.get_run(ids["grid-search"], ui_dir)
    recorded = sorted(k for k in run.tags if k.startswith("dataset.") or k.startswith("estimator_"))
    assert recorded and run.tags["team"] == "tabular"
    wait_table(ui, [r.id for r in sorted(top_level(ui_dir), key=lambda r: r.start_time,
                                         reverse=True)])
    cell = ui.locator(f"tr[data-run='{run.id}'] .tags")
    expect(cell.locator(".tag").first).to_have_text("team=tabular")
    shown = cell.locator(".tag").evaluate_all("els => els.map(e => e.dataset.tag)")
    assert shown[0] == "team" and sorted(shown[1:]) == sorted(
        k for k in run.tags if not k.startswith("autolog.") and k != "team")
    assert set(recorded) <= set(shown[1:])
    expect(cell.locator(".tag-recorded")).to_have_count(len(shown) - 1)
    expect(cell.locator("[data-tag='team']")).to_have_class("tag")


MANY = r"""
import autolog
for i in range(200):
    with autolog.start_run(f"trial-{i:03d}", project="many") as run:
        run.log_params({"trial": i, "seed": i % 7})
        run.log_metrics({"score": i / 200}, step=0)
"""

IN_VIEW = """() => {
  const box = document.querySelector('.table-box').getBoundingClientRect();
  return [...document.querySelectorAll('tr[data-run]')].filter((tr) => {
    const r = tr.getBoundingClientRect();
    return r.top >= box.top && r.bottom <= box.bottom;
  }).map((tr) => tr.querySelector('a.run-link').textContent);
}"""


def test_picking_a_column_keeps_the_rows_where_they_are(page: Page, tmp_path: Path) -> None:
    """Scrolled down a long table, a column picked fills in beside the same rows: no jump to
    the top, no rows blanked while the new column loads."""
    store = tmp_path / "autolog-runs"
    done = subprocess.run([sys.executable, "-c", MANY], env=clean_env(store),
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    server = UiServer(store, tmp_path / "ui.log")
    try:
        page.goto(server.url)
        page.wait_for_url(server.base + "/")
        go(page, "/p/many")
        expect(page.locator("tr[data-run] a.run-link").first).to_have_text("trial-199")
        page.locator(".table-box").evaluate("el => { el.scrollTop = 3000; }")
        page.wait_for_function(f"() => ({IN_VIEW})().length > 5 && "
                               "!document.querySelector('.table-box .pending-row')")
        before = page.evaluate(IN_VIEW)
        assert "trial-199" not in before  # scrolled well past the first page's top
        page.evaluate("""() => { window.__blanked = 0; new MutationObserver((changes) => {
            for (const c of changes) for (const n of c.addedNodes)
              if (n.nodeType === 1 && n.matches('.pending-row')) window.__blanked++;
          }).observe(document.querySelector('.table-box'), {childList: true, subtree: true}); }""")
        page.get_by_role("button", name="Columns").click()
        page.get_by_role("dialog", name="Columns").get_by_label("seed").check()
        page.get_by_role("button", name="Columns").click()
        assert "cols=metrics.score%2Cparams.seed" in page.url or \
            "cols=metrics.score,params.seed" in page.url
        for name in before:  # each row in view gets its own seed, where it was
            i = int(name.removeprefix("trial-"))
            row = page.locator("tr[data-run]", has=page.locator("a.run-link", has_text=name))
            expect(row.locator("td[data-col='params.seed']")).to_have_text(str(i % 7))
        assert page.evaluate(IN_VIEW) == before
        assert page.locator(".table-box").evaluate("el => el.scrollTop") == 3000
        assert page.evaluate("() => window.__blanked") == 0
    finally:
        server.stop()
