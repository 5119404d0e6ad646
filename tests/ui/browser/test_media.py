"""The media views, through the page, on a store real code made (``media_store.py``): images
over steps (the slider changes the image), histograms over steps, a sortable virtualized
table, texts, evaluation plots drawn from their data (the confusion matrix's cells are
scikit-learn's), the console of a script under ``autolog run`` (and of a live run, growing),
the code it ran (the diff, the untracked files), and compare's media."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

import autolog

from .conftest import UiServer, Watch, frames, go, record_frames, shot, slowed
from .media_store import UTIL_AFTER, UTIL_BEFORE, LiveConsole, make_media_store

pytestmark = pytest.mark.slow
pytest.importorskip("sklearn")
pytest.importorskip("tqdm")

PIXEL = """sel => {
  const img = document.querySelector(sel);
  if (!img || !img.complete || !img.naturalWidth) return null;
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  return Array.from(ctx.getImageData(1, 1, 1, 1).data).slice(0, 3);
}"""


@pytest.fixture(scope="module")
def media_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("media")
    store = root / "autolog-runs"
    return store, make_media_store(store, root)


@pytest.fixture(scope="module")
def media_process(media_store: tuple[Path, dict[str, Any]],
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    server = UiServer(media_store[0], tmp_path_factory.mktemp("media-log") / "ui.log")
    yield server
    server.stop()


@pytest.fixture
def mui(page: Page, media_process: UiServer) -> Iterator[Page]:
    """A page signed in to `autolog ui` on the media store, the views' registry on."""
    page.add_init_script("localStorage.setItem('autolog.debug', '1')")
    watch = Watch(page, media_process.base)
    page.goto(media_process.url)
    page.wait_for_url(media_process.base + "/")
    yield page
    assert not watch.problems, watch.problems


@pytest.fixture
def store(media_store: tuple[Path, dict[str, Any]]) -> Path:
    return media_store[0]


@pytest.fixture
def ids(media_store: tuple[Path, dict[str, Any]]) -> dict[str, Any]:
    return media_store[1]


def view(page: Page, name: str, predicate: str = "true", timeout: float = 15_000) -> Any:
    """What the view ``name`` shows (its registry entry), once ``predicate`` (JS over ``v``)
    holds."""
    page.wait_for_function(
        f"n => {{ const r = window.__autolog && window.__autolog.media && "
        f"window.__autolog.media[n]; if (!r) return false; const v = r(); return {predicate}; }}",
        arg=name, timeout=timeout)
    return page.evaluate("n => JSON.parse(JSON.stringify(window.__autolog.media[n]()))", name)


def pixel_is(page: Page, selector: str, rgb: list[int]) -> None:
    page.wait_for_function(f"exp => JSON.stringify(({PIXEL})({json.dumps(selector)})) === "
                           "JSON.stringify(exp)", arg=rgb, timeout=10_000)


