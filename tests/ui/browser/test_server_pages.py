"""The same pages on `autolog server`: no token -> the login form; a wrong token is refused;
a read token shows runs but cannot change them; a write token can (with the CSRF header)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from ...helpers import clean_env
from ...server.live import LiveServer

pytestmark = pytest.mark.slow

RECORD = r'''
import autolog
with autolog.start_run("served-run", project="remote", tags={"team": "infra"}) as run:
    run.log_params({"lr": 0.01})
    for step in range(20):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
'''


def token(server: LiveServer, name: str, scope: str) -> str:
    """A token made the way an admin makes one: `autolog server token create`."""
    done = subprocess.run([sys.executable, "-m", "autolog.server", "token", "create", name,
                           "--scope", scope, "--db", server.db_url], capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    workdir = tmp_path_factory.mktemp("served")
    server = LiveServer(f"sqlite:///{workdir / 'autolog.db'}", workdir).start()
    tokens = {scope: token(server, f"{scope}-user", scope) for scope in ("read", "write")}
    env = clean_env(workdir / "runs", AUTOLOG_BACKEND="http", AUTOLOG_HTTP_URL=server.url,
                    AUTOLOG_HTTP_TOKEN=tokens["write"])
    subprocess.run([sys.executable, "-c", RECORD], env=env, check=True, timeout=120,
                   capture_output=True)
    runs = requests.get(server.url + "/api/v1/runs", timeout=10,
                        headers={"Authorization": f"Bearer {tokens['read']}"}).json()["runs"]
    assert [r["name"] for r in runs] == ["served-run"]
    tokens["run"] = runs[0]["id"]
    yield server, tokens
    server.stop()


def sign_in(browser: Browser, server: LiveServer, secret: str | None) -> Page:
    page = browser.new_context().new_page()
    page.goto(server.url + "/")
    page.wait_for_url("**/login**")  # the app meets a 401 and goes to the server's form
    if secret is not None:
        page.get_by_label("Token").fill(secret)
        page.get_by_role("button", name="Sign in").click()
    return page


def patch_status(page: Page, run_id: str, csrf: bool) -> int:
    """PATCH the run from inside the page, as the app does (cookie; CSRF header or not)."""
    status: int = page.evaluate(
        """async ([id, csrf]) => {
            const session = await (await fetch('/api/v1/session')).json();
            const headers = {'Content-Type': 'application/json'};
            if (csrf) headers['X-CSRF-Token'] = session.csrf;
            const r = await fetch('/api/v1/runs/' + id, {method: 'PATCH', headers,
                                  body: JSON.stringify({name: 'renamed-from-page'})});
            return r.status; }""", [run_id, csrf])
    return status


def test_no_token_gets_the_login_form(browser: Browser, served: tuple[LiveServer, dict]) -> None:
    server, _ = served
    page = sign_in(browser, server, None)
    expect(page.get_by_label("Token")).to_be_visible()
    assert requests.get(server.url + "/api/v1/runs", timeout=10).status_code == 401
    page.get_by_label("Token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked")
    page.goto(server.url + "/r/" + served[1]["run"])
    page.wait_for_url("**/login**")  # still nothing without a valid token
    page.context.close()


def test_a_read_token_reads_but_cannot_write(browser: Browser,
                                             served: tuple[LiveServer, dict]) -> None:
    server, tokens = served
    page = sign_in(browser, server, tokens["read"])
    page.wait_for_url(server.url + "/")
    expect(page.locator("tr[data-run] a.run-link")).to_have_text(["served-run"])
    expect(page.locator(".who")).to_contain_text("read-only")
    page.locator("a.run-link").click()
    expect(page.locator("h1")).to_have_text("served-run")
    expect(page.get_by_role("button", name="Rename")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    assert patch_status(page, tokens["run"], csrf=True) == 403
    page.context.close()


def test_a_write_token_writes_with_the_csrf_header(browser: Browser,
                                                   served: tuple[LiveServer, dict]) -> None:
    server, tokens = served
    page = sign_in(browser, server, tokens["write"])
    page.wait_for_url(server.url + "/")
    assert patch_status(page, tokens["run"], csrf=False) == 403  # the cookie alone is not enough
    page.goto(f"{server.url}/r/{tokens['run']}")
    page.get_by_role("button", name="Rename").click()
    page.get_by_label("New name").fill("served-and-renamed")
    page.get_by_role("button", name="Save", exact=True).click()
    page.reload()
    expect(page.locator("h1")).to_have_text("served-and-renamed")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login**")
    page.goto(server.url + "/")
    page.wait_for_url("**/login**")
    page.context.close()
