"""The psutil sampler on this machine: its readings checked against psutil and the OS directly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from autolog.api import get_settings
from autolog.system.cpu import CpuSampler, _linux_descendants, cpu_model, process_family

GAUGES = {"process_rss_bytes", "memory_used_bytes", "memory_available_bytes", "memory_percent",
          "disk_used_bytes", "disk_free_bytes", "disk_percent"}
RATES = {"cpu_percent", "process_cpu_percent", "disk_read_bytes_per_s", "disk_write_bytes_per_s",
         "network_sent_bytes_per_s", "network_recv_bytes_per_s"}
MiB = 2**20


def test_static_tags_describe_this_machine():
    tags = CpuSampler(get_settings()).static_tags()
    assert tags["autolog.system.cpu_model"] == cpu_model() != ""
    assert tags["autolog.system.cpu_logical_cores"] == str(psutil.cpu_count())
    assert int(tags["autolog.system.cpu_physical_cores"]) <= psutil.cpu_count()
    assert tags["autolog.system.memory_total_bytes"] == str(psutil.virtual_memory().total)
    assert tags["autolog.system.disk_path"] == os.getcwd()
    assert tags["autolog.system.disk_total_bytes"] == str(psutil.disk_usage(os.getcwd()).total)


def test_first_sample_has_gauges_later_ones_add_rates():
    sampler = CpuSampler(get_settings())
    first = sampler.sample()
    assert set(first) == GAUGES
    time.sleep(0.3)
    second = sampler.sample()
    assert set(second) == GAUGES | RATES
    assert 0.0 <= second["cpu_percent"] <= 100.0
    assert 0.0 <= second["process_cpu_percent"] <= 100.0 * psutil.cpu_count()
    memory = psutil.virtual_memory()
    assert second["memory_used_bytes"] + second["memory_available_bytes"] == memory.total
    assert second["memory_percent"] == pytest.approx(
        100 * second["memory_used_bytes"] / memory.total)
    disk = psutil.disk_usage(os.getcwd())
    assert second["disk_used_bytes"] == pytest.approx(disk.used, rel=0.05)
    assert second["disk_percent"] == pytest.approx(disk.percent, abs=2)
    assert all(second[name] >= 0 for name in RATES)


def test_process_metrics_include_children_even_after_they_exit():
    sampler = CpuSampler(get_settings())
    sampler.sample()
    own_rss = psutil.Process().memory_info().rss
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.3)  # the interpreter is up and resident
        child_rss = psutil.Process(sleeper.pid).memory_info().rss
        # a worker that burns 0.4 s of CPU and is reaped before the next sample
        subprocess.run([sys.executable, "-c",
                        "import time\nwhile time.process_time() < 0.4: pass"], check=True)
        start = time.monotonic()
        readings = sampler.sample()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert readings["process_rss_bytes"] >= own_rss * 0.9 + child_rss * 0.9
    elapsed = time.monotonic() - start + 10  # generous: at most the whole test's wall time
    assert readings["process_cpu_percent"] >= 100 * 0.35 / elapsed


BURN_THEN_WAIT = ("import sys, time\n"
                  "while time.process_time() < 0.5: pass\n"
                  "print('done', flush=True)\n"
                  "sys.stdin.read()")


def test_a_worker_seen_alive_then_reaped_is_not_counted_twice():
    sampler = CpuSampler(get_settings())
    sampler.sample()
    worker = subprocess.Popen([sys.executable, "-c", BURN_THEN_WAIT], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert worker.stdout.readline() == "done\n"
    seen_alive = sampler.sample()  # the worker's 0.5 s is in this interval
    start = time.monotonic()
    worker.communicate("")  # it exits; we reap it: its time moves into our children's time
    time.sleep(0.5)  # an idle interval long enough for 10 ms CPU-time ticks
    after_reaping = sampler.sample()
    window = time.monotonic() - start  # an upper bound of the second interval
    assert seen_alive["process_cpu_percent"] > 0
    assert after_reaping["process_cpu_percent"] / 100 * window < 0.2  # not the worker's 0.5 s


PARENT_OF_ONE = ("import subprocess, sys, time\n"
                 "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                 "print(p.pid, flush=True)\n"
                 "time.sleep(60)")


def test_descendants_are_found_whichever_thread_started_them():
    # children other tests left running (a session's PostgreSQL server) belong to the family too
    already = {p.pid for p in psutil.Process().children(recursive=True)}
    started: list[subprocess.Popen] = []
    thread = threading.Thread(target=lambda: started.append(subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"])))
    thread.start()
    thread.join()
    parent = subprocess.Popen([sys.executable, "-c", PARENT_OF_ONE], stdout=subprocess.PIPE,
                              text=True)
    started.append(parent)
    grandchild = None
    try:
        grandchild = int(parent.stdout.readline())
        expected = {os.getpid(), started[0].pid, parent.pid, grandchild} | already
        me = psutil.Process()
        assert {p.pid for p in process_family(me)} == expected
        assert {p.pid for p in me.children(recursive=True)} | {me.pid} == expected
        if sys.platform.startswith("linux"):
            assert set(_linux_descendants(me.pid)) == expected - {me.pid}
    finally:
        for proc in started:
            proc.kill()
            proc.wait()
        parent.stdout.close()
        if grandchild is not None:
            psutil.Process(grandchild).kill()


def test_loopback_traffic_is_not_network_traffic():
    """64 MiB over 127.0.0.1 are not network traffic. Other processes may use the network
    meanwhile (CI installs packages beside the tests), so the sampler's bytes are compared with
    what the other interfaces counted over a window that encloses the sampler's."""
    sampler = CpuSampler(get_settings())
    start, before = time.monotonic(), _bytes_by_interface_kind()
    sampler.sample()
    sent = _send_over_loopback(64 * MiB)
    readings = sampler.sample()
    after, window = _bytes_by_interface_kind(), time.monotonic() - start
    assert sent == 64 * MiB
    if "loopback" in before:  # the traffic went where the test says
        assert after["loopback"][1] - before["loopback"][1] >= 64 * MiB
    for index, name in enumerate(("network_sent_bytes_per_s", "network_recv_bytes_per_s")):
        others = after["other"][index] - before["other"][index]
        assert readings[name] * window <= others + 4 * MiB, name


