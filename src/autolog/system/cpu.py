"""CPU, memory, disk and network usage, read with ``psutil``.

Gauges (memory, disk usage, this process's RSS) are reported from the first sample on. Rates and
CPU percentages need two readings: the sampler takes its baseline when it is built, the first
sample (taken right after, at step 0) only refreshes that baseline, and every later sample reports
the average since the previous one. The baselines are the sampler's own, so a user's calls to
``psutil.cpu_percent()`` and this sampler never disturb each other.

"This process" means the process that started the run and all its descendants (DataLoader
workers, ``multiprocessing`` pools); a forked child runs no monitor of its own.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..hookspecs import hookimpl
from . import Sampler, SamplerUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..config import Settings

__all__ = ["CpuSampler", "cpu_model", "family_pids", "process_family"]

TAG = "autolog.system."
_LOOPBACK = ("lo",)  # Linux "lo", macOS "lo0", Windows "Loopback Pseudo-Interface 1"


@hookimpl
def autolog_register_samplers(register: Callable[[type[Sampler]], None]) -> None:
    register(CpuSampler)


class CpuSampler(Sampler):
    """System CPU, memory, disk and network; this process tree's CPU and resident memory."""

    name = "cpu"
    rates = frozenset({"cpu_percent", "process_cpu_percent", "disk_read_bytes_per_s",
                       "disk_write_bytes_per_s", "network_sent_bytes_per_s",
                       "network_recv_bytes_per_s"})

    @classmethod
    def warm(cls) -> None:
        import psutil  # noqa: F401 - 20 ms, better before the training than during it

    def __init__(self, settings: Settings):
        super().__init__(settings)
        try:
            import psutil
        except ImportError as exc:  # a dependency of autolog-ml, but a stripped install may lack it
            raise SamplerUnavailable(f"psutil is not installed ({exc}); pip install psutil")
        self._psutil = psutil
        self._process = psutil.Process()
        self._disk_path = _cwd()
        self._previous = self._counters()
        self._first = True

    def static_tags(self) -> dict[str, str]:
        psutil = self._psutil
        tags = {
            TAG + "cpu_model": cpu_model(),
            TAG + "cpu_physical_cores": str(psutil.cpu_count(logical=False) or ""),
            TAG + "cpu_logical_cores": str(psutil.cpu_count() or ""),
            TAG + "memory_total_bytes": str(psutil.virtual_memory().total),
        }
        disk = self._disk_usage()
        if disk is not None:
            tags[TAG + "disk_path"] = str(self._disk_path)
            tags[TAG + "disk_total_bytes"] = str(disk.total)
        return {key: value for key, value in tags.items() if value}

    def sample(self) -> dict[str, float]:
        counters = self._counters()
        out = self._gauges(counters)
        if self._first:
            self._first = False  # the baseline was taken microseconds ago: no rate yet
        else:
            out.update(_rates(self._previous, counters, self._psutil.cpu_count() or 1))
        self._previous = counters
        return out

    # -- readings ----------------------------------------------------------------------------

    def _counters(self) -> dict[str, Any]:
        """Cumulative counters (and the process tree's RSS), read as close together as possible."""
        process_cpu, rss = self._family_usage()
        return {
            "time": time.monotonic(),
            "cpu": _cpu_busy_total(self._psutil.cpu_times()),
            "process_cpu": process_cpu,
            "rss": rss,
            "disk": _disk_bytes(self._psutil),
            "net": _net_bytes(self._psutil),
        }

    def _family_usage(self) -> tuple[float, float]:
        """CPU seconds and resident bytes of this process tree.

        Each process counts its own CPU time plus that of its reaped children, so when a worker
        exits and its parent reaps it, its time moves from its own count into its parent's: the
        total neither loses it nor counts it twice, and a worker born and gone between two
        samples still shows up.
        """
        psutil = self._psutil
        cpu = rss = 0.0
        for proc in process_family(self._process):
            try:
                with proc.oneshot():
                    t = proc.cpu_times()
                    cpu += t.user + t.system + t.children_user + t.children_system
                    rss += proc.memory_info().rss
            except psutil.Error:  # exited since it was listed, or not ours to read
                continue
        return cpu, rss

    def _gauges(self, counters: dict[str, Any]) -> dict[str, float]:
        memory = self._psutil.virtual_memory()
        used = memory.total - memory.available
        out = {
            "process_rss_bytes": float(counters["rss"]),
            "memory_used_bytes": float(used),
            "memory_available_bytes": float(memory.available),
            "memory_percent": 100.0 * used / memory.total if memory.total else 0.0,
        }
        disk = self._disk_usage()
        if disk is not None:
            out["disk_used_bytes"] = float(disk.used)
            out["disk_free_bytes"] = float(disk.free)
            out["disk_percent"] = float(disk.percent)
        return out

    def _disk_usage(self) -> Any:
        if self._disk_path is None:
            return None
        try:
            return self._psutil.disk_usage(self._disk_path)
        except OSError:  # the directory was removed or unmounted during the run
            return None