def red_at(step: int, shift: int = 0) -> list[int]:
    """The colour media_store's images have at ``step`` (red = 50 per 10 steps)."""
    return [50 * (step // 10) + shift, 0, 200]


# -- images, histograms, tables, texts -------------------------------------------------------------


def test_the_slider_steps_through_the_images(mui: Page, store: Path, ids: dict[str, Any]) -> None:
    record = autolog.get_run(ids["media-a"], store)
    logged = record.media_for("samples")
    go(mui, f"/r/{record.id}?tab=media")
    card = mui.locator("figure[data-key='samples']")
    image = "figure[data-key='samples'] img"
    shown = view(mui, "image:samples", "v.step !== null")
    assert shown["steps"] == [m.step for m in logged] == [0, 10, 20, 30, 40]
    assert shown["step"] == 40 and shown["path"] == logged[-1].path  # the last step first
    pixel_is(mui, image, red_at(40))
    slider = card.get_by_role("slider", name="Step of samples")
    slider.focus()
    mui.keyboard.press("Home")
    expect(card.locator(".step-value")).to_have_text("step 0")
    pixel_is(mui, image, red_at(0))
    assert view(mui, "image:samples")["path"] == logged[0].path
    mui.keyboard.press("ArrowRight")
    expect(card.locator(".step-value")).to_have_text("step 10")
    pixel_is(mui, image, red_at(10))
    card.get_by_role("button", name="Next step of samples").click()
    pixel_is(mui, image, red_at(20))
    expect(card.locator("img")).to_have_attribute("alt", "samples at step 20")
    slider.focus()
    mui.keyboard.press("End")
    pixel_is(mui, image, red_at(40))
    shot(mui, "media")


def test_histograms_over_steps(mui: Page, store: Path, ids: dict[str, Any]) -> None:
    record = autolog.get_run(ids["media-a"], store)
    logged = record.media_for("activations")
    files = [json.loads(record.artifact_path(m.path).read_text()) for m in logged]
    go(mui, f"/r/{record.id}?tab=media")
    shown = view(mui, "histogram:activations", "v.steps.length === 12 && v.selected !== null")
    assert shown["steps"] == [m.step for m in logged] == list(range(12))
    assert shown["counts"] == [f["counts"] for f in files]
    assert shown["edges"] == [f["edges"] for f in files]
    assert shown["selected"]["step"] == 11 and shown["selected"]["counts"] == files[11]["counts"]
    assert sum(files[11]["counts"]) == 2000
    card = mui.locator("figure[data-key='activations']")
    expect(card.locator(".media-stats")).to_contain_text("2,000 values")
    drawn = mui.evaluate("""() => { const c = document.querySelector(
        "figure[data-key='activations'] canvas.heatmap-canvas");
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n / (d.length / 4); }""")
    assert drawn > 0.2  # the heatmap is painted, not blank
    card.get_by_role("button", name="Previous step of activations").click()
    shown = view(mui, "histogram:activations", "v.selected && v.selected.step === 10")
    assert shown["selected"]["counts"] == files[10]["counts"]
    box = card.locator("canvas.heatmap-canvas").bounding_box()
    assert box is not None
    card.locator("canvas.heatmap-canvas").click(position={"x": 2, "y": box["height"] / 2})
    assert view(mui, "histogram:activations", "v.selected && v.selected.step === 0")


def test_the_table_sorts_and_scrolls_virtualized(mui: Page, store: Path,
                                                 ids: dict[str, Any]) -> None:
    record = autolog.get_run(ids["media-a"], store)
    data = json.loads(record.artifact_path(record.media_for("predictions")[0].path).read_text())
    rows = data["data"]
    assert data["columns"] == ["id", "label", "score"] and len(rows) == 3000
    go(mui, f"/r/{record.id}?tab=media")
    card = mui.locator("figure[data-key='predictions']")
    expect(card.locator(".media-aside")).to_contain_text("3,000 rows · 3 columns")
    body = card.locator("tbody tr[data-row]")
    expect(body.first).to_have_attribute("data-row", "0")
    assert 20 <= body.count() <= 120  # only the rows in view (and a few around) are in the page

    def first_ids(n: int) -> list[int]:
        cells = card.locator("tbody tr[data-row] td:nth-child(2)").all_inner_texts()
        return [int(t) for t in cells[:n]]

    card.get_by_role("button", name="score").click()
    expect(card.locator("th[aria-sort='ascending']")).to_contain_text("score")
    ascending = sorted(range(3000), key=lambda i: (rows[i][2], i))
    assert first_ids(5) == [rows[i][0] for i in ascending[:5]]
    card.get_by_role("button", name="score").click()
    expect(card.locator("th[aria-sort='descending']")).to_contain_text("score")
    descending = sorted(range(3000), key=lambda i: (-rows[i][2], i))
    assert first_ids(5) == [rows[i][0] for i in descending[:5]]
    card.locator(".vtable-box").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    last = card.locator("tbody tr[data-row]").last
    expect(last).to_have_attribute("data-row", str(descending[-1]))
    assert body.count() <= 120
    card.get_by_role("button", name="label").click()
    expect(body.first.locator("td").nth(2)).to_have_text("bird")


# The document top and height of every media card, and whether it is still loading.
CARD_ROW = """() => Array.from(document.querySelectorAll('figure.media-card'), (f) => {
  const r = f.getBoundingClientRect();
  return [f.dataset.key, Math.round((r.top + scrollY) * 10) / 10, Math.round(r.height * 10) / 10,
          !!f.querySelector('.loading')];
})"""


@pytest.mark.parametrize("run, keys", [
    ("media-a", ["samples", "activations", "predictions"]),
    ("classifier-a", ["training_confusion_matrix", "training_precision_recall_curve",
                      "training_roc_curve"]),
])
def test_nothing_moves_as_the_cards_load(mui: Page, ids: dict[str, Any], run: str,
                                         keys: list[str]) -> None:
    """Each card is as tall from the start as once drawn: as the files come in one by one
    (slowed here), no card moves and none changes height, so a click aimed at a table's
    header, or at a slider, lands on it (a click that did not, because the histogram above
    came in between the press and the release, is how this was found)."""
    slowed(mui, "**/api/v1/runs/*/media**", 0.15)
    slowed(mui, "**/api/v1/runs/*/files/**", 0.15)
    record_frames(mui, CARD_ROW)
    run_id = ids[run] if isinstance(ids[run], str) else ids[run]["id"]
    go(mui, f"/r/{run_id}?tab=media")
    mui.wait_for_function(f"""() => {{
      const keys = {json.dumps(keys)};
      const cards = keys.map((k) => document.querySelector(`figure[data-key="${{k}}"]`));
      return cards.every((c) => c && !c.querySelector('.loading'));
    }}""", timeout=30_000)
    places: dict[str, set[tuple[float, float]]] = {}
    states: dict[str, set[bool]] = {}
    for row in frames(mui):
        for key, top, height, pending in row:
            places.setdefault(key, set()).add((top, height))
            states.setdefault(key, set()).add(pending)
    for key in keys:
        assert states[key] == {True, False}, (key, states[key])  # seen loading, then drawn
    moved = {key: sorted(place) for key, place in places.items() if len(place) > 1}
    assert not moved, moved


def test_texts_over_steps(mui: Page, store: Path, ids: dict[str, Any]) -> None:
    go(mui, f"/r/{ids['media-a']}?tab=media")
    card = mui.locator("figure[data-key='samples_text']")
    card.scroll_into_view_if_needed()  # the last card: drawn once scrolled near
    expect(card.locator("pre.media-text")).to_have_text("and slept")
    card.get_by_role("slider", name="Step of samples_text").focus()
    mui.keyboard.press("Home")
    expect(card.locator("pre.media-text")).to_have_text("the cat sat")
    assert view(mui, "text:samples_text")["step"] == 0


# -- evaluation plots ----------------------------------------------------------------------------


def test_the_confusion_matrix_is_sklearns(mui: Page, store: Path, ids: dict[str, Any]) -> None:
    fit = ids["classifier-a"]
    go(mui, f"/r/{fit['id']}?tab=media")
    matrix = mui.locator("figure[data-key='training_confusion_matrix'] table.confusion-matrix")
    expect(matrix).to_be_visible()
    labels = fit["labels"]
    expect(matrix.locator("thead th[scope='col']")).to_have_text(labels)
    for i, true in enumerate(labels):
        for j, predicted in enumerate(labels):
            cell = matrix.locator(f"td[data-true='{true}'][data-predicted='{predicted}']")
            expect(cell).to_have_text(str(fit["matrix"][i][j]))
    total = sum(map(sum, fit["matrix"]))
    right = sum(fit["matrix"][i][i] for i in range(len(labels)))
    aside = mui.locator("figure[data-key='training_confusion_matrix'] .media-aside")
    expect(aside).to_contain_text(f"({right} of {total})")
    shot(mui, "media-plots")


def test_curves_are_drawn_from_their_data(mui: Page, store: Path, ids: dict[str, Any]) -> None:
    fit = ids["classifier-a"]
    record = autolog.get_run(fit["id"], store)
    go(mui, f"/r/{fit['id']}?tab=media")
    for key, x, y in (("training_roc_curve", "fpr", "tpr"),
                      ("training_precision_recall_curve", "recall", "precision")):
        data = json.loads(record.artifact_path(record.media_for(key)[0].path).read_text())
        shown = view(mui, f"plot:{key}", "v.series.length === 1")
        assert shown["series"][0]["xs"] == pytest.approx(data[x])
        assert shown["series"][0]["ys"] == pytest.approx(data[y])
    roc = mui.locator("figure[data-key='training_roc_curve']")
    expect(roc.locator(".media-aside")).to_contain_text(f"AUC {fit['auc']:.4g}")
    expect(roc.locator("canvas")).to_have_count(1)
    roc.get_by_role("button", name="PNG").click()  # the drawing, as the fallback
    drawing = roc.locator("img")
    expect(drawing).to_have_attribute("data-path", record.media_for("training_roc_curve")[0].image)
    mui.wait_for_function("el => el.complete && el.naturalWidth > 100",
                          arg=drawing.element_handle())


def test_regression_scatters(mui: Page, store: Path, ids: dict[str, Any]) -> None:
    fit = ids["regressor"]
    record = autolog.get_run(fit["id"], store)
    go(mui, f"/r/{fit['id']}?tab=media")
    data = json.loads(record.artifact_path(
        record.media_for("training_predicted_vs_true")[0].path).read_text())
    shown = view(mui, "plot:training_predicted_vs_true", "v.series.length === 1")
    assert len(shown["series"][0]["xs"]) == fit["points"] == 150
    assert shown["series"][0]["xs"] == pytest.approx(data["true"])
    assert shown["series"][0]["ys"] == pytest.approx(data["predicted"])
    residuals = view(mui, "plot:training_residuals", "v.series.length === 1")
    assert [t - p for t, p in zip(data["true"], data["predicted"], strict=True)] == pytest.approx(
        residuals["series"][0]["ys"])


# -- console and code ---------------------------------------------------------------------------


def launched(store: Path) -> autolog.RunRecord:
    return next(r for r in autolog.list_runs(store) if r.name == "launched")


def test_the_console_of_a_launched_script(mui: Page, store: Path) -> None:
    run = launched(store)
    logged = run.artifact_path("console.log").read_text().splitlines()
    go(mui, f"/r/{run.id}?tab=console")
    shown = view(mui, "console", f"v.lines === {len(logged)}")
    assert shown["first"] == logged[0] and shown["last"] == logged[-1]
    console = mui.locator(".console-view")
    bar = console.locator(".console-line", has_text="50/50")
    expect(bar).to_have_count(1)  # the progress bar, in its last state only
    expect(bar).to_have_class("console-line stderr")
    expect(bar).to_contain_text("100%|")
    # stdout and stderr are two pipes here: each stream keeps its order, not their interleaving
    expect(console.locator(".console-line:not(.stderr)").first).to_contain_text("loading data")
    search = mui.get_by_role("searchbox", name="Search the console")
    search.fill("EPOCH")
    expect(mui.locator(".console-count")).to_contain_text(f"3 of {len(logged)} lines")
    expect(console.locator(".console-line")).to_have_count(3)
    expect(console.locator("mark")).to_have_text(["epoch"] * 3)
    search.fill("")
    expect(console.locator(".console-line")).to_have_count(len(logged))
    shot(mui, "console")


def test_the_code_a_launched_script_ran(mui: Page, store: Path) -> None:
    run = launched(store)
    go(mui, f"/r/{run.id}?tab=code")
    diff = mui.locator("details[data-file='util.py']")
    expect(diff.locator("summary")).to_contain_text("+1 \N{MINUS SIGN}1")
    removed = UTIL_BEFORE.splitlines()[1]
    added = UTIL_AFTER.splitlines()[1]
    expect(diff.locator(".diff-del")).to_have_text(f"-{removed}\n")
    expect(diff.locator(".diff-add")).to_have_text(f"+{added}\n")
    expect(diff.locator(".diff-hunk")).to_have_count(1)
    expect(mui.locator("ul.untracked li")).to_have_text(["notes.txt"])
    expect(mui.locator("pre.entry-script")).to_contain_text("from tqdm import tqdm")
    expect(mui.locator("table.code-git")).to_contain_text(run.tags["autolog.git.commit"])
    shot(mui, "code")


def test_a_live_runs_console_grows(mui: Page, store: Path) -> None:
    live = LiveConsole(store)
    try:
        go(mui, "/p/media")  # the run shows up in the table (the index follows the store)
        expect(mui.locator(f"tr[data-run='{live.id}'] a.run-link")).to_have_text(
            "live-console", timeout=10_000)
        go(mui, f"/r/{live.id}?tab=console")
        expect(mui.locator(".run-head .status")).to_have_text("RUNNING")
        first = view(mui, "console", "v.lines >= 2")["lines"]
        mui.evaluate("() => { window.__notReloaded = true; }")
        grown = view(mui, "console", f"v.lines >= {first + 8}", timeout=10_000)
        assert mui.evaluate("() => window.__notReloaded") is True
        assert grown["follow"] is True
        lines = mui.locator(".console-view .console-text").all_inner_texts()
        assert lines[0] == live.id and len(lines) >= grown["lines"]  # what it printed first
        ticks = [int(t.split()[1]) for t in lines[1:]]
        assert ticks == list(range(len(ticks)))  # every line, in order, none twice
        assert mui.locator(".console-view").evaluate(  # followed: the last line in view
            "el => el.scrollHeight - el.scrollTop - el.clientHeight") < 40
    finally:
        live.kill()


# -- compare ---------------------------------------------------------------------------------------


def test_compare_shows_images_side_by_side(mui: Page, store: Path, ids: dict[str, Any]) -> None:
    a, b = ids["media-a"], ids["media-b"]
    go(mui, f"/compare?runs={a},{b}")
    shown = view(mui, "compare-image:samples", "v.cells.length === 2")
    assert shown["step"] == 40 and [c["runId"] for c in shown["cells"]] == [a, b]
    pixel_is(mui, f"figure[data-run='{a}'] img", red_at(40))
    pixel_is(mui, f"figure[data-run='{b}'] img", red_at(40, shift=1))
    slider = mui.get_by_role("slider", name="Step of samples")
    slider.focus()
    mui.keyboard.press("Home")
    assert view(mui, "compare-image:samples", "v.step === 0")["cells"][1]["step"] == 0
    pixel_is(mui, f"figure[data-run='{b}'] img", red_at(0, shift=1))
    assert "mstep=0" in mui.url  # the view is in the URL
    mui.locator(".compare-media-grid").first.scroll_into_view_if_needed()
    shot(mui, "compare-media")


def test_compare_overlays_the_curves(mui: Page, store: Path, ids: dict[str, Any]) -> None:
    a, b = ids["classifier-a"], ids["classifier-b"]
    go(mui, f"/compare?runs={a['id']},{b['id']}")
    roc = view(mui, "compare-plot:training_roc_curve", "v.series.length === 2")
    for fit, series in zip((a, b), roc["series"], strict=True):
        record = autolog.get_run(fit["id"], store)
        data = json.loads(record.artifact_path(
            record.media_for("training_roc_curve")[0].path).read_text())
        assert series["runId"] == fit["id"] and series["label"] == record.name
        assert series["xs"] == pytest.approx(data["fpr"])
        assert series["ys"] == pytest.approx(data["tpr"])
    assert view(mui, "compare-plot:training_precision_recall_curve", "v.series.length === 2")
    for fit in (a, b):
        cells = mui.locator(f"figure[data-run='{fit['id']}'] td[data-count]")
        expect(cells).to_have_text([str(n) for row in fit["matrix"] for n in row])
