"""Issue 15, item 13, for ``autolog ui``: 100 slow unauthenticated connections held open
against the real process do not lock out its token (in the header, or as the browser's cookie
after the URL's token was traded for it)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests

from ..helpers import clean_env
from ..server.live import free_port
from ..server.slow import SlowClients, timed
from .test_cli import Ui

QUICK_S = 3.0


def test_unauthenticated_clients_cannot_lock_out_autolog_ui(tmp_path: Path) -> None:
    store = tmp_path / "autolog-runs"
    code = ("import autolog\nwith autolog.start_run('one', project='slow') as run:\n"
            "    print(run.id)\n    run.log_metric('loss', 0.5)\n")
    run_id = subprocess.run([sys.executable, "-c", code], env=clean_env(store), check=True,
                            timeout=60, capture_output=True, text=True).stdout.strip()
    port = free_port()
    ui = Ui(store, "--no-browser", "--port", str(port))
    try:
        url = ui.wait_url()
        base, token = url.split("/?token=")
        browser = requests.Session()
        assert browser.get(url, allow_redirects=False, timeout=30).status_code == 303
        csrf = browser.get(f"{base}/api/v1/session", timeout=30).json()["csrf"]
        bearer = {"Authorization": f"Bearer {token}"}
        with SlowClients(port, 100, cookie_name=f"autolog_session_{port}", run_id=run_id):
            time.sleep(1.5)
            calls = [*[lambda: requests.get(f"{base}/api/v1/runs", headers=bearer, timeout=30)
                       for _ in range(3)],
                     lambda: requests.get(f"{base}/api/v1/runs/{run_id}", headers=bearer,
                                          timeout=30),
                     lambda: browser.get(f"{base}/api/v1/session", timeout=30),
                     lambda: browser.get(f"{base}/api/v1/runs", timeout=30),
                     lambda: browser.get(f"{base}/r/{run_id}", timeout=30),
                     lambda: browser.get(f"{base}/api/v1/runs/{run_id}/history",
                                         params={"key": "loss"}, timeout=30),
                     lambda: browser.patch(f"{base}/api/v1/runs/{run_id}",
                                           json={"note": "held up"},
                                           headers={"X-CSRF-Token": csrf}, timeout=30),
                     lambda: browser.get(f"{base}/api/v1/runs/{run_id}", timeout=30)]
            results = [(response.status_code, took) for response, took in map(timed, calls)]
            last = browser.get(f"{base}/api/v1/runs/{run_id}", timeout=30).json()
    finally:
        _, err = ui.stop()
    assert [status for status, _ in results] == [200] * len(calls), results
    assert max(took for _, took in results) < QUICK_S, results
    assert last["note"] == "held up"
    assert "Traceback" not in err, err[-4000:]