def _rates(before: dict[str, Any], after: dict[str, Any], cores: int) -> dict[str, float]:
    elapsed = after["time"] - before["time"]
    if elapsed <= 0:
        return {}
    out: dict[str, float] = {}
    (busy0, total0), (busy1, total1) = before["cpu"], after["cpu"]
    if total1 > total0:
        out["cpu_percent"] = min(100.0, max(0.0, 100.0 * (busy1 - busy0) / (total1 - total0)))
    # negative when a process left the tree without being reaped inside it: nothing to report
    spent = max(0.0, after["process_cpu"] - before["process_cpu"])
    out["process_cpu_percent"] = min(100.0 * cores, 100.0 * spent / elapsed)
    for kind, names in (("disk", ("disk_read_bytes_per_s", "disk_write_bytes_per_s")),
                        ("net", ("network_sent_bytes_per_s", "network_recv_bytes_per_s"))):
        if before[kind] is None or after[kind] is None:
            continue
        for name, old, new in zip(names, before[kind], after[kind], strict=True):
            if new >= old:  # a counter that went back (wrapped, device removed) gives no rate
                out[name] = (new - old) / elapsed
    return out


def _cpu_busy_total(times: Any) -> tuple[float, float]:
    """(busy, total) CPU seconds over all cores, counted the way ``psutil.cpu_percent`` does."""
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def _disk_bytes(psutil: Any) -> tuple[int, int] | None:
    try:
        io = psutil.disk_io_counters(nowrap=False)  # nowrap's lock would be inherited by forks
    except (OSError, RuntimeError):
        return None
    return None if io is None else (io.read_bytes, io.write_bytes)


def _net_bytes(psutil: Any) -> tuple[int, int] | None:
    """Bytes sent and received on every interface but loopback (local traffic is not network)."""
    try:
        nics = psutil.net_io_counters(pernic=True, nowrap=False)
    except (OSError, RuntimeError):
        return None
    sent = recv = 0
    for name, io in nics.items():
        if not name.lower().startswith(_LOOPBACK) and "loopback" not in name.lower():
            sent += io.bytes_sent
            recv += io.bytes_recv
    return sent, recv


def process_family(process: Any) -> list[Any]:
    """``process`` and all its live descendants (psutil ``Process`` objects)."""
    import psutil

    pids = _linux_descendants(process.pid)
    if pids is None:
        try:
            return [process, *process.children(recursive=True)]
        except psutil.Error:
            return [process]
    family = [process]
    for pid in pids:
        try:
            family.append(psutil.Process(pid))
        except psutil.Error:  # exited since it was listed
            continue
    return family


def _linux_descendants(pid: int) -> list[int] | None:
    """Descendants from ``/proc/<pid>/task/<tid>/children``: a cost that grows with the process
    tree, where psutil's ``children()`` reads every process on the machine (~20 us each).
    None where the kernel does not offer the file (not Linux, no CONFIG_PROC_CHILDREN)."""
    if not _has_proc_children():
        return None
    found: list[int] = []
    stack = [pid]
    while stack:
        parent = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", "rb") as f:  # int() reads bytes
                    children = [int(c) for c in f.read().split()]
            except (OSError, ValueError):
                continue
            found.extend(children)
            stack.extend(children)
    return found


@lru_cache(maxsize=1)
def _has_proc_children() -> bool:
    pid = os.getpid()
    return os.path.exists(f"/proc/{pid}/task/{pid}/children")


def family_pids() -> set[int]:
    """Process ids of this process and its descendants (GPU memory is attributed by pid)."""
    import psutil

    return {proc.pid for proc in process_family(psutil.Process())}


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:
        return None


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name ("AMD EPYC 7R13 Processor"), or the best the platform offers."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                        return value.strip()
        except OSError:
            pass
    elif sys.platform == "darwin":
        import subprocess

        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                 capture_output=True, text=True, timeout=2, check=True)
            if out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()
