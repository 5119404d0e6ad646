"""Browser tests: `autolog ui` (and `autolog server`) in a subprocess on a free loopback port,
Debian's Chromium driven by Playwright. A failing test leaves a screenshot of its page in
``test-artifacts/``; with ``UI_DOC_SCREENSHOTS=1`` the tests also write docs/images/ui-*.png."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright")
pytest.importorskip("fastapi")

from playwright.sync_api import Page

from ...helpers import ROOT
from .store import make_store

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
DOC_IMAGES = ROOT / "docs" / "images"
DOC_SHOTS = os.environ.get("UI_DOC_SCREENSHOTS") == "1"
AUTOLOG = [sys.executable, "-c", "import sys; from autolog.cli import main; sys.exit(main())"]

if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"no browser at {CHROMIUM}: apt-get install chromium", allow_module_level=True)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run",
                     "--disable-quic"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1400, "height": 900},
            "color_scheme": "light", "timezone_id": "UTC", "locale": "en-US"}


class UiServer:
    """``autolog ui --no-browser`` on a store; ``url`` is the address it printed (with token)."""

    def __init__(self, store: Path, log: Path):
        self.store = store
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOLOG_")}
        env["PYTHONUNBUFFERED"] = "1"
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [*AUTOLOG, "ui", "--no-browser", "--dir", str(store), "--port", "0"],
                stdout=out, stderr=subprocess.STDOUT, env=env)
        self.url = self._wait_for_url()
        self.base = self.url.split("/?", 1)[0]

    def _wait_for_url(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"http://\S+/\?token=\S+", self.log.read_text())
            if found:
                return found.group(0)
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"autolog ui did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    store = tmp_path_factory.mktemp("ui") / "autolog-runs"
    return store, make_store(store)


@pytest.fixture(scope="session")
def ui_process(trained_store: tuple[Path, dict[str, str]],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    server = UiServer(trained_store[0], tmp_path_factory.mktemp("ui-log") / "ui.log")
    yield server
    server.stop()


@pytest.fixture
def ui_dir(trained_store: tuple[Path, dict[str, str]]) -> Path:
    """The session's store."""
    return trained_store[0]


@pytest.fixture
def ids(trained_store: tuple[Path, dict[str, str]]) -> dict[str, str]:
    """Run ids by name for the hand-made runs, and "crashed"."""
    return trained_store[1]


class Watch:
    """What a page did that it must not: a request to another host, a CSP violation, an
    uncaught error."""

    def __init__(self, page: Page, origin: str):
        self.problems: list[str] = []
        page.on("request", lambda r: r.url.startswith((origin, "data:", "blob:"))
                or self.problems.append(f"request to {r.url}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("console", lambda m: m.type == "error" and "Content Security Policy" in m.text
                and self.problems.append(f"CSP: {m.text}"))


@pytest.fixture
def ui(page: Page, ui_process: UiServer) -> Iterator[Page]:
    """A page signed in to the session's `autolog ui` (the token URL sets the cookie), with the
    charts' debug registry on (window.__autolog)."""
    page.add_init_script("localStorage.setItem('autolog.debug', '1')")
    watch = Watch(page, ui_process.base)
    page.goto(ui_process.url)
    page.wait_for_url(ui_process.base + "/")
    yield page
    assert not watch.problems, watch.problems


def go(page: Page, path: str) -> None:
    """Navigate within the signed-in origin."""
    base = re.match(r"https?://[^/]+", page.url)
    assert base
    page.goto(base.group(0) + path)


def slowed(page: Page, pattern: str, seconds: float) -> None:
    """The page's requests to URLs matching ``pattern`` answered ``seconds`` late."""
    def late(route: Any) -> None:
        time.sleep(seconds)
        route.continue_()

    page.route(pattern, late)


_FRAMES = """(() => {
  const row = %s;
  window.__frames = [];
  const sample = () => {
    const now = row();
    const last = window.__frames[window.__frames.length - 1];
    if (now && now.length && JSON.stringify(now) !== JSON.stringify(last)) {
      window.__frames.push(now);
    }
    requestAnimationFrame(sample);
  };
  requestAnimationFrame(sample);
})();"""


def record_frames(page: Page, row: str) -> None:
    """From the next navigation on, each frame's ``row()`` (a JS function returning a list, or
    null to skip the frame), kept when it changed; :func:`frames` reads them back."""
    page.add_init_script(_FRAMES % row)


def frames(page: Page) -> list[Any]:
    return page.evaluate("window.__frames")


def shot(page: Page, name: str) -> None:
    """docs/images/ui-<name>.png, when the docs' screenshots are asked for."""
    if DOC_SHOTS:
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(300)
        page.screenshot(path=str(DOC_IMAGES / f"ui-{name}.png"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    page = getattr(item, "funcargs", {}).get("page")
    if report.failed and page is not None and report.when in ("call", "setup"):
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", item.nodeid.split("::", 1)[-1])
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        except Exception as exc:  # the page may be gone; the report says what failed anyway
            report.sections.append(("screenshot", f"none: {exc}"))
    return report


__all__ = ["UiServer", "go", "shot"]
