"""Compare: runs picked in the table, overlaid charts holding each run's points, x-axis and
smoothing, zoom that asks the server for the range, "only differences", parallel coordinates."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

import autolog

from .conftest import go, shot
from .pages import chart_lines, wait_chart

pytestmark = pytest.mark.slow


def open_compare(ui: Page, ids: dict[str, str], names: list[str]) -> None:
    go(ui, "/p/vision")
    for name in names:
        ui.locator(f"tr[data-run='{ids[name]}'] input[type=checkbox]").check()
    ui.get_by_role("button", name=f"Compare ({len(names)})").click()
    ui.wait_for_url("**/compare?runs=*")


def test_compare_overlays_the_runs(ui: Page, ui_dir: Path, ids: dict[str, str]) -> None:
    names = ["resnet-a", "resnet-b", "resnet-c"]
    open_compare(ui, ids, names)
    assert ui.url.split("runs=")[1].split("&")[0].split(",") == [ids[n] for n in names]
    lines = chart_lines(ui, "loss")
    assert [line["label"] for line in lines] == names
    for line, name in zip(lines, names, strict=True):
        history = autolog.get_run(ids[name], ui_dir).history("loss")
        assert line["runId"] == ids[name]
        assert line["steps"] == [s for s, _, _ in history]
        assert line["values"] == pytest.approx([v for _, v, _ in history])
    legend = ui.locator(".chart", has_text="loss").first.locator(".legend-row")
    expect(legend).to_have_count(3)
    expect(legend.nth(1)).to_contain_text("resnet-b")
    expect(ui.locator("svg.parcoords .pc-line")).to_have_count(3)
    # the cursor moves on every chart at once; each legend names the value under it
    over = ui.locator(".chart", has_text="loss").first.locator(".u-over")
    box = over.bounding_box()
    assert box is not None
    ui.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    ui.wait_for_function("() => window.__autolog.charts['accuracy'].uplot.cursor.idx != null")
    head = ui.locator(".chart", has_text="accuracy").first.locator(".legend-x")
    expect(head).to_contain_text("step")
    step = int(head.inner_text().split()[-1])
    value = ui.locator(".chart", has_text="accuracy").first.locator(".legend-value").nth(0)
    expected = dict((s, v) for s, v, _ in autolog.get_run(ids["resnet-a"], ui_dir)
                    .history("accuracy"))[step]
    assert float(value.inner_text()) == pytest.approx(expected, rel=1e-4)
    shot(ui, "compare")


def test_only_differences_hides_equal_params(ui: Page, ids: dict[str, str]) -> None:
    go(ui, f"/compare?runs={ids['resnet-b']},{ids['resnet-c']}")
    table = ui.locator("table.diff")
    expect(table.locator("tr[data-key='params.lr']")).to_be_visible()
    expect(table.locator("tr[data-key='params.optimizer']")).to_have_count(0)  # adam twice
    expect(table.locator("tr[data-key='params.epochs']")).to_have_count(0)
    ui.get_by_label("only differences").uncheck()
    expect(table.locator("tr[data-key='params.epochs']")).to_be_visible()
    expect(table.locator("tr[data-key='params.optimizer'] td.differs")).to_have_count(0)
    assert "diff=0" in ui.url


def test_the_table_leads_with_metrics_and_each_axis_spreads(ui: Page, ui_dir: Path,
                                                           ids: dict[str, str]) -> None:
    """The side-by-side table starts with the metrics; parallel coordinates draw the params
    that take two values or more, and nothing across runs that share none (an estimator's
    params against a hand-made run's)."""
    names = ["resnet-a", "resnet-b", "resnet-c"]
    go(ui, f"/compare?runs={','.join(ids[n] for n in names)}")
    table = ui.locator("table.diff")
    expect(table.locator("tr.group-row").first).to_have_text("metrics (last)")
    runs = [autolog.get_run(ids[n], ui_dir) for n in names]
    spread = sorted(k for k in runs[0].params if len({str(r.params.get(k)) for r in runs}) > 1)
    assert spread == ["lr", "model.depth", "optimizer"]  # epochs and model.width are shared
    axes = ui.locator("svg.parcoords g.axis")
    expect(axes).to_have_count(len(spread) + 1)  # and the metric's
    labels = [axes.nth(i).locator("title").first.text_content() or ""
              for i in range(len(spread))]
    assert [label.removesuffix(" (log)") for label in labels] == spread  # lr spans decades
    go(ui, f"/compare?runs={ids['resnet-a']},{ids['grid-search']}")
    expect(ui.locator(".parcoords-box")).to_contain_text("No param takes two values")


def test_x_axis_smoothing_and_zoom(ui: Page, ids: dict[str, str]) -> None:
    go(ui, f"/compare?runs={ids['resnet-a']},{ids['resnet-b']}")
    chart_lines(ui, "loss")
    series = "k => window.__autolog.charts[k].uplot.series.length"
    assert ui.evaluate(series, "loss") == 3  # x + one line per run
    ui.get_by_label("x-axis").select_option("rel")
    ui.wait_for_url("**x=rel*")
    ui.locator("input[type=range]").fill("0.6")
    ui.wait_for_function(f"() => ({series})('loss') === 5")  # raw lines kept behind
    ui.get_by_label("x-axis").select_option("step")
    ui.wait_for_url("**x=step*")
    # drag across the middle of the loss chart: the server is asked for that step range
    over = ui.locator(".chart", has_text="loss").first.locator(".u-over")
    box = over.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    ui.mouse.move(box["x"] + box["width"] * 0.3, y)
    ui.mouse.down()
    ui.mouse.move(box["x"] + box["width"] * 0.6, y, steps=5)
    ui.mouse.up()
    ui.wait_for_url("**zoom=*")
    low, high = (int(v) for v in parse_qs(urlsplit(ui.url).query)["zoom"][0].split(","))
    assert 0 < low < high < 29
    wait_chart(ui, "loss", f"lines.length === 2 && lines.every(l => l.steps[0] >= {low} - 1 "
               f"&& l.steps[l.steps.length - 1] <= {high} + 1)")
    over.dblclick()
    ui.wait_for_function("() => !location.search.includes('zoom=')")
    wait_chart(ui, "loss", "lines.every(l => l.steps.length === 30)")


def test_compare_needs_two_runs(ui: Page, ids: dict[str, str]) -> None:
    go(ui, f"/compare?runs={ids['resnet-a']}")
    expect(ui.get_by_role("heading", name="Compare runs")).to_be_visible()
    expect(ui.locator("main")).to_contain_text("Pick 2 to 50 runs")