def _bytes_by_interface_kind() -> dict[str, tuple[int, int]]:
    """Bytes sent and received so far, on loopback and on the other interfaces."""
    totals: dict[str, tuple[int, int]] = {}
    for name, io in psutil.net_io_counters(pernic=True, nowrap=False).items():
        kind = "loopback" if name.lower().startswith("lo") or "loopback" in name.lower() \
            else "other"
        sent, recv = totals.get(kind, (0, 0))
        totals[kind] = (sent + io.bytes_sent, recv + io.bytes_recv)
    totals.setdefault("other", (0, 0))
    return totals


def test_disk_writes_are_counted(tmp_path):
    if psutil.disk_io_counters() is None or _on_tmpfs(tmp_path):
        pytest.skip("no block-device I/O counters for this directory")
    sampler = CpuSampler(get_settings())
    sampler.sample()
    t0 = time.monotonic()
    with open(tmp_path / "blob", "wb") as f:
        f.write(os.urandom(16 * MiB))
        f.flush()
        os.fsync(f.fileno())
    readings = sampler.sample()
    window = time.monotonic() - t0
    assert readings["disk_write_bytes_per_s"] * window >= 8 * MiB


def test_cpu_percent_covers_the_interval_whatever_other_psutil_callers_do():
    sampler = CpuSampler(get_settings())
    sampler.sample()
    start = time.monotonic()
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        psutil.cpu_percent()  # resets psutil's module-level baseline each call; not ours
    readings = sampler.sample()
    wall = time.monotonic() - start
    assert readings["process_cpu_percent"] >= 0.8 * 100 * 0.3 / wall
    assert readings["cpu_percent"] >= 0.8 * 100 * 0.3 / (wall * psutil.cpu_count())


def _send_over_loopback(total: int) -> int:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    received = []

    def drain() -> None:
        conn, _ = server.accept()
        n = 0
        while chunk := conn.recv(1 << 20):
            n += len(chunk)
        received.append(n)
        conn.close()

    thread = threading.Thread(target=drain)
    thread.start()
    with socket.create_connection(server.getsockname()) as client:
        client.sendall(b"\0" * total)
    thread.join(10)
    server.close()
    return received[0]


def _on_tmpfs(path) -> bool:
    path = os.path.realpath(path)
    mounts = [p for p in psutil.disk_partitions(all=True) if path.startswith(p.mountpoint)]
    mount = max(mounts, key=lambda p: len(p.mountpoint), default=None)
    return mount is None or mount.fstype in ("tmpfs", "ramfs")
