"""The run page: charts hold the logged points, params grouped, context, hardware charts,
the artifact browser's previews, the model snippet, the children table, CRASHED."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

import autolog

from .conftest import frames, go, record_frames, shot, slowed
from .pages import chart_keys, chart_lines

pytestmark = pytest.mark.slow


def by_name(store: Path, prefix: str) -> autolog.RunRecord:
    return next(r for r in autolog.list_runs(store) if r.name.startswith(prefix))


def test_each_metric_charts_every_logged_point(ui: Page, ui_dir: Path) -> None:
    keras = by_name(ui_dir, "Sequential")
    go(ui, f"/r/{keras.id}")
    expect(ui.locator("h1")).to_have_text(keras.name)
    expect(ui.locator(".run-head .status")).to_have_text("FINISHED")
    metrics = {k for k in keras.metric_keys if not k.startswith("system/")}
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= metrics
    for key in sorted(metrics):
        lines = chart_lines(ui, key)
        assert len(lines) == 1 and lines[0]["runId"] == keras.id
        history = keras.history(key)
        assert lines[0]["steps"] == [step for step, _, _ in history]
        assert lines[0]["values"] == pytest.approx([value for _, value, _ in history])
        assert lines[0]["downsampled"] is False
    assert chart_keys(ui) == metrics  # one chart per metric, no hardware chart here
    expect(ui.locator(".metric-summary tbody tr")).to_have_count(len(metrics))
    shot(ui, "run")


def test_a_metric_logged_once_is_a_value_not_a_chart(ui: Page, ui_dir: Path,
                                                     ids: dict[str, str]) -> None:
    """A scikit-learn fit logs each training score once: no chart of one dot each, the
    summary table holds the values, and the page says so."""
    run = autolog.get_run(ids["grid-search"], ui_dir)
    metrics = {k for k in run.metric_keys if not k.startswith("system/")}
    assert metrics and all(len(run.history(k)) == 1 for k in metrics)
    go(ui, f"/r/{run.id}")
    note = ui.locator(".charts-once")
    expect(note).to_have_text(f"{len(metrics)} metrics logged once, so not charted: their "
                              "values are in the summary below.")
    expect(ui.locator(".chart")).to_have_count(0)
    summary = ui.locator(".metric-summary tbody tr")
    expect(summary).to_have_count(len(metrics))
    for row in summary.all():  # each value once, with its one point
        key = row.locator("td").first.inner_text()
        last, points = row.locator("td.num").first, row.locator("td.num").last
        assert float(last.inner_text()) == pytest.approx(run.metrics[key], rel=1e-4)
        expect(points).to_have_text("1")


def test_hardware_charts_are_grouped(ui: Page, ui_dir: Path) -> None:
    keras = by_name(ui_dir, "Sequential")
    system = {k for k in keras.metric_keys if k.startswith("system/")}
    assert "system/cpu_percent" in system
    go(ui, f"/r/{keras.id}?tab=hardware")
    ui.locator(".grid-head").first.wait_for()
    headings = ui.locator(".grid-head").all_inner_texts()
    assert headings[:4] == ["CPU", "Memory", "Disk", "Network"]
    lines = chart_lines(ui, "system/memory_used_bytes")
    assert lines[0]["values"] == pytest.approx(
        [v for _, v, _ in keras.history("system/memory_used_bytes")])
    ui.wait_for_function("n => Object.keys(window.__autolog.charts).length === n",
                         arg=len(system))
    expect(ui.locator(".chart", has_text="system/memory_used_bytes")).to_contain_text("GiB")
    shot(ui, "hardware")


def test_params_grouped_tags_and_context(ui: Page, ui_dir: Path, ids: dict[str, str]) -> None:
    run = autolog.get_run(ids["resnet-b"], ui_dir)
    go(ui, f"/r/{run.id}")
    group = ui.locator("table.params tr.group")
    expect(group).to_have_text("model")
    expect(ui.locator("tr[data-param='model.depth'] th")).to_have_text("depth")
    expect(ui.locator("tr[data-param='model.depth'] td")).to_have_text(
        str(run.params["model.depth"]))
    expect(ui.locator("tr[data-param='lr'] td")).to_have_text("0.01")
    expect(ui.locator("[data-tag='team']")).to_contain_text("team=vision")
    context = ui.locator("section[aria-label='Context']")
    expect(context).to_contain_text(run.tags["autolog.python.version"])
    expect(context).to_contain_text(run.tags["autolog.host"])
    context.locator("summary", has_text="requirements.txt").click()
    expect(context.locator("details pre")).not_to_be_empty()


def test_a_runs_many_long_tags_stay_in_their_column(ui: Page, ui_dir: Path,
                                                     ids: dict[str, str]) -> None:
    """An autologged run carries a dozen long tags (dataset fingerprints, the estimator's
    class): they wrap within the side column, over the charts of none, and the page does not
    scroll sideways."""
    run = autolog.get_run(ids["grid-search"], ui_dir)
    listed = [k for k in run.tags if not k.startswith("autolog.")]
    assert len(listed) >= 6 and any(len(f"{k}={v}") > 40 for k, v in run.tags.items()
                                     if k in listed)
    go(ui, f"/r/{run.id}")
    tags = ui.locator(".tag-list .tag")
    expect(tags).to_have_count(len(listed))
    side = ui.locator(".run-side").bounding_box()
    assert side is not None
    left, right = side["x"] - 1, side["x"] + side["width"] + 1
    for box in (tag.bounding_box() for tag in tags.all()):
        assert box is not None
        assert left <= box["x"] and box["x"] + box["width"] <= right
    assert ui.evaluate("() => document.documentElement.scrollWidth <= "
                       "document.documentElement.clientWidth")


def test_artifacts_preview_inline(ui: Page, ids: dict[str, str]) -> None:
    go(ui, f"/r/{ids['resnet-a']}?tab=files")
    files = ui.locator(".file-list")
    for name in ("confusion.png", "predictions.csv", "config.json", "README.md"):
        expect(files).to_contain_text(name)
    files.get_by_text("confusion.png").click()
    image = ui.locator(".preview img")
    expect(image).to_be_visible()
    ui.wait_for_function("() => document.querySelector('.preview img').naturalWidth === 48")
    shot(ui, "files")
    files.get_by_text("predictions.csv").click()
    expect(ui.locator(".preview table.csv td", has_text="dog, big")).to_be_visible()
    files.get_by_text("config.json").click()
    expect(ui.locator(".preview pre.json")).to_contain_text('"layers": [')
    files.get_by_text("README.md").click()
    expect(ui.locator(".preview .markdown h3")).to_have_text("Results")
    expect(ui.locator(".preview .markdown strong")).to_have_text("best")
    expect(ui.locator(".preview .markdown")).to_contain_text("<script>")  # as text
    assert ui.locator(".preview script").count() == 0
    assert ui.evaluate("() => window.pwned") is None


# The document top and height of each chart and of the section under the charts, and whether
# the chart still waits for its points.
CHART_ROW = """() => {
  const place = (el) => { const r = el.getBoundingClientRect();
                          return [Math.round(r.top + scrollY), Math.round(r.height)]; };
  const row = Array.from(document.querySelectorAll('figure.chart'),
                         (f) => [f.querySelector('.chart-title').textContent, ...place(f),
                                 f.getAttribute('aria-busy') === 'true']);
  const summary = document.querySelector('.metric-summary');
  if (summary) row.push(['summary', ...place(summary.closest('section')), false]);
  return row;
}"""


def test_the_charts_keep_their_place_as_their_points_load(ui: Page, ui_dir: Path) -> None:
    """A chart waiting for its points is as tall as once drawn (its plot, a legend row per
    run): neither the charts nor the metrics summary under them move when the points come."""
    keras = by_name(ui_dir, "Sequential")
    slowed(ui, "**/api/v1/histories**", 0.5)
    record_frames(ui, CHART_ROW)
    go(ui, f"/r/{keras.id}")
    expect(ui.locator("figure.chart[aria-busy='true']")).to_have_count(0)
    expect(ui.locator("figure.chart canvas").first).to_be_visible()
    places: dict[str, set[tuple[int, int]]] = {}
    waited: set[str] = set()
    for row in frames(ui):
        for name, top, height, busy in row:
            places.setdefault(name, set()).add((top, height))
            if busy:
                waited.add(name)
    assert {"loss", "val_loss"} <= waited, waited  # seen waiting for their points, then drawn
    moved = {name: sorted(place) for name, place in places.items() if len(place) > 1}
    assert not moved, moved


# The visible run tabs with their left edge (none while the tab bar is hidden).
TAB_ROW = """() => {
  const nav = document.querySelector('nav.tabs');
  if (!nav || getComputedStyle(nav).visibility === 'hidden') return null;
  return Array.from(nav.querySelectorAll('a'),
                    (a) => [a.textContent, a.getBoundingClientRect().left]);
}"""


def test_the_tabs_do_not_move_as_the_page_loads(ui: Page, ui_dir: Path) -> None:
    """A search's parent run has media (its evaluation plots), a model and children. Its media
    keys come slower than the run: the tabs show once they are known, so a Media tab that came
    in later never moves Children from under a click aimed at it."""
    search = next(r for r in autolog.list_runs(ui_dir)
                  if r.name.startswith("GridSearchCV") and r.parent_id is None)
    slowed(ui, "**/api/v1/runs/*/media/keys", 0.5)
    record_frames(ui, TAB_ROW)
    go(ui, f"/r/{search.id}?tab=model")
    expect(ui.locator("nav.tabs a", has_text="Media")).to_be_visible()
    expect(ui.locator("nav.tabs a", has_text="Children")).to_be_visible()
    drawn = frames(ui)
    assert len(drawn) == 1, drawn  # drawn once, with every tab in its place
    names = [name for name, _ in drawn[0]]
    assert names[0] == "Overview" and names[1].startswith("Media"), names
    assert names[-1].startswith("Children"), names


def test_model_and_children(ui: Page, ui_dir: Path) -> None:
    runs = autolog.list_runs(ui_dir)
    search = next(r for r in runs if r.name.startswith("GridSearchCV") and r.parent_id is None)
    children = [r for r in runs if r.parent_id == search.id]
    go(ui, f"/r/{search.id}?tab=model")
    assert search.models, "GridSearchCV saved no model"
    expect(ui.locator(".code-block")).to_contain_text(f'autolog.load_model("{search.id}")')
    expect(ui.locator("section").first).to_contain_text(str(search.models["model"]["flavor"]))
    ui.locator("nav.tabs a", has_text="Children").click()
    rows = ui.locator("table.children-table tbody tr")
    expect(rows).to_have_count(len(children))
    ui.locator("table.children-table th button", has_text="C").first.click()
    ui.locator("table.children-table th[aria-sort='ascending']", has_text="C").wait_for()
    expect(rows.first).to_have_attribute(
        "data-run", min(children, key=lambda r: float(r.params["C"])).id)
    ui.locator("table.children-table th button", has_text="C").first.click()
    ui.locator("table.children-table th[aria-sort='descending']", has_text="C").wait_for()
    expect(rows.first).to_have_attribute(
        "data-run", max(children, key=lambda r: float(r.params["C"])).id)


def test_a_crashed_run_says_so(ui: Page, ids: dict[str, str]) -> None:
    go(ui, f"/r/{ids['crashed']}")
    expect(ui.locator(".run-head .status")).to_have_text("CRASHED")
    expect(ui.locator(".run-meta")).to_contain_text("died")
    lines = chart_lines(ui, "loss")
    assert len(lines[0]["steps"]) == 200


def test_a_spike_survives_downsampling(ui: Page, ids: dict[str, str]) -> None:
    go(ui, f"/r/{ids['spiky']}")
    line = chart_lines(ui, "loss")[0]
    assert line["downsampled"] is True
    assert len(line["steps"]) <= 1000
    assert max(line["highs"]) == 50.0  # the envelope holds the one spike among 20,000 points
    assert min(line["lows"]) == 1.0
    assert line["steps"][-1] == 19_999


def test_an_api_error_is_said_not_blank(ui: Page) -> None:
    ui.route("**/api/v1/runs?*", lambda route: route.fulfill(
        status=500, content_type="application/json", body='{"detail": "database is on fire"}'))
    go(ui, "/")
    error = ui.get_by_role("alert")
    expect(error).to_contain_text("Could not load the runs")
    expect(error).to_contain_text("500 database is on fire")
    ui.unroute("**/api/v1/runs?*")
    error.get_by_role("button", name="Try again").click()
    expect(ui.locator("tr[data-run]").first).to_be_visible()
