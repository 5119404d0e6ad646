"""Rename, tag, note, delete and restore from the pages: written through PATCH (with the CSRF
header), kept after a reload, and in the journal (autolog.get_run reads them back)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

import autolog

from .conftest import go
from .pages import table_ids

pytestmark = pytest.mark.slow


def test_rename_tag_and_note_persist(ui: Page, ui_dir: Path, ids: dict[str, str]) -> None:
    run_id = ids["edit-me"]
    go(ui, f"/r/{run_id}")
    ui.get_by_role("button", name="Rename").click()
    ui.get_by_label("New name").fill("edited-name")
    ui.get_by_role("button", name="Save", exact=True).click()
    expect(ui.locator("h1")).to_have_text("edited-name")
    ui.get_by_label("New tag (key=value)").fill("reviewed=yes")
    ui.get_by_role("button", name="Add tag").click()
    expect(ui.locator("[data-tag='reviewed']")).to_contain_text("reviewed=yes")
    ui.get_by_role("button", name="Remove tag team").click()
    expect(ui.locator("[data-tag='team']")).to_have_count(0)
    ui.get_by_role("button", name="Add a note").click()
    ui.get_by_role("textbox", name="Note").fill("lr too high;\nretry with 0.01")
    ui.get_by_role("button", name="Save note").click()
    expect(ui.locator(".note")).to_have_text("lr too high;\nretry with 0.01")

    ui.reload()
    expect(ui.locator("h1")).to_have_text("edited-name")
    expect(ui.locator("[data-tag='reviewed']")).to_contain_text("reviewed=yes")
    expect(ui.locator("[data-tag='team']")).to_have_count(0)
    expect(ui.locator(".note")).to_have_text("lr too high;\nretry with 0.01")
    record = autolog.get_run(run_id, ui_dir)  # the journal is the source of truth
    assert record.name == "edited-name"
    assert record.tags.get("reviewed") == "yes" and "team" not in record.tags
    assert record.note == "lr too high;\nretry with 0.01"


def test_delete_then_restore(ui: Page, ui_dir: Path, ids: dict[str, str]) -> None:
    run_id = ids["resnet-d"]
    go(ui, f"/r/{run_id}")
    ui.once("dialog", lambda dialog: dialog.accept())
    ui.get_by_role("button", name="Delete").click()
    expect(ui.locator(".notice")).to_contain_text("This run is deleted")
    ui.reload()
    expect(ui.locator(".notice")).to_contain_text("This run is deleted")
    assert autolog.get_run(run_id, ui_dir).deleted

    go(ui, "/p/vision")
    ui.locator("tr[data-run]").first.wait_for()
    assert run_id not in table_ids(ui)
    ui.get_by_label("Deleted").check()
    row = ui.locator(f"tr[data-run='{run_id}']")
    expect(row).to_be_visible()
    row.get_by_role("button", name="Restore").click()
    expect(row).to_have_count(0)  # no longer among the deleted
    ui.get_by_label("Deleted").uncheck()
    expect(ui.locator(f"tr[data-run='{run_id}']")).to_be_visible()
    assert not autolog.get_run(run_id, ui_dir).deleted
