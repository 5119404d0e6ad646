"""A store with no runs: the page teaches the three lines that make one."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from .conftest import UiServer, shot

pytestmark = pytest.mark.slow


def test_an_empty_store_teaches(browser: Browser, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    server = UiServer(tmp_path / "empty", tmp_path / "ui.log")
    try:
        page = browser.new_context().new_page()
        page.goto(server.url)
        expect(page.get_by_role("heading", name="No runs yet")).to_be_visible()
        code = page.locator(".empty pre").inner_text()
        assert code.splitlines()[:2] == ["import autolog", "autolog.enable()"]
        shot(page, "empty")
        page.context.close()
    finally:
        server.stop()
