"""Check autolog on a real NVIDIA GPU: the sampler against nvidia-smi, and no added syncs.

    .venv/bin/python benchmarks/check_nvidia.py [--samples N] [--no-torch] [--no-syncs]

Where there is no GPU (no driver, no pynvml, nothing visible) it says why and exits 0. Otherwise
it prints the static tags and a few samples, checks that every reading is plausible, that
``nvidia-smi`` agrees (memory total, temperature), that memory this process allocates with
PyTorch shows up in ``process_memory_bytes``, and that a monitored run records the GPU metrics.

With a CUDA build of torch it then trains a tiny model on ``cuda:0`` with Lightning, Keras
(torch backend) and transformers, autolog on, each of autolog's callback methods running under
``torch.cuda.set_sync_debug_mode("error")``: any host-device synchronisation autolog adds on
the training thread (``.item()``, ``.cpu()``, ``float(t)`` of a CUDA tensor...) raises there
and is reported (the framework's own syncs, outside those methods, are not). The CPU-side twin
of this check, which counts those calls with and without autolog, is in the test suite
(``tests/integrations/test_gpu_syncs.py``).

Status: written for a machine with an NVIDIA GPU and a CUDA build of torch; the session that
wrote the sync check had no GPU, so it has not been run yet (the sampler checks have).
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
    parser.add_argument("--no-syncs", action="store_true",
                        help="skip the fits that check autolog adds no host-device sync")
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
    if not args.no_syncs:
        print("\nno sync added on the training thread (set_sync_debug_mode('error')):")
        check_syncs()
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


# -- no added host-device synchronisation ----------------------------------------------------


def strict_syncs(cls: type) -> None:
    """Run each method autolog defines for ``cls`` (its own classes in the MRO) under
    ``set_sync_debug_mode("error")``."""
    import functools

    import torch

    ours = [c for c in cls.__mro__ if c.__module__.startswith("autolog.")]
    methods = {n: m for c in reversed(ours) for n, m in vars(c).items()
               if not n.startswith("__") and callable(m)}
    for name, method in methods.items():
        @functools.wraps(method)
        def guarded(*args, __method=method, **kwargs):
            previous = torch.cuda.get_sync_debug_mode()
            torch.cuda.set_sync_debug_mode("error")
            try:
                return __method(*args, **kwargs)
            finally:
                torch.cuda.set_sync_debug_mode(previous)

        setattr(cls, name, guarded)


def autolog_raised(fit) -> str | None:
    """Train with autolog on (strict mode: its own errors raise); the sync error, if any."""
    import autolog
    from autolog import testing

    testing.reset()
    os.environ["AUTOLOG_STRICT"] = "1"
    autolog.enable(system_metrics=False)
    try:
        fit()
    except RuntimeError as exc:
        if "synchroniz" in str(exc).lower():
            return str(exc).splitlines()[0]
        raise
    finally:
        autolog.disable()
        os.environ.pop("AUTOLOG_STRICT", None)
    return None


def lightning_fit() -> None:
    import lightning.pytorch as L
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from autolog.integrations import lightning as integration

    class Model(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(16, 1)

        def training_step(self, batch, index):
            loss = nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("train_loss", loss, prog_bar=True)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    strict_syncs(integration.callback_class())
    x = torch.rand(256, 16)
    trainer = L.Trainer(max_epochs=2, accelerator="gpu", devices=1, log_every_n_steps=1,
                        enable_progress_bar=False, enable_checkpointing=False, logger=False)
    trainer.fit(Model(), DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=32))


def keras_fit() -> None:
    os.environ["KERAS_BACKEND"] = "torch"
    import keras
    import numpy as np

    from autolog.integrations import keras as integration

    if keras.backend.backend() != "torch":
        raise RuntimeError("Keras was imported with another backend")
    strict_syncs(integration.AutologCallback)
    x = np.random.default_rng(0).random((256, 16), dtype=np.float32)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.fit(x, x.sum(1, keepdims=True), batch_size=32, epochs=2, verbose=0)


def transformers_fit() -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    from autolog.integrations import transformers as integration

    strict_syncs(integration.AutologCallback)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=37, num_labels=2)
    ids = torch.randint(1, 100, (64, 16))
    data = [{"input_ids": i, "labels": int(i[0] > 50)} for i in ids]
    args = TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=8,
                             num_train_epochs=1, logging_steps=1, save_strategy="no",
                             report_to="none", disable_tqdm=True)
    Trainer(model=BertForSequenceClassification(config), args=args, train_dataset=data).train()


def check_syncs() -> None:
    try:
        import torch
    except ImportError:
        print("  (torch is not installed: not checked)")
        return
    if not torch.cuda.is_available():
        print("  (no CUDA build of torch or no visible GPU: not checked)")
        return
    for name, fit in (("Lightning", lightning_fit), ("Keras (torch)", keras_fit),
                      ("transformers", transformers_fit)):
        try:
            raised = autolog_raised(fit)
        except ImportError as exc:
            print(f"  ({name} not installed: {exc})")
            continue
        check(raised is None, f"{name}: autolog's callbacks made no host-device sync"
              + (f" ({raised})" if raised else ""))


if __name__ == "__main__":
    sys.exit(main())
