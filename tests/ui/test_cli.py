"""``autolog ui`` as a real process, queried over HTTP on loopback."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import autolog

from ..helpers import clean_env
from ..server.live import free_port


class Ui:
    """``autolog ui`` in a subprocess; ``url`` is the one it printed (with the token)."""

    def __init__(self, store: Path, *args: str, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autolog.cli", "ui", "--dir", str(store), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env or clean_env(store))
        self.url = ""
        self.out: list[str] = []

    def wait_url(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"autolog ui exited: {self.proc.stderr.read()}")  # type: ignore[union-attr]
            self.out.append(line)
            found = re.search(r"http://\S+\?token=\S+", line)
            if found:
                self.url = found.group(0)
                return self.url
        raise AssertionError("no URL printed")

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        return self.proc.returncode, self.proc.stderr.read()  # type: ignore[union-attr]


@pytest.fixture
def ui_copy(ui_store: Path, tmp_path: Path) -> Path:
    root = tmp_path / "autolog-runs"
    shutil.copytree(ui_store, root, ignore=shutil.ignore_patterns(".index*"))
    return root


@pytest.fixture
def running(ui_copy: Path) -> Iterator[Ui]:
    ui = Ui(ui_copy, "--no-browser", "--port", str(free_port()))
    ui.wait_url()
    yield ui
    ui.stop()


def test_it_serves_the_store_behind_the_token_and_stops_on_ctrl_c(running: Ui,
                                                                  ui_copy: Path) -> None:
    base = running.url.split("/?")[0]
    assert base.startswith("http://127.0.0.1:")
    assert requests.get(f"{base}/api/v1/runs", timeout=30).status_code == 401
    session = requests.Session()
    first = session.get(running.url, allow_redirects=False, timeout=30)
    assert first.status_code == 303 and first.headers["location"] == "/"
    page = session.get(f"{base}/api/v1/runs", params={"all": "true"}, timeout=30).json()
    assert page["total"] == len(autolog.list_runs(ui_copy))
    assert (ui_copy / ".index.sqlite").exists()
    code, err = running.stop()
    assert code == 0 and "stopped" in err and "Traceback" not in err


def test_a_run_logged_while_it_serves_shows_up(running: Ui, ui_copy: Path) -> None:
    base = running.url.split("/?")[0]
    token = running.url.split("token=")[1]
    headers = {"Authorization": f"Bearer {token}"}
    code = ("import autolog\nwith autolog.start_run('late', project='late') as run:\n"
            "    run.log_metric('loss', 0.5)\n")
    subprocess.run([sys.executable, "-c", code], env=clean_env(ui_copy), check=True,
                   timeout=60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # indexed within a second or two, maybe in two steps
        rows = requests.get(f"{base}/api/v1/runs", params={"project": "late"}, headers=headers,
                            timeout=30).json()["runs"]
        if rows and rows[0]["status"] == "FINISHED":
            break
        time.sleep(0.2)
    assert [r["name"] for r in rows] == ["late"] and rows[0]["metrics"] == {"loss": 0.5}


def test_a_busy_port_moves_to_the_next_free_one(ui_copy: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ui = Ui(ui_copy, "--no-browser", "--port", str(port))
        try:
            url = ui.wait_url()
            assert f":{port}/" not in url
        finally:
            _, err = ui.stop()
    assert f"port {port} is taken; using" in err


def test_a_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    done = subprocess.run([sys.executable, "-m", "autolog.cli", "ui", "--dir", str(missing),
                           "--no-browser"], capture_output=True, text=True, timeout=60,
                          env=clean_env(tmp_path))
    assert done.returncode == 1
    assert str(missing) in done.stderr and "--dir" in done.stderr
    assert "AUTOLOG_DIR" in done.stderr and "Traceback" not in done.stderr


def test_all_interfaces_warn_and_the_browser_gets_the_url(ui_copy: Path,
                                                          tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f"#!/bin/sh\necho \"$1\" > {opened}\n")
    browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
    env = clean_env(ui_copy, BROWSER=str(browser))
    ui = Ui(ui_copy, "--host", "0.0.0.0", "--port", str(free_port()), env=env)
    try:
        url = ui.wait_url()
        deadline = time.monotonic() + 10
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert opened.read_text().strip() == url
    finally:
        _, err = ui.stop()
    assert "WARNING" in err and "other machines on the network" in err


def test_the_index_is_reused_on_the_next_start(ui_copy: Path) -> None:
    first = Ui(ui_copy, "--no-browser", "--port", str(free_port()))
    first.wait_url()
    assert first.stop()[0] == 0  # Ctrl-C right after the URL: stopped, not killed after 20 s
    mtime = os.stat(ui_copy / ".index.sqlite").st_mtime_ns
    second = Ui(ui_copy, "--no-browser", "--port", str(free_port()))
    second.wait_url()
    assert second.stop()[0] == 0
    count = len(autolog.list_runs(ui_copy))
    assert f"{count} runs ({count} new or changed)" in "".join(first.out)
    assert f"{count} runs (0 new or changed)" in "".join(second.out)
    assert os.stat(ui_copy / ".index.sqlite").st_mtime_ns >= mtime
