"""The web UI in headless Chromium: the compare page of 10 runs x 1,000,000 points, a point
logged until it shows in an open chart, the size of the JS + CSS shipped.

    python benchmarks/bench_ui_browser.py            # 10 runs x 1,000,000 points
    python benchmarks/bench_ui_browser.py --quick    # 10 runs x 100,000 points, fewer rounds

Needs Chromium at /usr/bin/chromium (apt-get install chromium) and playwright (the test
extra). The store is written by autolog's own API in a subprocess; `autolog ui --no-browser`
serves it on a free loopback port. "Navigation to charts drawn" is the browser's own clock:
from the start of the navigation (performance.timeOrigin) to the first draw of the chart with
all 10 runs in it (the charts' debug registry). Budgets from issue 13.
"""

from __future__ import annotations

import gzip
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import arguments, table
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "src" / "autolog" / "ui" / "static"
CHROMIUM = "/usr/bin/chromium"
RUNS = 10

WRITE = r'''
import math, sys, time, autolog
points = int(sys.argv[1])
for r in range(10):
    run = autolog.start_run(f"bench-{r}", project="bench", tags={"seed": str(r)})
    run.log_params({"lr": 10 ** -(1 + r % 4), "seed": r, "optimizer": "adam" if r % 2 else "sgd"})
    log = run.log_metric
    for step in range(points):
        log("loss", math.exp(-step / points * (1 + r)) + 0.01 * math.sin(step), step)
    run.end()
    print(run.id, flush=True)
'''

LIVE = r'''
import sys, time, autolog
run = autolog.start_run("bench-live", project="bench")
print(run.id, flush=True)
step = 0
while True:
    run.log_metric("loss", 1.0 / (step + 1), step=step)
    autolog.flush()
    print(step, time.time(), flush=True)
    step += 1
    time.sleep(0.5)
'''


def env_for(store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOLOG_")}
    env.update(AUTOLOG_DIR=str(store), AUTOLOG_SYSTEM_METRICS="0",
               PYTHONPATH=str(ROOT / "src"), PYTHONUNBUFFERED="1")
    return env


def write_store(store: Path, points: int) -> tuple[list[str], float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRITE, str(points)], env=env_for(store),
                          capture_output=True, text=True, check=True, timeout=3600)
    return done.stdout.split(), time.perf_counter() - started


def start_ui(store: Path, log: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    started = time.perf_counter()
    command = [sys.executable, "-c", "import sys; from autolog.cli import main; sys.exit(main())",
               "ui", "--no-browser", "--dir", str(store), "--port", "0"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   env=env_for(store))
    while time.perf_counter() - started < 1800:
        found = re.search(r"http://\S+/\?token=\S+", log.read_text())
        if found:
            return process, found.group(0), time.perf_counter() - started
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"autolog ui did not start:\n{log.read_text()[-3000:]}")


def shipped() -> tuple[int, int]:
    """Bytes of the JS and CSS the page loads: raw, gzipped (level 9)."""
    files = [p for p in (STATIC / "assets").iterdir() if p.suffix in (".js", ".css")]
    raw = sum(p.stat().st_size for p in files)
    packed = sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)
    return raw, packed


DRAWN = """() => {
  const c = window.__autolog && window.__autolog.charts['loss'];
  const full = c && c.drawn.find(d => d.lines === %d);
  return full ? full.t : null;
}"""


def navigation_times(page, base: str, ids: list[str], rounds: int) -> list[float]:
    url = f"{base}/compare?runs={','.join(ids)}"
    times = []
    for round_ in range(rounds):
        page.goto(base + "/")  # leave the page, so each round is a full navigation
        page.goto(url)
        # the first round waits for a cold server (nothing read from its index yet)
        page.wait_for_function(DRAWN % len(ids), timeout=600_000 if round_ == 0 else 60_000)
        times.append(page.evaluate(DRAWN % len(ids)))
    return times


def live_latencies(page, base: str, store: Path, samples: int) -> list[float]:
    """Seconds from a point's logging (its flush returned) to its drawing in the open chart of
    its run, for ``samples`` points logged after the page was open."""
    live = subprocess.Popen([sys.executable, "-c", LIVE], env=env_for(store),
                            stdout=subprocess.PIPE, text=True)
    assert live.stdout is not None
    logged: dict[int, float] = {}

    def follow() -> None:
        for line in live.stdout:  # type: ignore[union-attr]
            step, at = line.split()
            logged[int(step)] = float(at)

    try:
        run_id = live.stdout.readline().strip()
        threading.Thread(target=follow, daemon=True).start()
        deadline = time.time() + 60
        while True:  # a new run reaches the index within a second or so
            page.goto(f"{base}/r/{run_id}")
            try:
                page.wait_for_selector(".run-head", timeout=3000)
                break
            except PlaywrightTimeout:
                if time.time() > deadline:
                    raise
        page.wait_for_function("() => window.__autolog && window.__autolog.charts['loss']",
                               timeout=30_000)
        latencies = []
        step = max(logged, default=0) + 1
        for _ in range(samples):
            while step not in logged:
                time.sleep(0.01)
            page.wait_for_function(
                "s => { const l = window.__autolog.charts['loss'].lines()[0];"
                " return l && l.steps[l.steps.length - 1] >= s; }", arg=step, timeout=30_000)
            latencies.append(time.time() - logged[step])
            step += 3
        return latencies
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait(10)


def main() -> None:
    parser = arguments(__doc__ or "", "10 runs x 100,000 points, 3 rounds")
    args = parser.parse_args()
    points = 100_000 if args.quick else 1_000_000
    rounds = args.repeats or (3 if args.quick else 10)
    if not os.access(CHROMIUM, os.X_OK):
        raise SystemExit(f"no browser at {CHROMIUM}: apt-get install chromium")

    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        store = Path(tmp) / "autolog-runs"
        ids, wrote = write_store(store, points)
        print(f"store: {RUNS} runs x {points:,} points of 'loss' written in {wrote:.1f}s")
        process, url, start_s = start_ui(store, Path(tmp) / "ui.log")
        print(f"autolog ui: up (store indexed) in {start_s:.1f}s")
        base = url.split("/?", 1)[0]
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--no-first-run"])
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.add_init_script("localStorage.setItem('autolog.debug', '1')")
                page.goto(url)
                nav = navigation_times(page, base, ids, rounds)
                live = live_latencies(page, base, store, 5 if args.quick else 10)
                browser.close()
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(30)
    raw, packed = shipped()
    print("navigations (ms, in order): " + ", ".join(f"{t:.0f}" for t in nav))
    first, warm = nav[0], sorted(nav[1:] or nav)
    table(f"Web UI in headless Chromium ({RUNS} runs x {points:,} points; {rounds} rounds)",
          ["measure", "median", "worst", "budget", "within"],
          [["compare page: navigation to charts drawn", f"{statistics.median(warm):.0f} ms",
            f"{warm[-1]:.0f} ms", "< 1000 ms", "yes" if warm[-1] < 1000 else "NO"],
           ["  the first one after `autolog ui` started", f"{first:.0f} ms", "", "< 1000 ms",
            "yes" if first < 1000 else "NO"],
           ["a point logged -> visible in an open chart",
            f"{statistics.median(live):.2f} s", f"{max(live):.2f} s", "<= 3 s",
            "yes" if max(live) <= 3 else "NO"],
           ["JS + CSS shipped, gzipped", f"{packed / 1000:.1f} kB", f"({raw / 1000:.1f} kB raw)",
            "< 250 kB", "yes" if packed < 250_000 else "NO"]])


if __name__ == "__main__":
    main()
