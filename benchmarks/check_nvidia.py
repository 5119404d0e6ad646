"""Check the NVIDIA sampler against a real GPU: print what it read, compare with nvidia-smi.

    .venv/bin/python benchmarks/check_nvidia.py [--samples N] [--no-torch]

Where there is no GPU (no driver, no pynvml, nothing visible) it says why and exits 0. Otherwise
it prints the static tags and a few samples, checks that every reading is plausible, that
``nvidia-smi`` agrees (memory total, temperature), that memory this process allocates with
PyTorch shows up in ``process_memory_bytes``, and that a monitored run records the GPU metrics.
Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

MiB = 2**20
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


def allocate_with_torch(megabytes: int):
    """A CUDA tensor of ``megabytes`` on cuda:0, or None without a CUDA build of torch."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    tensor = torch.ones(megabytes * MiB // 4, dtype=torch.float32, device="cuda:0")
    torch.cuda.synchronize()
    return tensor


def nvidia_smi() -> dict[str, dict[str, str]]:
    """nvidia-smi's view, by GPU UUID (empty if nvidia-smi is absent)."""
    if shutil.which("nvidia-smi") is None:
        return {}
    fields = "uuid,name,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw"
    out = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, timeout=30)
    rows = {}
    for line in out.stdout.strip().splitlines():
        values = [v.strip() for v in line.split(",")]
        rows[values[0]] = dict(zip(fields.split(","), values, strict=False))
    return rows


def check_readings(readings: dict[str, float], labels: list[str]) -> None:
    for i in labels:
        g = {k.split("/", 2)[2]: v for k, v in readings.items() if k.startswith(f"gpu/{i}/")}
        print(f"  gpu {i}: " + ", ".join(f"{k}={v:,.1f}" for k, v in sorted(g.items())))
        check(0 <= g.get("utilization_percent", -1) <= 100, f"gpu {i} utilization in 0..100")
        check(0 < g.get("memory_used_bytes", -1) <= g.get("memory_total_bytes", 0),
              f"gpu {i} memory used within total")
        check(0 < g.get("power_watts", 0) < 2000, f"gpu {i} power draw plausible")
        check(0 < g.get("power_percent", 0) < 150, f"gpu {i} power % of limit plausible")
        check(5 < g.get("temperature_celsius", 0) < 110, f"gpu {i} temperature plausible")
        check(100 < g.get("sm_clock_mhz", 0) < 5000, f"gpu {i} SM clock plausible")
        check("process_memory_bytes" in g, f"gpu {i} process memory reported")


def check_process_memory(sampler, readings: dict[str, float]) -> None:
    from autolog.system.cpu import family_pids

    used = readings.get("gpu/0/process_memory_bytes", 0)
    nvml_pids = {p.pid for p in sampler.nvml.nvmlDeviceGetComputeRunningProcesses(
        sampler.devices[0].handle)}
    if used == 0 and not nvml_pids & family_pids():
        print(f"  NOTE NVML lists pids {sorted(nvml_pids)}, none of this process tree's "
              f"({os.getpid()}): a container with its own PID namespace? process_memory_bytes "
              "stays 0 there (docs/system-metrics.md, Limits)")
        return
    check(used >= 256 * MiB, f"256 MiB allocated by torch on cuda:0 shows in "
          f"process_memory_bytes ({used / MiB:,.0f} MiB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true", help="do not allocate GPU memory")
    args = parser.parse_args()
    os.environ.setdefault("AUTOLOG_DIR", tempfile.mkdtemp(prefix="autolog-check-nvidia-"))

    from autolog.api import get_settings
    from autolog.system import SamplerUnavailable
    from autolog.system.nvidia import NvidiaSampler

    try:
        sampler = NvidiaSampler(get_settings())
    except SamplerUnavailable as why:
        print(f"No NVIDIA GPU to check here: {why}")
        print("(GPU sampling is off on this machine; nothing to compare. Exit 0.)")
        return 0

    tensor = None if args.no_torch else allocate_with_torch(256)
    print("static tags:")
    tags = sampler.static_tags()
    for key, value in tags.items():
        print(f"  {key} = {value}")
    labels = [d.label for d in sampler.devices]
    check(tags["autolog.system.gpu_count"] == str(len(labels)), "gpu_count matches devices")

    print(f"\n{args.samples} samples, 1 s apart:")
    costs = []
    for n in range(args.samples):
        if n:
            time.sleep(1)
        c0 = time.thread_time()
        readings = sampler.sample()
        costs.append(time.thread_time() - c0)
        print(f" sample {n}:")
        check_readings(readings, labels)
    per_gpu = sorted(costs)[len(costs) // 2] / len(labels)
    print(f"\nCPU per sample: {sorted(costs)[len(costs) // 2] * 1e3:.2f} ms "
          f"({per_gpu * 1e3:.2f} ms per GPU; {100 * sorted(costs)[len(costs) // 2] / 10:.4f} % "
          "of one core at the 10 s default)")

    if tensor is not None:
        check_process_memory(sampler, readings)
    else:
        print("  (no CUDA build of torch: process memory not checked against an allocation)")

    smi = nvidia_smi()
    if smi:
        print("\nnvidia-smi agrees:")
        for dev in sampler.devices:
            row = smi.get(dev.uuid)
            if row is None:
                check(False, f"gpu {dev.label} ({dev.uuid}) listed by nvidia-smi")
                continue
            total = float(tags[f"autolog.system.gpu.{dev.label}.memory_total_bytes"]) / MiB
            check(abs(total - float(row["memory.total"])) <= 1,
                  f"gpu {dev.label} memory total {total:,.0f} MiB = {row['memory.total']} MiB")
            temp = readings.get(f"gpu/{dev.label}/temperature_celsius", -100)
            check(abs(temp - float(row["temperature.gpu"])) <= 5,
                  f"gpu {dev.label} temperature {temp:.0f} C ~ {row['temperature.gpu']} C")
    else:
        print("\n(nvidia-smi not found: no cross-check)")
    sampler.close()

    print("\na monitored run (interval 1 s, 2.5 s):")
    check_run(labels)
    print(f"\n{'ALL CHECKS PASSED' if not failures else f'{len(failures)} CHECK(S) FAILED'}")
    return 1 if failures else 0


def check_run(labels: list[str]) -> None:
    import autolog
    from autolog import testing

    testing.reset()
    os.environ.update(AUTOLOG_SYSTEM_METRICS="1", AUTOLOG_SYSTEM_INTERVAL="1")
    with autolog.start_run("check-nvidia") as run:
        time.sleep(2.5)
    record = autolog.get_run(run.id)
    for i in labels:
        points = record.history(f"system/gpu/{i}/memory_used_bytes")
        check(len(points) >= 2, f"run {run.id[:8]} has {len(points)} points of "
              f"system/gpu/{i}/memory_used_bytes")
    check(record.tags.get("autolog.system.gpu_count") == str(len(labels)), "run tagged gpu_count")


if __name__ == "__main__":
    sys.exit(main())
